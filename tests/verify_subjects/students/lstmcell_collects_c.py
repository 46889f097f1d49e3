"""An LSTM looping nn.LSTMCell that collects the cell state as its output at every step."""
import torch
from torch import nn


class LoopLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm_cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x, state=None):
        if state is None:
            h = c = torch.zeros(x.shape[1], self.hidden_size, dtype=x.dtype)
        else:
            h, c = state[0][0], state[1][0]
        outputs = []
        for x_t in x:
            h, c = self.lstm_cell(x_t, (h, c))
            outputs.append(c)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))
