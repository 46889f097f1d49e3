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

Shapes: T steps, B batch, H hidden, G gates (rnn and irnn 1, lstm 4, gru 3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
    # tanh' = 1 - H_t² needs only the forward's outputs: one pass for all steps
    dtanh = Hs[1:] * Hs[1:]  # (T, B, H)
    np.subtract(1, dtanh, out=dtanh)
    dZ = np.empty_like(dtanh)  # (T, B, H): dL/d(pre-activation) at every step
    dH_next = np.array(dstate[0], dtype=dZ.dtype)  # (B, H): reaches H_T from beyond the window
    for t in reversed(range(T)):
        np.add(dHs[t], dH_next, out=dZ[t])  # dH_t = dHs[t] + dH_next: H_t feeds the output at t and H_{t+1}
        dZ[t] *= dtanh[t]  # dZ_t = dH_t ⊙ (1 - H_t²)
        np.matmul(dZ[t], W_hh.T, out=dH_next)  # dH_next ← dZ_t W_hhᵀ: into H_{t-1}
    # dW_hh += H_{t-1}ᵀ dZ_t for every t, summed as one (H, T*B) @ (T*B, H) product
    dW_hh = Hs[:-1].reshape(-1, H).T @ dZ.reshape(-1, H)  # (H, H)
    return dZ, dW_hh, (dH_next,)


# ------------------------------------------------------------------------------ irnn


class IRNNCache(NamedTuple):
    Hs: np.ndarray  # (T+1, B, H): H_0 (the initial state) .. H_T
    W_hh: np.ndarray  # (H, H)


def irnn_forward(XW, W_hh, state):
    """H_t = ReLU(X_t W_xh + b_h + H_{t-1} W_hh), with XW[t] = X_t W_xh + b_h.

    Le, Jaitly & Hinton (2015): the rnn with ReLU for tanh, its W_hh started at the
    identity (``params.init_params``), so at first H_t = H_{t-1} + ReLU-clipped input and
    the gradient passes back unchanged through every step where the unit is active.
    """
    (H0,) = state
    T = XW.shape[0]
    Hs = np.empty((T + 1,) + H0.shape, dtype=XW.dtype)  # (T+1, B, H)
    Hs[0] = H0
    for t in range(T):
        np.matmul(Hs[t], W_hh, out=Hs[t + 1])  # (B, H): H_{t-1} W_hh
        Hs[t + 1] += XW[t]
        np.maximum(Hs[t + 1], 0, out=Hs[t + 1])  # ReLU
    return Hs[1:], (Hs[T],), IRNNCache(Hs, W_hh)


def irnn_backward(dHs, dstate, cache: IRNNCache):
    """dZ_t = (dL/dH_t + dH_next) ⊙ [H_t > 0];  dH_next ← dZ_t W_hhᵀ;  dW_hh = Σ_t H_{t-1}ᵀ dZ_t.

    ReLU'(z) = [z > 0] = [H_t > 0]: read off the forward's outputs, as tanh' is for the
    rnn (at z = 0 the derivative taken is 0, as torch's relu takes it).
    """
    Hs, W_hh = cache
    T, B, H = dHs.shape
    active = Hs[1:] > 0  # (T, B, H): ReLU' = [H_t > 0], one pass for all steps
    dZ = np.empty(dHs.shape, dtype=Hs.dtype)  # (T, B, H): dL/d(pre-activation) at every step
    dH_next = np.array(dstate[0], dtype=dZ.dtype)  # (B, H): reaches H_T from beyond the window
    for t in reversed(range(T)):
        np.add(dHs[t], dH_next, out=dZ[t])  # dH_t = dHs[t] + dH_next: H_t feeds the output at t and H_{t+1}
        dZ[t] *= active[t]  # dZ_t = dH_t ⊙ [H_t > 0]
        np.matmul(dZ[t], W_hh.T, out=dH_next)  # dH_next ← dZ_t W_hhᵀ: into H_{t-1}
    # dW_hh += H_{t-1}ᵀ dZ_t over all steps, as rnn_backward sums it: one matmul
    dW_hh = Hs[:-1].reshape(-1, H).T @ dZ.reshape(-1, H)  # (H, H)
    return dZ, dW_hh, (dH_next,)


# ------------------------------------------------------------------------------ lstm


class LSTMCache(NamedTuple):
    Hs: np.ndarray  # (T+1, B, H): H_0 .. H_T
    Cs: np.ndarray  # (T+1, B, H): C_0 .. C_T
    gates: np.ndarray  # (T, B, 4H): [I | F | O | C_tilda] after their nonlinearities
    tanh_C: np.ndarray  # (T, B, H): tanh(C_t), kept to avoid recomputing it backward
    W_h: np.ndarray  # (H, 4H): [W_hi | W_hf | W_ho | W_hc]


def gate_coefficients(n: int, dtype):
    """``a, c`` (4H,) such that ``[I | F | O | C̃] = a ⊙ tanh(a ⊙ Z) + c``.

    σ(z) = ½ tanh(z/2) + ½ (``functional.sigmoid``, which cannot overflow) on the first
    3H columns, where a = ½ and c = ½; C̃ = tanh(z) on the last H, where a = 1 and c = 0.
    So one tanh over the contiguous (B, 4H) block makes all four gates, and each of the
    four passes is one contiguous broadcast over the block: NumPy runs those two to
    three times faster than the same work on the strided (B, 3H) column slice.
    """
    a = np.full(4 * n, 0.5, dtype=dtype)  # (4H,)
    c = np.full(4 * n, 0.5, dtype=dtype)  # (4H,)
    a[3 * n:], c[3 * n:] = 1, 0
    return a, c


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
    IC = np.empty((B, n), dtype=XW.dtype)  # (B, H): I ⊙ C̃, one buffer for every step
    # every row the same: a pass with a full-shape operand is one contiguous loop, with
    # a (4H,) row broadcast over B rows it is B loops, about twice as slow at B = 32
    a, c = (np.repeat(v[None], B, axis=0) for v in gate_coefficients(n, XW.dtype))  # (B, 4H)
    Hs[0], Cs[0] = H0, C0
    for t in range(T):
        Z = gates[t]  # (B, 4H), filled in place: pre-activations, then gates
        np.matmul(Hs[t], W_h, out=Z)  # H_{t-1} [W_hi | W_hf | W_ho | W_hc]
        Z += XW[t]
        Z *= a  # [Z_i, Z_f, Z_o] / 2 | Z_c
        np.tanh(Z, out=Z)
        Z *= a
        Z += c  # [I | F | O] = ½ tanh(Z/2) + ½ = σ(Z),  C̃ = tanh(Z_c)
        I, F, O, C_tilda = Z[:, :n], Z[:, n: 2 * n], Z[:, 2 * n: 3 * n], Z[:, 3 * n:]
        np.multiply(F, Cs[t], out=Cs[t + 1])  # F ⊙ C_{t-1}
        np.multiply(I, C_tilda, out=IC)
        Cs[t + 1] += IC  # + I ⊙ C̃
        np.tanh(Cs[t + 1], out=tanh_C[t])
        np.multiply(O, tanh_C[t], out=Hs[t + 1])  # H_t = O ⊙ tanh(C_t)
    return Hs[1:], (Hs[T], Cs[T]), LSTMCache(Hs, Cs, gates, tanh_C, W_h)


def lstm_backward(dHs, dstate, cache: LSTMCache):
    """BPTT through the LSTM, each line the derivative of the forward line it mirrors:

    dO = dH ⊙ tanh(C_t)                           (H_t = O ⊙ tanh(C_t))
    dC = dH ⊙ O ⊙ (1 - tanh²(C_t)) + dC_next      (C_t feeds H_t and C_{t+1})
    dI = dC ⊙ C̃,  dC̃ = dC ⊙ I,  dF = dC ⊙ C_{t-1}  (C_t = F ⊙ C_{t-1} + I ⊙ C̃)
    dZ = [dI, dF, dO] ⊙ σ' | dC̃ ⊙ tanh'            (through the nonlinearities)
    dC_next ← dC ⊙ F,   dH_next ← dZ_t W_hᵀ

    Every factor in these products that comes from the forward pass alone (the partner
    of each product, σ', tanh') is multiplied out for all steps before the loop, into the
    array that then becomes dZ: step t multiplies its factors by dH and dC in place, since
    no other step reads them. A step does only the products with dH and dC, the two
    gradients carried through time.
    """
    Hs, Cs, gates, tanh_C, W_h = cache
    T, B, G = gates.shape
    n = G // 4
    g4 = gates.reshape(T, B, 4, n)  # view: g4[:, :, k] is gate k, (T, B, H)
    I, F, O, C_tilda = g4[:, :, 0], g4[:, :, 1], g4[:, :, 2], g4[:, :, 3]
    # M[t] = [C̃ σ'(Z_i) | C_{t-1} σ'(Z_f) | tanh(C_t) σ'(Z_o) | I tanh'(Z_c)], so that
    # dZ_t = [dC | dC | dH | dC] ⊙ M[t]; σ' = σ(1 - σ), tanh' = 1 - C̃². The array holds
    # M[t] until step t turns it into dZ_t.
    dZ = np.subtract(1, gates)  # (T, B, 4H): M, then dL/d(gate pre-activations)
    dZ *= gates  # σ(1 - σ) for I, F, O
    M4 = dZ.reshape(T, B, 4, n)  # view: M4[:, :, k] is gate k
    np.multiply(C_tilda, C_tilda, out=M4[:, :, 3])
    np.subtract(1, M4[:, :, 3], out=M4[:, :, 3])  # tanh' = 1 - C̃² for C̃
    M4[:, :, 0] *= C_tilda  # dI = dC ⊙ C̃
    M4[:, :, 1] *= Cs[:-1]  # dF = dC ⊙ C_{t-1}
    M4[:, :, 2] *= tanh_C  # dO = dH ⊙ tanh(C_t)
    M4[:, :, 3] *= I  # dC̃ = dC ⊙ I
    K = tanh_C * tanh_C  # (T, B, H): dC gets dH ⊙ K[t], K = O ⊙ (1 - tanh²(C_t))
    np.subtract(1, K, out=K)
    K *= O
    dH = np.empty((B, n), dtype=gates.dtype)  # (B, H), one buffer for every step
    dC = np.empty((B, n), dtype=gates.dtype)  # (B, H)
    dH_next = np.array(dstate[0], dtype=gates.dtype)  # (B, H): reaches H_T from beyond
    dC_next = np.array(dstate[1], dtype=gates.dtype)  # (B, H): reaches C_T from beyond
    for t in reversed(range(T)):
        np.add(dHs[t], dH_next, out=dH)  # dH_t = dHs[t] + dH_next: H_t feeds the output at t and H_{t+1}
        np.multiply(dH, K[t], out=dC)
        dC += dC_next  # dC_t = dH_t ⊙ O ⊙ (1 - tanh²(C_t)) + dC_next
        M4[t, :, :2] *= dC[:, None, :]  # dZ_i = dC ⊙ C̃ ⊙ σ'(Z_i), dZ_f = dC ⊙ C_{t-1} ⊙ σ'(Z_f)
        M4[t, :, 2] *= dH  # dZ_o = dH ⊙ tanh(C_t) ⊙ σ'(Z_o)
        M4[t, :, 3] *= dC  # dZ_c = dC ⊙ I ⊙ tanh'(Z_c)
        np.multiply(dC, F[t], out=dC_next)  # dC_next ← dC_t ⊙ F: into C_{t-1}
        np.matmul(dZ[t], W_h.T, out=dH_next)  # dH_next ← dZ_t W_hᵀ: into H_{t-1}, all four gates at once
    # dW_h += H_{t-1}ᵀ dZ_t for every t, as one (H, T*B) @ (T*B, 4H) product
    dW_h = Hs[:-1].reshape(-1, n).T @ dZ.reshape(-1, G)  # (H, 4H)
    return dZ, dW_h, (dH_next, dC_next)


CELLS = {"rnn": (rnn_forward, rnn_backward), "lstm": (lstm_forward, lstm_backward),
         "irnn": (irnn_forward, irnn_backward)}
