"""Sequence Models week 1 -- Building your RNN step by step (my graded functions), with one mistake:
rnn_backward: dWaa left out of the accumulation loop (returned as zeros)."""
import numpy as np


def softmax(z):
    z = z - z.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def rnn_cell_forward(xt, a_prev, parameters):
    p = parameters
    a_next = np.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])
    yt_pred = softmax(p["Wya"] @ a_next + p["by"])
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
        a_t, y_t, cache = rnn_cell_forward(x[:, :, t], a_t, parameters)
        a[:, :, t] = a_t
        y_pred[:, :, t] = y_t
        caches.append(cache)
    return a, y_pred, (caches, x)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, parameters = cache
    dz = da_next * (1 - a_next ** 2)
    return {"dxt": parameters["Wax"].T @ dz,
            "da_prev": parameters["Waa"].T @ dz,
            "dWax": dz @ xt.T,
            "dWaa": dz @ a_prev.T,
            "dba": dz.sum(axis=1, keepdims=True)}


def rnn_backward(da, caches):
    cache_list, x = caches
    n_x, m, T_x = x.shape
    n_a = da.shape[0]
    grads = {"dx": np.zeros((n_x, m, T_x)), "dWax": np.zeros((n_a, n_x)),
             "dWaa": np.zeros((n_a, n_a)), "dba": np.zeros((n_a, 1))}
    da_prevt = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = rnn_cell_backward(da[:, :, t] + da_prevt, cache_list[t])
        grads["dx"][:, :, t] = g["dxt"]
        da_prevt = g["da_prev"]
        for k in ("dWax", "dba"):
            grads[k] += g[k]
    grads["da0"] = da_prevt
    return grads


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    p = parameters
    concat = np.vstack([a_prev, xt])
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(p["Wy"] @ a_next + p["by"])
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    return a_next, c_next, yt_pred, cache


def lstm_forward(x, a0, parameters):
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wy"].shape
    a = np.zeros((n_a, m, T_x))
    c = np.zeros_like(a)
    y = np.zeros((n_y, m, T_x))
    a_next, c_next = a0, np.zeros((n_a, m))
    caches = []
    for t in range(T_x):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t], y[:, :, t] = a_next, c_next, yt
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    n_a = a_next.shape[0]
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1 - tanh_c ** 2)
    dot = da_next * tanh_c * ot * (1 - ot)
    dcct = dc * it * (1 - cct ** 2)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)
    concat = np.concatenate((a_prev, xt), axis=0)
    out = {}
    dconcat = 0
    for name, dz in (("f", dft), ("i", dit), ("c", dcct), ("o", dot)):
        out["dW" + name] = dz @ concat.T
        out["db" + name] = dz.sum(axis=1, keepdims=True)
        dconcat = dconcat + parameters["W" + name].T @ dz
    out["da_prev"] = dconcat[:n_a]
    out["dxt"] = dconcat[n_a:]
    out["dc_prev"] = dc * ft
    return out


def lstm_backward(da, caches):
    cache_list, x = caches
    n_x, m, T_x = x.shape
    n_a = da.shape[0]
    keys = ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo")
    params = cache_list[0][-1]
    acc = {k: np.zeros_like(params[k[1:]]) for k in keys}
    dx = np.zeros((n_x, m, T_x))
    da_prevt = np.zeros((n_a, m))
    dc_prevt = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, cache_list[t])
        dx[:, :, t] = g["dxt"]
        da_prevt, dc_prevt = g["da_prev"], g["dc_prev"]
        for k in keys:
            acc[k] += g[k]
    return dict(dx=dx, da0=da_prevt, **acc)
