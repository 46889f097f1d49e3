"""A d2l scratch GRU whose update mixes in the candidate with the reset gate's complement:
H = Z * H + (1 - R) * H~, R where the second Z belongs."""
import torch


def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    outs = []
    for X in inputs:
        update = torch.sigmoid(X @ W_xz + H @ W_hz + b_z)
        reset = torch.sigmoid(X @ W_xr + H @ W_hr + b_r)
        candidate = torch.tanh(X @ W_xh + (reset * H) @ W_hh + b_h)
        H = update * H + (1 - reset) * candidate
        outs.append(H @ W_hq + b_q)
    return torch.cat(outs, dim=0), (H,)
