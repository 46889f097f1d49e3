"""A batch-first GRU written out from torch.nn.GRU's documented equations, one nn.Parameter
per gate and source, b_hn inside the reset product as torch.nn has it."""
import torch
from torch import nn


class ParamGRU(nn.Module):
    def __init__(self, input_size, hidden_size, batch_first=True):
        super().__init__()
        self.batch_first = batch_first
        self.hidden_size = hidden_size

        def w(*shape):
            return nn.Parameter(torch.randn(*shape) / hidden_size ** 0.5)

        self.W_ir, self.W_hr = w(hidden_size, input_size), w(hidden_size, hidden_size)
        self.W_iz, self.W_hz = w(hidden_size, input_size), w(hidden_size, hidden_size)
        self.W_in, self.W_hn = w(hidden_size, input_size), w(hidden_size, hidden_size)
        self.b_ir, self.b_hr = w(hidden_size), w(hidden_size)
        self.b_iz, self.b_hz = w(hidden_size), w(hidden_size)
        self.b_in, self.b_hn = w(hidden_size), w(hidden_size)

    def forward(self, x, h=None):
        if self.batch_first:
            x = x.transpose(0, 1)
        h = x.new_zeros(x.shape[1], self.hidden_size) if h is None else h.squeeze(0)
        hs = []
        for x_t in x:
            r = torch.sigmoid(x_t @ self.W_ir.T + self.b_ir + h @ self.W_hr.T + self.b_hr)
            z = torch.sigmoid(x_t @ self.W_iz.T + self.b_iz + h @ self.W_hz.T + self.b_hz)
            n = torch.tanh(x_t @ self.W_in.T + self.b_in + r * (h @ self.W_hn.T + self.b_hn))
            h = (1 - z) * n + z * h
            hs.append(h)
        out = torch.stack(hs, dim=1 if self.batch_first else 0)
        return out, h.unsqueeze(0)
