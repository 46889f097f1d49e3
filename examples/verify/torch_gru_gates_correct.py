"""A GRU written gate by gate, one nn.Linear per gate for the input and one for the hidden
state, as tutorials build it before reaching for nn.GRU:

    rnnlab verify examples/verify/torch_gru_gates_correct.py --convention torch.nn

r and z gate, n is the candidate with the reset gate applied to the hidden state's
linear map (torch.nn.GRU's equations); x (T, B, D), h0 (1, B, H), like nn.GRU.
"""

import torch
from torch import nn


class GatedGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2r = nn.Linear(input_size, hidden_size)
        self.h2r = nn.Linear(hidden_size, hidden_size)
        self.x2z = nn.Linear(input_size, hidden_size)
        self.h2z = nn.Linear(hidden_size, hidden_size)
        self.x2n = nn.Linear(input_size, hidden_size)
        self.h2n = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0=None):
        if h0 is None:
            h0 = torch.zeros(1, x.shape[1], self.hidden_size)
        h = h0[0]
        outputs = []
        for x_t in x:
            r = torch.sigmoid(self.x2r(x_t) + self.h2r(h))
            z = torch.sigmoid(self.x2z(x_t) + self.h2z(h))
            n = torch.tanh(self.x2n(x_t) + r * self.h2n(h))
            h = (1 - z) * n + z * h
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)
