"""An LSTM of one nn.Linear per gate and source, meant as a drop-in for nn.LSTM, whose forget
gate's line calls the input gate's hidden-side layer (a line copied from the one above and
not fully edited): self.h2i(h) where self.h2f(h) belongs."""
import torch
from torch import nn


class LinearGatesLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        for gate in "ifgo":
            setattr(self, f"x2{gate}", nn.Linear(input_size, hidden_size))
            setattr(self, f"h2{gate}", nn.Linear(hidden_size, hidden_size))

    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(1, x.shape[1], self.hidden_size)
            state = (zeros, zeros)
        h, c = state[0][0], state[1][0]
        outputs = []
        for x_t in x:
            i = torch.sigmoid(self.x2i(x_t) + self.h2i(h))
            f = torch.sigmoid(self.x2f(x_t) + self.h2i(h))
            g = torch.tanh(self.x2g(x_t) + self.h2g(h))
            o = torch.sigmoid(self.x2o(x_t) + self.h2o(h))
            c = f * c + i * g
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h[None], c[None])
