"""A GRU of per-gate nn.Linear layers whose candidate uses h2n's weight and bias through
einsum, the bias outside the reset product: tanh(x2n(x) + r * einsum(h, W) + b)."""
import torch
from torch import nn


class HandGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2z, self.h2z = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.x2r, self.h2r = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.x2n, self.h2n = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h=None):
        h = x.new_zeros(1, x.shape[1], self.hidden_size) if h is None else h
        h = h[0]
        out = []
        for x_t in x:
            z = torch.sigmoid(self.x2z(x_t) + self.h2z(h))
            r = torch.sigmoid(self.x2r(x_t) + self.h2r(h))
            n = torch.tanh(self.x2n(x_t) + r * torch.einsum("bk,jk->bj", h, self.h2n.weight) + self.h2n.bias)
            h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out), h[None]
