"""A d2l scratch LSTM whose cell update has the input and forget gates in each other's
places: every gate is computed right."""
import torch


def lstm(inputs, state, params):
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    H, C = state
    outputs = []
    for X in inputs:
        input_gate = torch.sigmoid(X @ W_xi + H @ W_hi + b_i)
        forget_gate = torch.sigmoid(X @ W_xf + H @ W_hf + b_f)
        output_gate = torch.sigmoid(X @ W_xo + H @ W_ho + b_o)
        candidate = torch.tanh(X @ W_xc + H @ W_hc + b_c)
        C = input_gate * C + forget_gate * candidate
        H = output_gate * torch.tanh(C)
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H, C)
