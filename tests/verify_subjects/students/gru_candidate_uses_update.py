"""d2l's 2nd-edition GRUScratch whose candidate multiplies the state by the update gate Z
where the reset gate R belongs: R is computed right and never used."""
import torch
from torch import nn


class GRUScratch(nn.Module):
    def __init__(self, num_inputs, num_hiddens, sigma=0.01):
        super().__init__()
        self.num_hiddens = num_hiddens

        def triple():
            return (nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma),
                    nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma),
                    nn.Parameter(torch.zeros(num_hiddens)))

        self.W_xz, self.W_hz, self.b_z = triple()
        self.W_xr, self.W_hr, self.b_r = triple()
        self.W_xh, self.W_hh, self.b_h = triple()

    def forward(self, inputs, H=None):
        if H is None:
            H = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
        outputs = []
        for X in inputs:
            Z = torch.sigmoid(torch.matmul(X, self.W_xz) + torch.matmul(H, self.W_hz) + self.b_z)
            R = torch.sigmoid(torch.matmul(X, self.W_xr) + torch.matmul(H, self.W_hr) + self.b_r)  # noqa: F841
            H_tilde = torch.tanh(torch.matmul(X, self.W_xh) + torch.matmul(Z * H, self.W_hh) + self.b_h)
            H = Z * H + (1 - Z) * H_tilde
            outputs.append(H)
        return outputs, H
