"""The newer CharRNN reading the first step's output where the tutorial reads the last
hidden state: rnn_out[0] is the state after the first letter (rnn_out is (T, B, H),
time first), hidden[0] the state after the last. It trains, on the first letter alone.

    rnnlab verify examples/verify/torch_tutorial_charrnn_buggy.py --convention torch-tutorial
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
        output = self.h2o(rnn_out[0])
        output = self.softmax(output)
        return output
