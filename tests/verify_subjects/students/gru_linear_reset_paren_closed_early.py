"""A GRU of one nn.Linear per gate and source whose reset gate's line closes the sigmoid
after the input's layer: r = sigmoid(x_reset(x)) + h_reset(h)."""
import torch
from torch import nn


class GRUFromLinears(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x_reset = nn.Linear(input_size, hidden_size)
        self.h_reset = nn.Linear(hidden_size, hidden_size)
        self.x_update = nn.Linear(input_size, hidden_size)
        self.h_update = nn.Linear(hidden_size, hidden_size)
        self.x_cand = nn.Linear(input_size, hidden_size)
        self.h_cand = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0=None):
        h = x.new_zeros(x.size(1), self.hidden_size) if h0 is None else h0[0]
        steps = []
        for x_t in x:
            r = torch.sigmoid(self.x_reset(x_t)) + self.h_reset(h)
            z = torch.sigmoid(self.x_update(x_t) + self.h_update(h))
            n = torch.tanh(self.x_cand(x_t) + r * self.h_cand(h))
            h = (1 - z) * n + z * h
            steps.append(h)
        return torch.stack(steps), h.unsqueeze(0)
