"""An LSTM written as a torch.nn.Module that is a drop-in for torch.nn.LSTM (one layer).

    rnnlab verify examples/verify/torch_nn_correct.py --convention torch.nn

Same constructor (input_size, hidden_size), same parameter names and shapes
(weight_ih_l0 (4H, D), weight_hh_l0 (4H, H), bias_ih_l0, bias_hh_l0; gates stacked
i, f, g, o), same call: module(x, (h0, c0)) with x (T, B, D) -> (output, (h_n, c_n)).
float32, like torch.nn's own modules.
"""

import math

import torch
from torch import nn


class MyLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1 / math.sqrt(hidden_size)
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))

    def forward(self, x, hx=None):
        T, B, _ = x.shape
        if hx is None:
            zeros = x.new_zeros(1, B, self.hidden_size)
            hx = (zeros, zeros)
        h, c = hx[0][0], hx[1][0]
        outputs = []
        for t in range(T):
            gates = x[t] @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0
            i, f, g, o = gates.chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))
