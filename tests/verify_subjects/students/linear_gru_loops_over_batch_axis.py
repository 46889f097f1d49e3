"""A GRU of two nn.Linear(·, 3H) layers meant as a drop-in for nn.GRU that walks the batch
axis, x.unbind(1), where the time axis (0) belongs: broadcasting runs it where one of the
two is 1, and its outputs and final state come out in other shapes."""
import torch
from torch import nn


class LinearGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 3 * hidden_size)
        self.hh = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h0=None):
        h = h0[0] if h0 is not None else x.new_zeros(x.shape[1], self.hidden_size)
        outputs = []
        for x_t in x.unbind(1):
            i_r, i_z, i_n = self.ih(x_t).chunk(3, -1)
            h_r, h_z, h_n = self.hh(h).chunk(3, -1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)
