"""Recurrent cells in torch ops, fused form: one matmul makes every gate of a step.

The same recurrences as ``numpy_backend/cells.py``, written forward only: autograd
provides the backward. A cell is ``<cell>_forward(XW, W_h, state) -> (Hs, state_T)``,
where ``XW[t] = X_t @ W_x + b`` (T, B, G*H) was projected for every step at once by the
layer that calls it, so a step is one ``H_{t-1} @ W_h`` (B, H) @ (H, G*H) plus
elementwise work. :data:`CELLS` maps a cell name to its function. A cell with recurrent
parameters beyond W_h takes them after the state (the torch-form GRU's ``b_hn``).

Shapes: T steps, B batch, H hidden, G gates (rnn and irnn 1, lstm 4, gru 3).
"""

from __future__ import annotations

import torch


def rnn_forward(XW: torch.Tensor, W_hh: torch.Tensor, state: tuple):
    """H_t = tanh(X_t W_xh + b_h + H_{t-1} W_hh), with XW[t] = X_t W_xh + b_h."""
    (H,) = state
    Hs = []
    for XW_t in XW:  # (B, H) per step
        H = torch.tanh(torch.addmm(XW_t, H, W_hh))  # (B, H): XW_t + H_{t-1} W_hh
        Hs.append(H)
    return torch.stack(Hs), (H,)  # (T, B, H)


def irnn_forward(XW: torch.Tensor, W_hh: torch.Tensor, state: tuple):
    """H_t = ReLU(X_t W_xh + b_h + H_{t-1} W_hh) (Le et al. 2015), with XW[t] = X_t W_xh + b_h."""
    (H,) = state
    Hs = []
    for XW_t in XW:  # (B, H) per step
        H = torch.relu(torch.addmm(XW_t, H, W_hh))  # (B, H): XW_t + H_{t-1} W_hh
        Hs.append(H)
    return torch.stack(Hs), (H,)  # (T, B, H)


def lstm_forward(XW: torch.Tensor, W_h: torch.Tensor, state: tuple):
    """The LSTM of d2l 9.2, all four gates from one matmul (gate order i, f, o, c):

    [I | F | O] = σ(X_t W_x + H_{t-1} W_h + b)[:, :3H],  C̃ = tanh(...)[:, 3H:]
    C_t = F ⊙ C_{t-1} + I ⊙ C̃,    H_t = O ⊙ tanh(C_t)

    ``XW`` and ``W_h`` come with the candidate's columns doubled (:data:`GATE_SCALES`):
    tanh(z) = 2σ(2z) - 1, so S = σ(Z) holds [I | F | O | σ(2 Z_c)] and C̃ = 2 S_c - 1.
    One sigmoid over the whole (B, 4H) block makes every gate (torch's sigmoid is about
    four times faster per element than its tanh on a CPU, and no slice of the block is
    differentiated); then I ⊙ C̃ = 2 I ⊙ S_c - I, so
    C_t = (F ⊙ C_{t-1} - I) + 2 I ⊙ S_c is one ``addcmul``.
    """
    H, C = state
    Hs = []
    for XW_t in XW:  # (B, 4H) per step
        I, F, O, S_c = torch.sigmoid(torch.addmm(XW_t, H, W_h)).chunk(4, dim=1)  # (B, H) each
        C = torch.addcmul(F * C - I, I, S_c, value=2)  # (B, H): F ⊙ C_{t-1} + I ⊙ C̃
        H = O * torch.tanh(C)  # (B, H)
        Hs.append(H)
    return torch.stack(Hs), (H, C)  # (T, B, H)


def gru_forward(XW: torch.Tensor, W_h: torch.Tensor, state: tuple, b_hn=None):
    """The GRU (gate order z, r, h); the d2l form unless ``b_hn`` is given (numpy_backend/gru.py):

    [Z | R] = σ(X_t [W_xz | W_xr] + H_{t-1} [W_hz | W_hr] + [b_z | b_r]),
    d2l:   H̃ = tanh(X_t W_xh + b_h + (R ⊙ H_{t-1}) W_hh)      two matmuls a step
    torch: H̃ = tanh(X_t W_xh + b_h + R ⊙ (H_{t-1} W_hh + b_hn))  one matmul a step
    H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃
    """
    (H,) = state
    n = H.shape[1]
    W_zr, W_hh = W_h[:, : 2 * n], W_h[:, 2 * n:]  # (H, 2H), (H, H)
    Hs = []
    for XW_t in XW:  # (B, 3H) per step
        if b_hn is None:
            Z, R = torch.sigmoid(torch.addmm(XW_t[:, : 2 * n], H, W_zr)).split(n, dim=1)
            H_tilda = torch.tanh(torch.addmm(XW_t[:, 2 * n:], R * H, W_hh))  # reset before
        else:
            HW = H @ W_h  # (B, 3H): one matmul for Z, R and the candidate
            Z, R = torch.sigmoid(XW_t[:, : 2 * n] + HW[:, : 2 * n]).split(n, dim=1)
            H_tilda = torch.tanh(XW_t[:, 2 * n:] + R * (HW[:, 2 * n:] + b_hn))  # reset after
        H = Z * H + (1 - Z) * H_tilda  # (B, H)
        Hs.append(H)
    return torch.stack(Hs), (H,)  # (T, B, H)


CELLS = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward, "irnn": irnn_forward}
# factors a cell wants on a gate's pre-activation, applied to that gate's W_x, W_h and b
# once per window (model.fuse_weights): the LSTM's candidate doubled, tanh(z) = 2σ(2z) - 1
GATE_SCALES = {"lstm": {"c": 2}}
