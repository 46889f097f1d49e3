"""A GRU from two nn.Linear(·, 3H) layers meant as a drop-in for nn.GRU, applying the reset
gate to the whole candidate pre-activation: n = tanh(r * (i_n + h_n)), where nn.GRU has
tanh(i_n + r * h_n)."""
import torch
from torch import nn


class FusedLinearGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, hx=None):
        h = x.new_zeros(x.shape[1], self.hidden_size) if hx is None else hx[0]
        out = []
        for x_t in x:
            i_r, i_z, i_n = self.x2h(x_t).chunk(3, 1)
            h_r, h_z, h_n = self.h2h(h).chunk(3, 1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(r * (i_n + h_n))
            h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out), h.unsqueeze(0)
