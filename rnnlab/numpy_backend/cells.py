"""Recurrent cells with hand-written BPTT, fused form: one matmul makes every gate.

Each cell's recurrence runs over a whole window. Its input side is already projected for
every step at once, ``XW[t] = X_t @ W_x + b`` (T, B, G*H), by the layer that calls it
(a row gather for one-hot tokens, one matmul for dense inputs), so a step is one
``H_{t-1} @ W_h`` (B, H) @ (H, G*H) plus elementwise work.

``<cell>_forward(XW, W_h, state) -> (Hs, state_T, cache)`` and
``<cell>_backward(dHs, dstate_T, cache) -> (dXW, dW_h, dstate_0)``: the backward reads as
the forward read upwards, with the gradient carried into step t-1 named ``dH_next`` /
``dC_next``. ``dXW`` is dL/dZ, the gradient of the gate pre-activations, from which the
layer gets ``dW_x`` and ``db``. The readable per-gate versions are in ``reference.py``.

Shapes: T steps, B batch, H hidden, G gates (rnn 1, lstm 4, gru 3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .functional import sigmoid

# ------------------------------------------------------------------------------- rnn


class RNNCache(NamedTuple):
    Hs: np.ndarray  # (T+1, B, H): H_0 (the initial state) .. H_T
    W_hh: np.ndarray  # (H, H)


def rnn_forward(XW, W_hh, state):
    """H_t = tanh(X_t W_xh + b_h + H_{t-1} W_hh), with XW[t] = X_t W_xh + b_h."""
    (H0,) = state
    T = XW.shape[0]
    Hs = np.empty((T + 1,) + H0.shape, dtype=XW.dtype)  # (T+1, B, H)
    Hs[0] = H0
    for t in range(T):
        np.matmul(Hs[t], W_hh, out=Hs[t + 1])  # (B, H): H_{t-1} W_hh
        Hs[t + 1] += XW[t]
        np.tanh(Hs[t + 1], out=Hs[t + 1])
    return Hs[1:], (Hs[T],), RNNCache(Hs, W_hh)


def rnn_backward(dHs, dstate, cache: RNNCache):
    """dZ_t = (dL/dH_t + dH_next) ⊙ (1 - H_t²);  dH_next ← dZ_t W_hhᵀ;  dW_hh = Σ_t H_{t-1}ᵀ dZ_t."""
    Hs, W_hh = cache
    T, B, H = dHs.shape
    (dH_next,) = dstate  # (B, H): gradient reaching H_T from beyond the window
    dZ = np.empty_like(dHs)  # (T, B, H): dL/d(pre-activation) at every step
    for t in reversed(range(T)):
        dH = dHs[t] + dH_next  # (B, H): H_t feeds the output at t and H_{t+1}
        np.multiply(dH, 1 - Hs[t + 1] * Hs[t + 1], out=dZ[t])  # tanh' = 1 - H_t²
        dH_next = dZ[t] @ W_hh.T  # (B, H): into H_{t-1}
    # dW_hh += H_{t-1}ᵀ dZ_t for every t, summed as one (H, T*B) @ (T*B, H) product
    dW_hh = Hs[:-1].reshape(-1, H).T @ dZ.reshape(-1, H)  # (H, H)
    return dZ, dW_hh, (dH_next,)


# ------------------------------------------------------------------------------ lstm


class LSTMCache(NamedTuple):
    Hs: np.ndarray  # (T+1, B, H): H_0 .. H_T
    Cs: np.ndarray  # (T+1, B, H): C_0 .. C_T
    gates: np.ndarray  # (T, B, 4H): [I | F | O | C_tilda] after their nonlinearities
    tanh_C: np.ndarray  # (T, B, H): tanh(C_t), kept to avoid recomputing it backward
    W_h: np.ndarray  # (H, 4H): [W_hi | W_hf | W_ho | W_hc]


def lstm_forward(XW, W_h, state):
    """The LSTM of d2l 9.2, all four gates from one matmul:

    [I | F | O] = σ(X_t W_x + H_{t-1} W_h + b)[:, :3H],  C̃ = tanh(...)[:, 3H:]
    C_t = F ⊙ C_{t-1} + I ⊙ C̃,    H_t = O ⊙ tanh(C_t)
    """
    H0, C0 = state
    T, B, G = XW.shape
    n = G // 4
    Hs = np.empty((T + 1, B, n), dtype=XW.dtype)  # (T+1, B, H)
    Cs = np.empty((T + 1, B, n), dtype=XW.dtype)  # (T+1, B, H)
    gates = np.empty((T, B, G), dtype=XW.dtype)  # (T, B, 4H)
    tanh_C = np.empty((T, B, n), dtype=XW.dtype)  # (T, B, H)
    Hs[0], Cs[0] = H0, C0
    for t in range(T):
        Z = gates[t]  # (B, 4H), filled in place: pre-activations, then gates
        np.matmul(Hs[t], W_h, out=Z)  # H_{t-1} [W_hi | W_hf | W_ho | W_hc]
        Z += XW[t]
        sigmoid(Z[:, : 3 * n], out=Z[:, : 3 * n])  # I, F, O
        np.tanh(Z[:, 3 * n:], out=Z[:, 3 * n:])  # C_tilda
        I, F, O, C_tilda = Z[:, :n], Z[:, n: 2 * n], Z[:, 2 * n: 3 * n], Z[:, 3 * n:]
        np.multiply(F, Cs[t], out=Cs[t + 1])  # F ⊙ C_{t-1}
        Cs[t + 1] += I * C_tilda  # + I ⊙ C̃
        np.tanh(Cs[t + 1], out=tanh_C[t])
        np.multiply(O, tanh_C[t], out=Hs[t + 1])  # H_t = O ⊙ tanh(C_t)
    return Hs[1:], (Hs[T], Cs[T]), LSTMCache(Hs, Cs, gates, tanh_C, W_h)


def lstm_backward(dHs, dstate, cache: LSTMCache):
    """BPTT through the LSTM, each line the derivative of the forward line it mirrors:

    dO = dH ⊙ tanh(C_t)                           (H_t = O ⊙ tanh(C_t))
    dC = dH ⊙ O ⊙ (1 - tanh²(C_t)) + dC_next      (C_t feeds H_t and C_{t+1})
    dI = dC ⊙ C̃,  dC̃ = dC ⊙ I,  dF = dC ⊙ C_{t-1}  (C_t = F ⊙ C_{t-1} + I ⊙ C̃)
    dC_next ← dC ⊙ F,   dH_next ← dZ_t W_hᵀ
    """
    Hs, Cs, gates, tanh_C, W_h = cache
    T, B, G = gates.shape
    n = G // 4
    dH_next, dC_next = dstate  # (B, H) each: gradients reaching H_T, C_T from beyond
    # σ' = σ(1-σ) and tanh' = 1 - tanh², for all steps in one pass each
    dact = np.empty_like(gates)  # (T, B, 4H)
    np.multiply(gates[..., : 3 * n], 1 - gates[..., : 3 * n], out=dact[..., : 3 * n])
    np.multiply(gates[..., 3 * n:], gates[..., 3 * n:], out=dact[..., 3 * n:])
    np.subtract(1, dact[..., 3 * n:], out=dact[..., 3 * n:])
    dZ = np.empty_like(gates)  # (T, B, 4H): dL/d(gate pre-activations)
    for t in reversed(range(T)):
        I, F, O, C_tilda = (gates[t, :, k * n: (k + 1) * n] for k in range(4))
        dI, dF, dO, dC_tilda = (dZ[t, :, k * n: (k + 1) * n] for k in range(4))
        dH = dHs[t] + dH_next  # (B, H): H_t feeds the output at t and H_{t+1}
        np.multiply(dH, tanh_C[t], out=dO)  # dL/dO
        dC = dH * O  # (B, H)
        dC *= 1 - tanh_C[t] * tanh_C[t]
        dC += dC_next  # C_t feeds H_t and C_{t+1}
        np.multiply(dC, C_tilda, out=dI)  # dL/dI
        np.multiply(dC, Cs[t], out=dF)  # dL/dF: C_t = F ⊙ C_{t-1} + ...
        np.multiply(dC, I, out=dC_tilda)  # dL/dC̃
        dZ[t] *= dact[t]  # through σ and tanh: dL/dZ
        dC_next = dC * F  # (B, H): into C_{t-1}
        dH_next = dZ[t] @ W_h.T  # (B, H): into H_{t-1}, all four gates at once
    # dW_h += H_{t-1}ᵀ dZ_t for every t, as one (H, T*B) @ (T*B, 4H) product
    dW_h = Hs[:-1].reshape(-1, n).T @ dZ.reshape(-1, G)  # (H, 4H)
    return dZ, dW_h, (dH_next, dC_next)


CELLS = {"rnn": (rnn_forward, rnn_backward), "lstm": (lstm_forward, lstm_backward)}
