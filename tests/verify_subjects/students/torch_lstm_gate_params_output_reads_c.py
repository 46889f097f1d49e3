"""LSTM from torch.nn.LSTM's documented equations, one nn.Parameter per gate and source, with one mistake:
GateLSTM: output gate reads the previous CELL state c_{t-1} instead of h_{t-1} (c @ W_ho.T)."""
import math

import torch
from torch import nn


class GateLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1.0 / math.sqrt(hidden_size)

        def u(*shape):
            return nn.Parameter(torch.empty(*shape).uniform_(-k, k))

        for g in ("i", "f", "g", "o"):
            setattr(self, f"W_i{g}", u(hidden_size, input_size))
            setattr(self, f"W_h{g}", u(hidden_size, hidden_size))
            setattr(self, f"b_i{g}", u(hidden_size))
            setattr(self, f"b_h{g}", u(hidden_size))

    def forward(self, x, state=None):
        T, B, _ = x.shape
        if state is None:
            z = x.new_zeros(1, B, self.hidden_size)
            state = (z, z)
        h, c = state[0][0], state[1][0]
        hs = []
        for t in range(T):
            xt = x[t]
            i = torch.sigmoid(xt @ self.W_ii.T + self.b_ii + h @ self.W_hi.T + self.b_hi)
            f = torch.sigmoid(xt @ self.W_if.T + self.b_if + h @ self.W_hf.T + self.b_hf)
            g = torch.tanh(xt @ self.W_ig.T + self.b_ig + h @ self.W_hg.T + self.b_hg)
            o = torch.sigmoid(xt @ self.W_io.T + self.b_io + c @ self.W_ho.T + self.b_ho)
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs), (h[None], c[None])
