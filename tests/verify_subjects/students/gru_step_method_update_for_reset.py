"""A GRU of one nn.Linear per gate whose cell is a method of its own, step(), called by
forward(); its candidate multiplies by the update gate z where the reset gate r belongs."""
import torch
from torch import nn


class StepGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_ir, self.W_hr = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.W_iz, self.W_hz = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.W_in, self.W_hn = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def step(self, x, h):
        r = torch.sigmoid(self.W_ir(x) + self.W_hr(h))  # noqa: F841
        z = torch.sigmoid(self.W_iz(x) + self.W_hz(h))
        n = torch.tanh(self.W_in(x) + z * self.W_hn(h))
        return (1 - z) * n + z * h

    def forward(self, x, h0=None):
        h = torch.zeros(x.size(1), self.hidden_size, dtype=x.dtype) if h0 is None else h0.squeeze(0)
        out = []
        for x_t in x.unbind(0):
            h = self.step(x_t, h)
            out.append(h)
        return torch.stack(out), h.unsqueeze(0)
