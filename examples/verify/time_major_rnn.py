"""An RNN in a layout of its own (time-major x (T, B, D), weights as arguments, a backward
that takes the cache): it fits none of the conventions, and rnnlab says so and prints a
Protocol skeleton that calls these two functions.

    rnnlab verify examples/verify/time_major_rnn.py > time_major_rnn_protocol.py

time_major_rnn_protocol.py beside it is that skeleton with its one TODO this file needs
done (the final state's gradient added to dHs' last step).
"""

import numpy as np


def my_rnn_forward(x, h0, Wx, Wh, b):
    hs, h = [], h0
    for x_t in x:                                  # x (T, B, D), time-major
        h = np.tanh(x_t @ Wx + h @ Wh + b)         # (B, H)
        hs.append(h)
    hs = np.stack(hs)                              # (T, B, H)
    return hs, (x, h0, Wx, Wh, hs)


def my_rnn_backward(dh, cache):
    x, h0, Wx, Wh, hs = cache
    prev = np.concatenate([h0[None], hs[:-1]])     # (T, B, H)
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db = np.zeros(Wh.shape[0])
    dnext = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        da = (dh[t] + dnext) * (1 - hs[t] ** 2)     # (B, H)
        dx[t] = da @ Wx.T
        dWx += x[t].T @ da
        dWh += prev[t].T @ da
        db += da.sum(0)
        dnext = da @ Wh.T
    dh0 = dnext
    return dx, dh0, dWx, dWh, db
