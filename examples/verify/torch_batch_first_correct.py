"""An LSTM module that takes its batch first, x (B, T, D), as nn.LSTM(..., batch_first=True)
does, with the option in its constructor:

    rnnlab verify "examples/verify/torch_batch_first_correct.py:BatchLSTM(batch_first=True)" --convention torch.nn

rnnlab builds it as BatchLSTM(input_size, hidden_size, batch_first=True), reads its
batch_first attribute, calls it with (B, T, D) inputs and reads its output as (B, T, H).
The weights are torch.nn's, weight_ih_l0 (4H, D) ..., gates i, f, g, o.
"""

import math

import torch
from torch import nn


class BatchLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, batch_first=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.batch_first = batch_first
        k = 1 / math.sqrt(hidden_size)
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))

    def forward(self, x, hx=None):
        steps = x.shape[1] if self.batch_first else x.shape[0]
        batch = x.shape[0] if self.batch_first else x.shape[1]
        if hx is None:
            zeros = x.new_zeros(1, batch, self.hidden_size)
            hx = (zeros, zeros)
        h, c = hx[0][0], hx[1][0]
        outputs = []
        for t in range(steps):
            x_t = x[:, t] if self.batch_first else x[t]
            gates = x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        output = torch.stack(outputs, dim=1 if self.batch_first else 0)
        return output, (h.unsqueeze(0), c.unsqueeze(0))
