"""The RNN module of PyTorch's tutorial "NLP From Scratch: Classifying Names with a
Character-Level RNN", in its first form, as students copy it:

    rnnlab verify examples/verify/torch_tutorial_buggy.py --convention torch-tutorial

One step per call: the letter and the previous hidden state are concatenated, one linear
layer makes the new hidden state and another the output, read through log-softmax. It
trains and classifies names, but it is not the RNN of the equations: no tanh on the new
hidden state, and the output is made from the previous hidden state, one step late.
"""

import torch
import torch.nn as nn


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.i2o(combined)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)
