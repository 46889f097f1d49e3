"""torch.nn's own modules as subjects: they must conform (float32, oneDNN/ATen kernels)."""

from torch import nn


class TorchLSTM(nn.LSTM):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)


class TorchGRU(nn.GRU):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)


def rnn_factory(input_size, hidden_size):
    return nn.RNN(input_size, hidden_size)
