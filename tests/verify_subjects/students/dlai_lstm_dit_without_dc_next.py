"""deeplearning.ai's LSTM backward written out gate by gate, as the assignment's hints do,
whose dit leaves out dc_next * cct: the input gate's gradient from da_next's path alone."""
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    concat = np.concatenate((a_prev, xt), axis=0)
    ft = sigmoid(parameters["Wf"] @ concat + parameters["bf"])
    it = sigmoid(parameters["Wi"] @ concat + parameters["bi"])
    cct = np.tanh(parameters["Wc"] @ concat + parameters["bc"])
    ot = sigmoid(parameters["Wo"] @ concat + parameters["bo"])
    c_next = ft * c_prev + it * cct
    a_next = ot * np.tanh(c_next)
    z = parameters["Wy"] @ a_next + parameters["by"]
    yt_pred = np.exp(z) / np.exp(z).sum(axis=0)
    return a_next, c_next, yt_pred, (c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)


def lstm_cell_backward(da_next, dc_next, cache):
    c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    n_a = a_prev.shape[0]
    dtanh = 1 - np.tanh(c_next) ** 2
    dc = dc_next + da_next * ot * dtanh
    dz = {"o": da_next * np.tanh(c_next) * ot * (1 - ot),
          "c": (dc_next * it + ot * dtanh * it * da_next) * (1 - cct ** 2),
          "i": (ot * dtanh * cct * da_next) * it * (1 - it),
          "f": (dc_next * c_prev + ot * dtanh * c_prev * da_next) * ft * (1 - ft)}
    concat = np.concatenate((a_prev, xt), axis=0)
    grads = {"da_prev": 0, "dxt": 0, "dc_prev": dc * ft}
    for g, d in dz.items():
        grads["dW" + g] = d @ concat.T
        grads["db" + g] = d.sum(axis=1, keepdims=True)
        grads["da_prev"] = grads["da_prev"] + parameters["W" + g][:, :n_a].T @ d
        grads["dxt"] = grads["dxt"] + parameters["W" + g][:, n_a:].T @ d
    return grads


def lstm_forward(x, a0, parameters):
    _, m, T_x = x.shape
    n_y, n_a = parameters["Wy"].shape
    a, c, y = np.zeros((n_a, m, T_x)), np.zeros((n_a, m, T_x)), np.zeros((n_y, m, T_x))
    a_next, c_next, caches = a0, np.zeros((n_a, m)), []
    for t in range(T_x):
        a_next, c_next, y[:, :, t], cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t] = a_next, c_next
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_backward(da, caches):
    caches, x = caches
    n_a, m, T_x = da.shape
    grads = {"dx": np.zeros((x.shape[0], m, T_x))}
    da_prev, dc_prev = np.zeros((n_a, m)), np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = lstm_cell_backward(da[:, :, t] + da_prev, dc_prev, caches[t])
        grads["dx"][:, :, t] = g["dxt"]
        for k in ("dWf", "dWi", "dWc", "dWo", "dbf", "dbi", "dbc", "dbo"):
            grads[k] = grads.get(k, 0) + g[k]
        da_prev, dc_prev = g["da_prev"], g["dc_prev"]
    grads["da0"] = da_prev
    return grads
