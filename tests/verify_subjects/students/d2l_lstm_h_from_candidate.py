"""d2l 1st edition scratch RNN / LSTM / GRU (my version, shared affine helper), with one mistake:
lstm: H = O * tanh(C_tilde) (the candidate) instead of tanh(C)."""
import torch


def _affine(X, H, Wx, Wh, b):
    return X @ Wx + H @ Wh + b


def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H = state[0]
    ys = []
    for X in inputs:
        H = torch.tanh(_affine(X, H, W_xh, W_hh, b_h))
        ys.append(H @ W_hq + b_q)
    return torch.cat(ys, dim=0), (H,)


def lstm(inputs, state, params):
    (W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o,
     W_xc, W_hc, b_c, W_hq, b_q) = params
    H, C = state
    outs = []
    for X in inputs:
        I = torch.sigmoid(_affine(X, H, W_xi, W_hi, b_i))
        Fg = torch.sigmoid(_affine(X, H, W_xf, W_hf, b_f))
        O = torch.sigmoid(_affine(X, H, W_xo, W_ho, b_o))
        C_tilde = torch.tanh(_affine(X, H, W_xc, W_hc, b_c))
        C = Fg * C + I * C_tilde
        H = O * torch.tanh(C_tilde)
        outs.append(H @ W_hq + b_q)
    return torch.cat(outs, dim=0), (H, C)


def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    (H,) = state
    logits = []
    for X in inputs:
        Z = torch.sigmoid(_affine(X, H, W_xz, W_hz, b_z))
        R = torch.sigmoid(_affine(X, H, W_xr, W_hr, b_r))
        H_cand = torch.tanh(X @ W_xh + (R * H) @ W_hh + b_h)
        H = Z * H + (1 - Z) * H_cand
        logits.append(H @ W_hq + b_q)
    return torch.cat(logits, dim=0), (H,)
