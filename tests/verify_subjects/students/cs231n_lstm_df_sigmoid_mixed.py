"""A CS231n LSTM written with a dict cache and slices: the forget gate's σ' written f * (1 - i)."""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    ai, af, ao, ag = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    tc = np.tanh(next_c)
    next_h = o * tc
    cache = {"x": x, "h": prev_h, "c": prev_c, "Wx": Wx, "Wh": Wh,
             "i": i, "f": f, "o": o, "g": g, "tc": tc}
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    i, f, o, g, tc = cache["i"], cache["f"], cache["o"], cache["g"], cache["tc"]
    do = dnext_h * tc
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    di = dc * g
    df = dc * cache["c"]
    dg = dc * i
    dprev_c = dc * f
    da = np.concatenate([di * i * (1 - i), df * f * (1 - i), do * o * (1 - o), dg * (1 - g ** 2)], axis=1)
    dx = da.dot(cache["Wx"].T)
    dprev_h = da.dot(cache["Wh"].T)
    dWx = cache["x"].T.dot(da)
    dWh = cache["h"].T.dot(da)
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    h_prev, c_prev = h0, np.zeros_like(h0)
    hs, caches = [], []
    for t in range(T):
        h_prev, c_prev, cache = lstm_step_forward(x[:, t, :], h_prev, c_prev, Wx, Wh, b)
        hs.append(h_prev)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0]["x"].shape[1]
    dx = np.zeros((N, T, D))
    dWx, dWh, db = np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t, :], dh_next, dc_next, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t, :] + dh_next, dc_next, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dh_next, dWx, dWh, db
