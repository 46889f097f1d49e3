"""torch.nn-convention subjects built from one nn.Linear per gate and source, named as
students name them: d2l's GRU form, torch's docs' W_ir/W_hr, an LSTM, hidden-side layers
without biases."""

import torch
from torch import nn


class D2LFormGRU(nn.Module):
    """n = tanh(W_xh x + W_hh (r * h) + b): the reset gate before the hidden-side matmul."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_xr, self.W_hr = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.W_xz, self.W_hz = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.W_xh, self.W_hh = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0):
        h = h0[0]
        outs = []
        for x_t in x:
            r = torch.sigmoid(self.W_xr(x_t) + self.W_hr(h))
            z = torch.sigmoid(self.W_xz(x_t) + self.W_hz(h))
            h_tilde = torch.tanh(self.W_xh(x_t) + self.W_hh(r * h))
            h = z * h + (1 - z) * h_tilde
            outs.append(h)
        return torch.stack(outs), h[None]


class DocsNamesGRU(nn.Module):
    """torch.nn.GRU's documentation names, W_ir/W_hr ..., hidden-side r and z without biases."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_ir, self.W_hr = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_iz, self.W_hz = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size, bias=False)
        self.W_in, self.W_hn = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0):
        h = h0[0]
        outs = []
        for x_t in x:
            r = torch.sigmoid(self.W_ir(x_t) + self.W_hr(h))
            z = torch.sigmoid(self.W_iz(x_t) + self.W_hz(h))
            n = torch.tanh(self.W_in(x_t) + r * self.W_hn(h))
            h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs), h[None]


class GateLSTM(nn.Module):
    """Eight layers, the gates spelt out: input_x/input_h, forget_x/forget_h, ..."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        for gate in ("input", "forget", "cell", "output"):
            setattr(self, f"{gate}_x", nn.Linear(input_size, hidden_size))
            setattr(self, f"{gate}_h", nn.Linear(hidden_size, hidden_size))

    def forward(self, x, state):
        h, c = state[0][0], state[1][0]
        outs = []
        for x_t in x:
            i = torch.sigmoid(self.input_x(x_t) + self.input_h(h))
            f = torch.sigmoid(self.forget_x(x_t) + self.forget_h(h))
            g = torch.tanh(self.cell_x(x_t) + self.cell_h(h))
            o = torch.sigmoid(self.output_x(x_t) + self.output_h(h))
            c = f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h[None], c[None])


class UnnamedGates(nn.Module):
    """Six layers whose names do not say their gates: refused with the layers listed."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.a, self.b = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.c, self.d = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
        self.e, self.f = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def forward(self, x, h0):
        return x, h0
