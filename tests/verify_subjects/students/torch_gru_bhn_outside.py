"""A hand-written GRU with nn.GRU's parameter names that adds the hidden side's candidate
bias outside the reset product: n = tanh(i_n + r * h_n + b_hn)."""
import torch
from torch import nn


class HandGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = hidden_size ** -0.5
        self.weight_ih_l0 = nn.Parameter(torch.empty(3 * hidden_size, input_size).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(3 * hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-k, k))
        self.bias_hh_l0 = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-k, k))

    def forward(self, x, h0=None):
        if h0 is None:
            h0 = x.new_zeros(1, x.shape[1], self.hidden_size)
        h = h0[0]
        b_hr, b_hz, b_hn = self.bias_hh_l0.chunk(3)
        ys = []
        for x_t in x:
            i_r, i_z, i_n = (x_t @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=1)
            h_r, h_z, h_n = (h @ self.weight_hh_l0.T).chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r + b_hr)
            z = torch.sigmoid(i_z + h_z + b_hz)
            n = torch.tanh(i_n + r * h_n + b_hn)
            h = (1 - z) * n + z * h
            ys.append(h)
        return torch.stack(ys), h[None]
