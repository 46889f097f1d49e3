"""A GRU looping nn.GRUCell that hands back the state it was given, not the last step's."""
import torch
from torch import nn


class CellGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0=None):
        if h0 is None:
            h0 = torch.zeros(1, x.shape[1], self.hidden_size, dtype=x.dtype)
        h = h0[0]
        outs = []
        for x_t in x:
            h = self.cell(x_t, h)
            outs.append(h)
        return torch.stack(outs), h0
