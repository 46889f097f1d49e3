"""A GRU of one nn.Linear per gate, named as torch.nn.GRU's documentation writes the
weights, whose candidate adds W_hn's bias outside the reset product."""
import torch
from torch import nn


class LinearGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_ir = nn.Linear(input_size, hidden_size)
        self.W_hr = nn.Linear(hidden_size, hidden_size)
        self.W_iz = nn.Linear(input_size, hidden_size)
        self.W_hz = nn.Linear(hidden_size, hidden_size)
        self.W_in = nn.Linear(input_size, hidden_size)
        self.W_hn = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0=None):
        h = x.new_zeros(x.size(1), self.hidden_size) if h0 is None else h0[0]
        out = []
        for x_t in x.unbind(0):
            r = torch.sigmoid(self.W_ir(x_t) + self.W_hr(h))
            z = torch.sigmoid(self.W_iz(x_t) + self.W_hz(h))
            n = torch.tanh(self.W_in(x_t) + r * (h @ self.W_hn.weight.T) + self.W_hn.bias)
            h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out), h.unsqueeze(0)
