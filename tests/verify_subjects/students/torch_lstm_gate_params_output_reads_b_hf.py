"""The per-gate LSTM of torch.nn.LSTM's equations (one nn.Parameter per gate and source), its
output gate's line adding the forget gate's hidden-side bias b_hf where b_ho belongs."""
import math

import torch
from torch import nn


class ScratchLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        # input gate
        self.W_ii = nn.Parameter(torch.empty(hidden_size, input_size))
        self.W_hi = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_ii = nn.Parameter(torch.empty(hidden_size))
        self.b_hi = nn.Parameter(torch.empty(hidden_size))
        # forget gate
        self.W_if = nn.Parameter(torch.empty(hidden_size, input_size))
        self.W_hf = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_if = nn.Parameter(torch.empty(hidden_size))
        self.b_hf = nn.Parameter(torch.empty(hidden_size))
        # cell candidate
        self.W_ig = nn.Parameter(torch.empty(hidden_size, input_size))
        self.W_hg = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_ig = nn.Parameter(torch.empty(hidden_size))
        self.b_hg = nn.Parameter(torch.empty(hidden_size))
        # output gate
        self.W_io = nn.Parameter(torch.empty(hidden_size, input_size))
        self.W_ho = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_io = nn.Parameter(torch.empty(hidden_size))
        self.b_ho = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def forward(self, x, hx=None):
        seq_len, batch, _ = x.shape
        if hx is None:
            h = x.new_zeros(batch, self.hidden_size)
            c = x.new_zeros(batch, self.hidden_size)
        else:
            h, c = hx[0][0], hx[1][0]
        outputs = []
        for t in range(seq_len):
            x_t = x[t]
            i = torch.sigmoid(x_t @ self.W_ii.T + self.b_ii + h @ self.W_hi.T + self.b_hi)
            f = torch.sigmoid(x_t @ self.W_if.T + self.b_if + h @ self.W_hf.T + self.b_hf)
            g = torch.tanh(x_t @ self.W_ig.T + self.b_ig + h @ self.W_hg.T + self.b_hg)
            o = torch.sigmoid(x_t @ self.W_io.T + self.b_io + h @ self.W_ho.T + self.b_hf)
            c = f * c + i * g
            h = o * torch.tanh(c)
            outputs.append(h)
        output = torch.stack(outputs, dim=0)
        return output, (h.unsqueeze(0), c.unsqueeze(0))
