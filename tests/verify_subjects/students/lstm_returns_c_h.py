"""A d2l scratch LSTM that returns its final state as (C, H)."""
import torch


def lstm(inputs, state, params):
    (W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q) = params
    H, C = state
    ys = []
    for X in inputs:
        I = torch.sigmoid(X @ W_xi + H @ W_hi + b_i)
        F = torch.sigmoid(X @ W_xf + H @ W_hf + b_f)
        O = torch.sigmoid(X @ W_xo + H @ W_ho + b_o)
        C = F * C + I * torch.tanh(X @ W_xc + H @ W_hc + b_c)
        H = O * torch.tanh(C)
        ys.append(H @ W_hq + b_q)
    return torch.cat(ys, dim=0), (C, H)
