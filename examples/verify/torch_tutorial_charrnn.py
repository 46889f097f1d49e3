"""The tutorial's newer CharRNN: nn.RNN over the whole name, a linear layer on the last
hidden state, log-softmax over the classes:

    rnnlab verify examples/verify/torch_tutorial_charrnn.py --convention torch-tutorial

forward(line_tensor) takes the name as (T, B, n_letters) one-hot rows and returns the
log-probabilities of the classes after the last letter, (B, n_classes).
"""

import torch.nn as nn


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(CharRNN, self).__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)
        return output
