"""CS231n's rnn whose rnn_forward hands h0 to every step (the state never updated); the
step functions and the backward loop are right, so each step's cache holds h0."""
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h ** 2)
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    caches, hs = [], []
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h0, Wx, Wh, b)  # the mistake: h0, not h
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def rnn_backward(dh, cache):
    dx = []
    dWx, dWh, db = 0, 0, 0
    dprev = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxt, dprev, dWxt, dWht, dbt = rnn_step_backward(dh[:, t] + dprev, cache[t])
        dx.insert(0, dxt)
        dWx, dWh, db = dWx + dWxt, dWh + dWht, db + dbt
    return np.stack(dx, axis=1), dprev, dWx, dWh, db
