"""A d2l scratch LSTM updating H before C: H = O * tanh(C) reads the old cell state."""
import torch


def lstm(inputs, state, params):
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    H, C = state
    outputs = []
    for X in inputs:
        gate = lambda W_x, W_h, b: X @ W_x + H @ W_h + b  # noqa: E731
        I = torch.sigmoid(gate(W_xi, W_hi, b_i))
        F = torch.sigmoid(gate(W_xf, W_hf, b_f))
        O = torch.sigmoid(gate(W_xo, W_ho, b_o))
        C_tilda = torch.tanh(gate(W_xc, W_hc, b_c))
        H = O * torch.tanh(C)
        C = F * C + I * C_tilda
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H, C)
