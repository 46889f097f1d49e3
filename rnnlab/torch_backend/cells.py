"""Recurrent cells in torch ops, fused form: one matmul makes every gate of a step.

The same recurrences as ``numpy_backend/cells.py``, written forward only: autograd
provides the backward. A cell is ``<cell>_forward(XW, W_h, state) -> (Hs, state_T)``,
where ``XW[t] = X_t @ W_x + b`` (T, B, G*H) was projected for every step at once by the
layer that calls it, so a step is one ``H_{t-1} @ W_h`` (B, H) @ (H, G*H) plus
elementwise work. :data:`CELLS` maps a cell name to its function; a new cell (gru) is a
new entry.

Shapes: T steps, B batch, H hidden, G gates (rnn 1, lstm 4).
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


def lstm_forward(XW: torch.Tensor, W_h: torch.Tensor, state: tuple):
    """The LSTM of d2l 9.2, all four gates from one matmul (gate order i, f, o, c):

    [I | F | O] = σ(X_t W_x + H_{t-1} W_h + b)[:, :3H],  C̃ = tanh(...)[:, 3H:]
    C_t = F ⊙ C_{t-1} + I ⊙ C̃,    H_t = O ⊙ tanh(C_t)
    """
    H, C = state
    n = H.shape[1]
    Hs = []
    for XW_t in XW:  # (B, 4H) per step
        Z = torch.addmm(XW_t, H, W_h)  # (B, 4H): pre-activations of every gate
        I, F, O = torch.sigmoid(Z[:, : 3 * n]).split(n, dim=1)  # (B, H) each
        C_tilda = torch.tanh(Z[:, 3 * n:])  # (B, H)
        C = F * C + I * C_tilda  # (B, H)
        H = O * torch.tanh(C)  # (B, H)
        Hs.append(H)
    return torch.stack(Hs), (H, C)  # (T, B, H)


CELLS = {"rnn": rnn_forward, "lstm": lstm_forward}
