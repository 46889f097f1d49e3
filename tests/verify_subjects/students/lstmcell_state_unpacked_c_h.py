"""An nn.LSTMCell loop meant as a drop-in for nn.LSTM, unpacking the state it is given as
(c, h) where nn.LSTM's is (h_0, c_0)."""
import torch
from torch import nn


class CellLoopLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x, hx=None):
        if hx is None:
            zeros = x.new_zeros(1, x.shape[1], self.hidden_size)
            hx = (zeros, zeros)
        c, h = hx[0][0], hx[1][0]
        ys = []
        for x_t in x:
            h, c = self.cell(x_t, (h, c))
            ys.append(h)
        return torch.stack(ys), (h[None], c[None])
