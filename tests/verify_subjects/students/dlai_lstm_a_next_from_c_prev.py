"""Sequence Models W1 A1 -- Building your RNN step by step (column vectors, dict params), with one mistake:
lstm_cell_forward: a_next = ot * tanh(c_prev) (old cell) instead of tanh(c_next); backward unchanged."""
import numpy as np


def _softmax(z):
    z = z - z.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def rnn_cell_forward(xt, a_prev, parameters):
    p = parameters
    a_next = np.tanh(p["Waa"] @ a_prev + p["Wax"] @ xt + p["ba"])
    yt_pred = _softmax(p["Wya"] @ a_next + p["by"])
    cache = (a_next, a_prev, xt, parameters)
    return a_next, yt_pred, cache


def rnn_forward(x, a0, parameters):
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wya"].shape
    a = np.zeros((n_a, m, T_x))
    y_pred = np.zeros((n_y, m, T_x))
    caches = []
    a_t = a0
    for t in range(T_x):
        a_t, y_pred[:, :, t], cache = rnn_cell_forward(x[:, :, t], a_t, parameters)
        a[:, :, t] = a_t
        caches.append(cache)
    return a, y_pred, (caches, x)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, p = cache
    dz = da_next * (1.0 - a_next ** 2)
    return {
        "dxt": p["Wax"].T @ dz,
        "da_prev": p["Waa"].T @ dz,
        "dWax": dz @ xt.T,
        "dWaa": dz @ a_prev.T,
        "dba": dz.sum(axis=1, keepdims=True),
    }


def rnn_backward(da, caches):
    caches, x = caches
    n_x, m, T_x = x.shape
    n_a = da.shape[0]
    grads = {"dx": np.zeros((n_x, m, T_x)), "dWax": np.zeros((n_a, n_x)),
             "dWaa": np.zeros((n_a, n_a)), "dba": np.zeros((n_a, 1))}
    da_prevt = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        grads["dx"][:, :, t] = g["dxt"]
        da_prevt = g["da_prev"]
        for name in ("dWax", "dWaa", "dba"):
            grads[name] += g[name]
    grads["da0"] = da_prevt
    return grads


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    p = parameters
    concat = np.vstack([a_prev, xt])
    ft = _sigmoid(p["Wf"] @ concat + p["bf"])
    it = _sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = _sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_prev)
    yt_pred = _softmax(p["Wy"] @ a_next + p["by"])
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    return a_next, c_next, yt_pred, cache


def lstm_forward(x, a0, parameters):
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wy"].shape
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))
    caches = []
    a_next = a0
    c_next = np.zeros_like(a0)
    for t in range(T_x):
        a_next, c_next, y[:, :, t], cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t] = a_next
        c[:, :, t] = c_next
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p = cache
    n_a = a_next.shape[0]
    n_x = xt.shape[0]
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1.0 - tanh_c ** 2)
    dot = da_next * tanh_c * ot * (1.0 - ot)
    dcct = dc * it * (1.0 - cct ** 2)
    dit = dc * cct * it * (1.0 - it)
    dft = dc * c_prev * ft * (1.0 - ft)
    concat = np.vstack([a_prev, xt])
    out = {}
    da_prev = np.zeros_like(a_prev)
    dxt = np.zeros_like(xt)
    for gate, dz in (("f", dft), ("i", dit), ("c", dcct), ("o", dot)):
        W = p["W" + gate]
        out["dW" + gate] = dz @ concat.T
        out["db" + gate] = dz.sum(axis=1, keepdims=True)
        da_prev += W[:, :n_a].T @ dz
        dxt += W[:, n_a:].T @ dz
    out["da_prev"] = da_prev
    out["dc_prev"] = dc * ft
    out["dxt"] = dxt
    return out


def lstm_backward(da, caches):
    caches, x = caches
    n_x, m, T_x = x.shape
    n_a = da.shape[0]
    total = {"dx": np.zeros((n_x, m, T_x))}
    for gate in "fico":
        total["dW" + gate] = np.zeros((n_a, n_a + n_x))
        total["db" + gate] = np.zeros((n_a, 1))
    da_carry = np.zeros((n_a, m))
    dc_carry = np.zeros((n_a, m))
    for t in range(T_x - 1, -1, -1):
        g = lstm_cell_backward(da[:, :, t] + da_carry, dc_carry, caches[t])
        total["dx"][:, :, t] = g["dxt"]
        da_carry, dc_carry = g["da_prev"], g["dc_prev"]
        for gate in "fico":
            total["dW" + gate] += g["dW" + gate]
            total["db" + gate] += g["db" + gate]
    total["da0"] = da_carry
    return total
