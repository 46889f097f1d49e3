"""The batch-first LSTM with the outputs stacked along the first axis whatever
batch_first says: torch.stack(outputs) is (T, B, H), where a batch-first module returns
(B, T, H). It runs; a model reading output[:, -1] as the last step gets the last row.

    rnnlab verify "examples/verify/torch_batch_first_buggy.py:BatchLSTM(batch_first=True)" --convention torch.nn
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
        output = torch.stack(outputs)
        return output, (h.unsqueeze(0), c.unsqueeze(0))
