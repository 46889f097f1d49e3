"""A d2l scratch LSTM writing the cell update with 1 - F for the input gate, as a GRU couples
its update: C = F * C + (1 - F) * C_tilda. I is computed and never used."""
import torch


def lstm(inputs, state, params):
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    H, C = state
    Y = []
    for X in inputs:
        I = torch.sigmoid(X @ W_xi + H @ W_hi + b_i)
        F = torch.sigmoid(X @ W_xf + H @ W_hf + b_f)
        O = torch.sigmoid(X @ W_xo + H @ W_ho + b_o)
        C_tilda = torch.tanh(X @ W_xc + H @ W_hc + b_c)
        C = F * C + (1 - F) * C_tilda
        H = O * torch.tanh(C)
        Y.append(H @ W_hq + b_q)
    return torch.cat(Y, dim=0), (H, C)
