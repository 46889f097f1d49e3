"""d2l's scratch RNN / LSTM training code, as d2l writes it (chapters 8.5 and 9.2).

This is the baseline rnnlab is measured against, so it is copied, not improved: per-gate
matmuls on ``F.one_hot(X.T, V).float()`` inputs, a Python loop over time that keeps the
whole graph for autograd, d2l's ``grad_clipping`` (a Python sum of per-parameter squared
norms), d2l's ``sgd`` with ``batch_size=1`` and ``train_epoch_ch8``'s state handling
(sequential partitioning: the state is carried and detached in place). The only change
is where the batches come from: rnnlab's ``seq_data_iter_sequential`` is d2l's, batch for
batch, in NumPy, and each batch is turned into the torch tensors d2l's iterator yields.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


# --- d2l 8.5: RNN from scratch --------------------------------------------------------


def get_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    # Hidden layer parameters
    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens, device=device)
    # Output layer parameters
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    # Attach gradients
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_rnn_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device),)


def rnn(inputs, state, params):
    # Here `inputs` shape: (`num_steps`, `batch_size`, `vocab_size`)
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    # Shape of `X`: (`batch_size`, `vocab_size`)
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


class RNNModelScratch:  #@save
    """A RNN Model implemented from scratch."""

    def __init__(self, vocab_size, num_hiddens, device, get_params, init_state, forward_fn):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.params = get_params(vocab_size, num_hiddens, device)
        self.init_state, self.forward_fn = init_state, forward_fn

    def __call__(self, X, state):
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size, device):
        return self.init_state(batch_size, self.num_hiddens, device)


# --- d2l 9.2: LSTM from scratch -------------------------------------------------------


def get_lstm_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    def three():
        return (normal((num_inputs, num_hiddens)), normal((num_hiddens, num_hiddens)),
                torch.zeros(num_hiddens, device=device))

    W_xi, W_hi, b_i = three()  # Input gate parameters
    W_xf, W_hf, b_f = three()  # Forget gate parameters
    W_xo, W_ho, b_o = three()  # Output gate parameters
    W_xc, W_hc, b_c = three()  # Candidate memory cell parameters
    # Output layer parameters
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    # Attach gradients
    params = [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_lstm_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device),
            torch.zeros((batch_size, num_hiddens), device=device))


def lstm(inputs, state, params):
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
        F = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = F * C + I * C_tilda
        H = O * torch.tanh(C)
        Y = (H @ W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H, C)


# --- d2l 8.6: the concise model on torch.nn.RNN / nn.LSTM -------------------------------


class RNNModel(nn.Module):
    """The RNN model (d2l 8.6): one-hot inputs into ``nn.RNN`` / ``nn.LSTM``, then ``nn.Linear``."""

    def __init__(self, rnn_layer, vocab_size, **kwargs):
        super(RNNModel, self).__init__(**kwargs)
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        # If the RNN is bidirectional (to be introduced later),
        # `num_directions` should be 2, else it should be 1.
        if not self.rnn.bidirectional:
            self.num_directions = 1
            self.linear = nn.Linear(self.num_hiddens, self.vocab_size)
        else:
            self.num_directions = 2
            self.linear = nn.Linear(self.num_hiddens * 2, self.vocab_size)

    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size)
        X = X.to(torch.float32)
        Y, state = self.rnn(X, state)
        # The fully connected layer will first change the shape of `Y` to
        # (`num_steps` * `batch_size`, `num_hiddens`). Its output shape is
        # (`num_steps` * `batch_size`, `vocab_size`).
        output = self.linear(Y.reshape((-1, Y.shape[-1])))
        return output, state

    def begin_state(self, device, batch_size=1):
        if not isinstance(self.rnn, nn.LSTM):
            # `nn.GRU` takes a tensor as hidden state
            return torch.zeros((self.num_directions * self.rnn.num_layers,
                                batch_size, self.num_hiddens), device=device)
        else:
            # `nn.LSTM` takes a tuple of hidden states
            return (torch.zeros((self.num_directions * self.rnn.num_layers,
                                 batch_size, self.num_hiddens), device=device),
                    torch.zeros((self.num_directions * self.rnn.num_layers,
                                 batch_size, self.num_hiddens), device=device))


# --- d2l 8.5: training ----------------------------------------------------------------


def grad_clipping(net, theta):  #@save
    """Clip the gradient."""
    if isinstance(net, nn.Module):
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = net.params
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def sgd(params, lr, batch_size):  #@save
    """Minibatch stochastic gradient descent."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def train_epoch_ch8(net, train_iter, loss, updater, device, use_random_iter):
    """Train a net within one epoch (d2l 8.5), returning (perplexity, tokens)."""
    state = None
    total, count = 0.0, 0
    for X, Y in train_iter:
        if state is None or use_random_iter:
            # Initialize `state` when either it is the first iteration or
            # using random sampling
            state = net.begin_state(batch_size=X.shape[0], device=device)
        else:
            if isinstance(net, nn.Module) and not isinstance(state, tuple):
                # `state` is a tensor for `nn.GRU`
                state.detach_()
            else:
                # `state` is a tuple of tensors for `nn.LSTM` and
                # for our custom scratch implementation
                for s in state:
                    s.detach_()
        y = Y.T.reshape(-1)
        X, y = X.to(device), y.to(device)
        y_hat, state = net(X, state)
        l = loss(y_hat, y.long()).mean()
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            l.backward()
            grad_clipping(net, 1)
            updater.step()
        else:
            l.backward()
            grad_clipping(net, 1)
            # mean function has been invoked
            updater(batch_size=1)
        total += float(l * y.numel())  # d2l's metric.add(l * y.numel(), y.numel())
        count += y.numel()
    return math.exp(total / count), count


def make_scratch(cell, vocab_size, num_hiddens, device="cpu"):
    """d2l's ``RNNModelScratch`` for ``rnn`` or ``lstm``, and its ``sgd`` updater."""
    if cell == "rnn":
        net = RNNModelScratch(vocab_size, num_hiddens, device, get_params, init_rnn_state, rnn)
    elif cell == "lstm":
        net = RNNModelScratch(vocab_size, num_hiddens, device, get_lstm_params,
                              init_lstm_state, lstm)
    else:
        raise ValueError(f"d2l has no scratch {cell!r}")
    return net


def torch_batches(numpy_batches):
    """rnnlab's (B, T) int64 NumPy batches as the torch tensors d2l's iterator yields."""
    for X, Y in numpy_batches:
        yield torch.from_numpy(X), torch.from_numpy(Y)


if __name__ == "__main__":  # a short smoke run: d2l's LSTM for a few epochs
    import sys
    import time
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
    from rnnlab.data import load_corpus_time_machine, seq_data_iter_sequential

    corpus, vocab = load_corpus_time_machine(10_000)
    net = make_scratch("lstm", len(vocab), 256)
    lr = 1.0
    updater = lambda batch_size: sgd(net.params, lr, batch_size)  # noqa: E731
    loss = nn.CrossEntropyLoss()
    for epoch in range(3):
        start = time.perf_counter()
        it = torch_batches(seq_data_iter_sequential(corpus, 32, 35, np.random.default_rng(epoch)))
        ppl, n = train_epoch_ch8(net, it, loss, updater, "cpu", False)
        print(f"epoch {epoch + 1}: perplexity {ppl:.2f}, {n / (time.perf_counter() - start):,.0f} tokens/s")
