"""A CS231n solution in another style: float32 throughout, sigmoid as 1/(1+exp(-x)), gates
sliced with np.split, caches as dicts with extra entries, and no step functions for the
RNN (rnn_forward/rnn_backward written as one loop)."""

import numpy as np


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_forward(x, h0, Wx, Wh, b):
    x, h0, Wx, Wh, b = (a.astype(np.float32) for a in (x, h0, Wx, Wh, b))
    N, T, _ = x.shape
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(x[:, t] @ Wx + hs[-1] @ Wh + b))
    h = np.stack(hs[1:], axis=1)
    return h, {"x": x, "hs": hs, "Wx": Wx, "Wh": Wh, "unused": np.ones(3)}


def rnn_backward(dh, cache):
    x, hs, Wx, Wh = cache["x"], cache["hs"], cache["Wx"], cache["Wh"]
    dh = dh.astype(np.float32)
    N, T, H = dh.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, np.float32)
    carry = np.zeros((N, H), np.float32)
    for t in range(T - 1, -1, -1):
        da = (dh[:, t] + carry) * (1 - hs[t + 1] ** 2)
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += hs[t].T @ da
        db += da.sum(0)
        carry = da @ Wh.T
    return dx, carry, dWx, dWh, db


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    x, prev_h, prev_c, Wx, Wh, b = (a.astype(np.float32) for a in (x, prev_h, prev_c, Wx, Wh, b))
    a = x @ Wx + prev_h @ Wh + b
    ai, af, ao, ag = np.split(a, 4, axis=1)
    i, f, o, g = _sig(ai), _sig(af), _sig(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, i=i, f=f, o=o,
                                g=g, next_c=next_c, a=a)


def lstm_step_backward(dnext_h, dnext_c, cache):
    c = cache
    tc = np.tanh(c["next_c"])
    dc = dnext_c + dnext_h * c["o"] * (1 - tc * tc)
    da = np.concatenate([dc * c["g"] * c["i"] * (1 - c["i"]), dc * c["prev_c"] * c["f"] * (1 - c["f"]),
                         dnext_h * tc * c["o"] * (1 - c["o"]), dc * c["i"] * (1 - c["g"] ** 2)], axis=1)
    return (da @ c["Wx"].T, da @ c["Wh"].T, dc * c["f"], c["x"].T @ da, c["prev_h"].T @ da,
            da.sum(axis=0))


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    h, c = h0, np.zeros_like(h0)
    out, caches = [], []
    for t in range(T):
        h, c, cache = lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        out.append(h)
        caches.append(cache)
    return np.stack(out, 1), caches


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    dx = np.zeros((N, T, cache[0]["x"].shape[1]), np.float32)
    grads = None
    dph, dpc = np.zeros((N, H), np.float32), np.zeros((N, H), np.float32)
    for t in reversed(range(T)):
        dx[:, t], dph, dpc, *g = lstm_step_backward(dh[:, t] + dph, dpc, cache[t])
        grads = g if grads is None else [a + b for a, b in zip(grads, g)]
    return (dx, dph, *grads)
