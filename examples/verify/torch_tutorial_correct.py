"""The tutorial's first-form RNN module written as the equations have it,
H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h) and output_t = log softmax(H_t W_hq + b_q):

    rnnlab verify examples/verify/torch_tutorial_correct.py --convention torch-tutorial

Still one step per call, forward(input, hidden) -> (output, hidden), with i2h on the
concatenated letter and hidden state; the output layer h2o reads the new hidden state.
"""

import torch
import torch.nn as nn


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = torch.tanh(self.i2h(combined))
        output = self.softmax(self.h2o(hidden))
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)
