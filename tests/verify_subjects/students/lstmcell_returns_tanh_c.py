"""An LSTM looping nn.LSTMCell whose final cell state goes through a tanh before it is
returned: c_n = tanh(c), where c itself belongs."""
import torch
from torch import nn


class CellLoop(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x, hc=None):
        batch = x.size(1)
        if hc is None:
            hc = (x.new_zeros(1, batch, self.hidden_size), x.new_zeros(1, batch, self.hidden_size))
        h, c = hc[0].squeeze(0), hc[1].squeeze(0)
        hs = []
        for step in range(x.size(0)):
            h, c = self.cell(x[step], (h, c))
            hs.append(h)
        return torch.stack(hs), (h.unsqueeze(0), torch.tanh(c).unsqueeze(0))
