"""A d2l GRU with a mistake many readers make: the update gate's two terms swapped.

    rnnlab verify examples/verify/d2l_buggy.py --convention d2l

d2l 9.1 has H = Z * H + (1 - Z) * H_tilda (Z keeps the old state); this one writes
H = (1 - Z) * H + Z * H_tilda, the form of some other texts, with d2l's weights.
"""

import torch


def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
        R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
        H_tilda = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
        H = (1 - Z) * H + Z * H_tilda
        Y = H @ W_hq + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)
