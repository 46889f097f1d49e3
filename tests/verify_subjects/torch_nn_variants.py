"""torch.nn-convention subjects written differently: a GRU with its cell in a submodule
(parameters cell.weight_ih ...), and a float64 RNN module."""

import torch
from torch import nn


class GRUCellLoop(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0):
        h = h0[0]
        outs = []
        for x_t in x:
            h = self.cell(x_t, h)
            outs.append(h)
        return torch.stack(outs), h[None]


class RNN64(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.randn(hidden_size, input_size, dtype=torch.float64))
        self.weight_hh_l0 = nn.Parameter(torch.randn(hidden_size, hidden_size, dtype=torch.float64))
        self.bias_ih_l0 = nn.Parameter(torch.zeros(hidden_size, dtype=torch.float64))
        self.bias_hh_l0 = nn.Parameter(torch.zeros(hidden_size, dtype=torch.float64))

    def forward(self, x, h0):
        h = h0[0]
        outs = []
        for x_t in x:
            h = torch.tanh(x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T
                           + self.bias_hh_l0)
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)
