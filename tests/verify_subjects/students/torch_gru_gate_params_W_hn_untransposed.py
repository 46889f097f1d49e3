"""A GRU nn.Module written from torch.nn.GRU's documented equations, one nn.Parameter per gate,
with one mistake: the candidate's recurrent weight used untransposed, h @ W_hn where h @ W_hn.T belongs (a square matrix: no shape error)."""
import math

import torch
from torch import nn


class DocGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1.0 / math.sqrt(hidden_size)

        def u(*shape):
            return nn.Parameter(torch.empty(*shape).uniform_(-k, k))

        self.W_ir, self.W_hr = u(hidden_size, input_size), u(hidden_size, hidden_size)
        self.W_iz, self.W_hz = u(hidden_size, input_size), u(hidden_size, hidden_size)
        self.W_in, self.W_hn = u(hidden_size, input_size), u(hidden_size, hidden_size)
        self.b_ir, self.b_hr = u(hidden_size), u(hidden_size)
        self.b_iz, self.b_hz = u(hidden_size), u(hidden_size)
        self.b_in, self.b_hn = u(hidden_size), u(hidden_size)

    def cell(self, x, h):
        r = torch.sigmoid(x @ self.W_ir.T + self.b_ir + h @ self.W_hr.T + self.b_hr)
        z = torch.sigmoid(x @ self.W_iz.T + self.b_iz + h @ self.W_hz.T + self.b_hz)
        n = torch.tanh(x @ self.W_in.T + self.b_in + r * (h @ self.W_hn + self.b_hn))
        return (1 - z) * n + z * h

    def forward(self, x, h0=None):
        if h0 is None:
            h0 = x.new_zeros(1, x.shape[1], self.hidden_size)
        h = h0.squeeze(0)
        outs = []
        for t in range(x.shape[0]):
            h = self.cell(x[t], h)
            outs.append(h)
        return torch.stack(outs, 0), h.unsqueeze(0)
