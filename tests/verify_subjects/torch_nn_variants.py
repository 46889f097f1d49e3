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


class LinearLSTM(nn.Module):
    """A tutorial's LSTM: two nn.Linear layers (input -> 4H, hidden -> 4H) in torch.nn's
    gate order i, f, g, o, read by rnnlab verify as weight_ih_l0 / weight_hh_l0."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)

    def forward(self, x, state):
        h, c = state[0][0], state[1][0]
        outs = []
        for x_t in x:
            i, f, g, o = (self.ih(x_t) + self.hh(h)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h[None], c[None])
