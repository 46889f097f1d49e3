"""A GRU built from nn.Linear layers, one per gate and source (torch.nn.GRU's equations), with one mistake:
GRUFromLinears: reset gate multiplies the candidate after the tanh, n = r * tanh(Wx x + Wh h + b)."""
import torch
from torch import nn


class GRUFromLinears(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.reset_x = nn.Linear(input_size, hidden_size)
        self.reset_h = nn.Linear(hidden_size, hidden_size, bias=False)
        self.update_x = nn.Linear(input_size, hidden_size)
        self.update_h = nn.Linear(hidden_size, hidden_size, bias=False)
        self.candidate_x = nn.Linear(input_size, hidden_size)
        self.candidate_h = nn.Linear(hidden_size, hidden_size)

    def step(self, x_t, h):
        r = torch.sigmoid(self.reset_x(x_t) + self.reset_h(h))
        u = torch.sigmoid(self.update_x(x_t) + self.update_h(h))
        n = r * torch.tanh(self.candidate_x(x_t) + self.candidate_h(h))
        return u * h + (1 - u) * n

    def forward(self, x, h0=None):
        if h0 is None:
            h = torch.zeros(x.size(1), self.hidden_size, dtype=x.dtype)
        else:
            h = h0[0]
        outputs = []
        for x_t in x:
            h = self.step(x_t, h)
            outputs.append(h)
        return torch.stack(outputs), h[None]
