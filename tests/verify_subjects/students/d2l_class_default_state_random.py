"""d2l's 2nd-edition GRUScratch whose default state is drawn at random, torch.randn, where
zeros belong."""
import torch
from torch import nn


class GRUScratch(nn.Module):
    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_hiddens = num_hiddens
        self.W_xz = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.W_hz = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_z = nn.Parameter(torch.zeros(num_hiddens))
        self.W_xr = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.W_hr = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_r = nn.Parameter(torch.zeros(num_hiddens))
        self.W_xh = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
        self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.randn(inputs.shape[1], self.num_hiddens)
        outputs = []
        for X in inputs:
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)
            H_tilde = torch.tanh(X @ self.W_xh + (R * H) @ self.W_hh + self.b_h)
            H = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return outputs, H
