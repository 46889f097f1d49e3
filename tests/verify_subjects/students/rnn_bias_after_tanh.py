"""A d2l scratch RNN adding its bias after the tanh: H = tanh(X W_xh + H W_hh) + b_h."""
import torch


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    ys = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh)) + b_h
        ys.append(torch.mm(H, W_hq) + b_q)
    return torch.cat(ys, dim=0), (H,)
