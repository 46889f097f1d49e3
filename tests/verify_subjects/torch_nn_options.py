"""torch.nn-convention subjects whose constructors take more than (input_size, hidden_size):
batch-first modules, a module with an output layer, and one that needs num_layers."""

import torch
from torch import nn


class BatchFirstGRU(nn.Module):
    """nn.GRU inside, batch_first=True: x (B, T, D) -> output (B, T, H)."""

    def __init__(self, input_size, hidden_size, batch_first=True):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=batch_first)

    def forward(self, x, h0=None):
        return self.gru(x, h0)


class BatchFirstLoopLSTM(nn.Module):
    """A hand-written LSTM that keeps batch_first as an attribute, as nn.LSTM does."""

    def __init__(self, input_size, hidden_size, batch_first=False):
        super().__init__()
        self.batch_first = batch_first
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x, state):
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, D)
        h, c = state[0][0], state[1][0]
        outs = []
        for x_t in x:
            h, c = self.cell(x_t, (h, c))
            outs.append(h)
        out = torch.stack(outs)  # (T, B, H)
        if self.batch_first:
            out = out.transpose(0, 1)  # (B, T, H)
        return out, (h[None], c[None])


class TaggerRNN(nn.Module):
    """An RNN with an output size it does not use in forward (a tagger's head kept apart)."""

    def __init__(self, input_size, hidden_size, output_size, num_layers=1):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, num_layers=num_layers)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x, h0):
        return self.rnn(x, h0)


class TaggerLSTM(nn.Module):
    """Built as the char-RNN tutorial's module is, (input_size, hidden_size, output_size), with
    an LSTM where the tutorial has nn.RNN: not the tutorial's module."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.h2o(h[0])


class DefaultBatchFirstRNN(nn.Module):
    """batch_first=True by default in its constructor, kept nowhere: its forward reads x[:, t]."""

    def __init__(self, input_size, hidden_size, batch_first=True):
        super().__init__()
        self.cell = nn.RNNCell(input_size, hidden_size)

    def forward(self, x, h0):
        h = h0[0]
        outs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            outs.append(h)
        return torch.stack(outs, dim=1), h[None]
