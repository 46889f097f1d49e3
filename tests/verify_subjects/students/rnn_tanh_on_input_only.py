"""A d2l scratch RNN whose tanh closes one parenthesis early: only the input term is squashed."""
import torch


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(X @ W_xh) + H @ W_hh + b_h
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H,)
