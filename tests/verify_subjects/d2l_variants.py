"""d2l-convention subjects written differently from the book: a NumPy LSTM (forward only),
a torch GRU that fills a float32 output tensor made inside, and an RNN with F.linear."""

import numpy as np
import torch
import torch.nn.functional as F


def lstm(inputs, state, params):  # NumPy: no gradients to check
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    H, C = state
    sig = lambda z: 0.5 * (np.tanh(0.5 * z) + 1)  # noqa: E731
    outputs = []
    for X in inputs:
        I, F_, O = sig(X @ W_xi + H @ W_hi + b_i), sig(X @ W_xf + H @ W_hf + b_f), sig(X @ W_xo + H @ W_ho + b_o)
        C = F_ * C + I * np.tanh(X @ W_xc + H @ W_hc + b_c)
        H = O * np.tanh(C)
        outputs.append(H @ W_hq + b_q)
    return np.concatenate(outputs, axis=0), (H, C)


def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    T, B, V = inputs.shape
    out = torch.zeros(T * B, W_hq.shape[1])  # float32, whatever the inputs are
    for t in range(T):
        X = inputs[t]
        Z = torch.sigmoid(X @ W_xz + H @ W_hz + b_z)
        R = torch.sigmoid(X @ W_xr + H @ W_hr + b_r)
        Ht = torch.tanh(X @ W_xh + (R * H) @ W_hh + b_h)
        H = Ht + Z * (H - Ht)
        out[t * B:(t + 1) * B] = H @ W_hq + b_q
    return out, (H,)


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    outs = []
    for X in inputs.unbind(0):
        H = torch.tanh(F.linear(X, W_xh.T) + F.linear(H, W_hh.T, b_h))
        outs.append(F.linear(H, W_hq.T, b_q))
    return torch.cat(outs), (H,)
