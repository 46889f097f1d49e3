"""An LSTM from torch.nn.LSTM's documented equations, one nn.Parameter per gate and source, with one mistake:
ParamLSTM: the new cell state squashed, c = tanh(f c + i g)."""
import torch
from torch import nn
import torch.nn.functional as F


class ParamLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = hidden_size ** -0.5

        def p(*shape):
            return nn.Parameter(torch.empty(*shape).uniform_(-k, k))

        self.W_ii, self.W_hi = p(hidden_size, input_size), p(hidden_size, hidden_size)
        self.b_ii, self.b_hi = p(hidden_size), p(hidden_size)
        self.W_if, self.W_hf = p(hidden_size, input_size), p(hidden_size, hidden_size)
        self.b_if, self.b_hf = p(hidden_size), p(hidden_size)
        self.W_ig, self.W_hg = p(hidden_size, input_size), p(hidden_size, hidden_size)
        self.b_ig, self.b_hg = p(hidden_size), p(hidden_size)
        self.W_io, self.W_ho = p(hidden_size, input_size), p(hidden_size, hidden_size)
        self.b_io, self.b_ho = p(hidden_size), p(hidden_size)

    def forward(self, x, state=None):
        T, B, _ = x.shape
        if state is None:
            h = x.new_zeros(B, self.hidden_size)
            c = x.new_zeros(B, self.hidden_size)
        else:
            h, c = (s[0] for s in state)
        ys = []
        for t in range(T):
            xt = x[t]
            i = torch.sigmoid(F.linear(xt, self.W_ii, self.b_ii) + F.linear(h, self.W_hi, self.b_hi))
            f = torch.sigmoid(F.linear(xt, self.W_if, self.b_if) + F.linear(h, self.W_hf, self.b_hf))
            g = torch.tanh(F.linear(xt, self.W_ig, self.b_ig) + F.linear(h, self.W_hg, self.b_hg))
            o = torch.sigmoid(F.linear(xt, self.W_io, self.b_io) + F.linear(h, self.W_ho, self.b_ho))
            c = torch.tanh(f * c + i * g)
            h = o * torch.tanh(c)
            ys.append(h)
        return torch.stack(ys), (h.unsqueeze(0), c.unsqueeze(0))
