"""The GRU in both of its forms, fused, with hand-written BPTT.

Both forms share the update and reset gates and the final interpolation::

    Z   = σ(X_t W_xz + H_{t-1} W_hz + b_z)            update gate
    R   = σ(X_t W_xr + H_{t-1} W_hr + b_r)            reset gate
    H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃                    (= H̃ + Z ⊙ (H_{t-1} - H̃))

and differ in one line, the candidate H̃:

    d2l form (d2l 9.1, Cho et al. 2014)    H̃ = tanh(X_t W_xh + (R ⊙ H_{t-1}) W_hh + b_h)
    torch form (torch.nn.GRU, cuDNN)       H̃ = tanh(X_t W_xh + b_h + R ⊙ (H_{t-1} W_hh + b_hn))

In the d2l form R gates the state *before* the matmul, so H_{t-1} W_hh cannot be computed
with the other gates: each step makes Z and R from one (B, H) @ (H, 2H) matmul, then the
candidate from a second, (R ⊙ H_{t-1}) @ W_hh. In the torch form R gates the *result* of
the matmul, so all three products come from one (B, H) @ (H, 3H) matmul, and the
candidate keeps its own recurrent bias b_hn inside R ⊙ (...) (it cannot be folded into
b_h: R multiplies it). The two are different functions of the same weights; only the
torch form maps onto torch.nn.GRU (see docs/recurrent_family.md).

Signatures follow cells.py, with the torch form's extra argument::

    gru_forward(XW, W_h, state, b_hn=None) -> (Hs, state_T, cache)
    gru_backward(dHs, dstate_T, cache)     -> (dXW, dW_h, dstate_0[, db_hn])

``b_hn=None`` is the d2l form; an (H,) array selects the torch form (as in the parameter
contract, where ``b_hn`` exists only for ``gru_form="torch"``). The backward returns one
gradient per argument of the forward, so it returns ``db_hn`` exactly when it was given.
``XW[t] = X_t [W_xz | W_xr | W_xh] + [b_z | b_r | b_h]`` (T, B, 3H) comes from the layer;
``W_h = [W_hz | W_hr | W_hh]`` (H, 3H). Shapes: T steps, B batch, H hidden.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .cells import CELLS
from .functional import sigmoid


class GRUCache(NamedTuple):
    Hs: np.ndarray  # (T+1, B, H): H_0 (the initial state) .. H_T
    gates: np.ndarray  # (T, B, 3H): [Z | R | H̃] after their nonlinearities
    RH: np.ndarray | None  # d2l form: (T, B, H) R ⊙ H_{t-1}, the candidate matmul's input
    HW_n: np.ndarray | None  # torch form: (T, B, H) H_{t-1} W_hh + b_hn, what R multiplies
    W_h: np.ndarray  # (H, 3H): [W_hz | W_hr | W_hh]
    b_hn: np.ndarray | None  # torch form: (H,)


def gru_forward(XW, W_h, state, b_hn=None):
    """One GRU layer over a window; the form is d2l's unless ``b_hn`` is given (see module)."""
    (H0,) = state
    T, B, G = XW.shape
    n = G // 3
    torch_form = b_hn is not None
    Hs = np.empty((T + 1, B, n), dtype=XW.dtype)  # (T+1, B, H)
    gates = np.empty((T, B, G), dtype=XW.dtype)  # (T, B, 3H)
    RH = None if torch_form else np.empty((T, B, n), dtype=XW.dtype)  # (T, B, H)
    HW_n = np.empty((T, B, n), dtype=XW.dtype) if torch_form else None  # (T, B, H)
    W_zr, W_hh = W_h[:, : 2 * n], W_h[:, 2 * n:]  # (H, 2H), (H, H): views
    Hs[0] = H0
    for t in range(T):
        H_prev = Hs[t]  # (B, H)
        ZR = gates[t, :, : 2 * n]  # (B, 2H) view, filled in place: [Z | R]
        H_tilda = gates[t, :, 2 * n:]  # (B, H) view
        if torch_form:
            HW = H_prev @ W_h  # (B, 3H): one matmul for Z, R and the candidate
            np.add(HW[:, : 2 * n], XW[t, :, : 2 * n], out=ZR)
            sigmoid(ZR, out=ZR)  # [Z | R]
            R = ZR[:, n:]
            np.add(HW[:, 2 * n:], b_hn, out=HW_n[t])  # H_{t-1} W_hh + b_hn
            np.multiply(R, HW_n[t], out=H_tilda)  # R ⊙ (H_{t-1} W_hh + b_hn): reset after
        else:
            np.matmul(H_prev, W_zr, out=ZR)  # (B, 2H): H_{t-1} [W_hz | W_hr]
            ZR += XW[t, :, : 2 * n]
            sigmoid(ZR, out=ZR)  # [Z | R]
            R = ZR[:, n:]
            np.multiply(R, H_prev, out=RH[t])  # R ⊙ H_{t-1}: reset before the matmul
            np.matmul(RH[t], W_hh, out=H_tilda)  # (R ⊙ H_{t-1}) W_hh
        H_tilda += XW[t, :, 2 * n:]  # + X_t W_xh + b_h
        np.tanh(H_tilda, out=H_tilda)  # H̃
        Z = ZR[:, :n]
        np.subtract(H_prev, H_tilda, out=Hs[t + 1])  # H_t = H̃ + Z ⊙ (H_{t-1} - H̃)
        Hs[t + 1] *= Z
        Hs[t + 1] += H_tilda
    return Hs[1:], (Hs[T],), GRUCache(Hs, gates, RH, HW_n, W_h, b_hn)


def gru_backward(dHs, dstate, cache: GRUCache):
    """BPTT through the GRU, each line the derivative of the forward line it mirrors:

    dA_z = dH ⊙ (H_{t-1} - H̃) ⊙ Z(1-Z)           (H_t = Z ⊙ H_{t-1} + (1-Z) ⊙ H̃, Z = σ(A_z))
    dA_h = dH ⊙ (1-Z) ⊙ (1-H̃²)                    (H̃ = tanh(A_h))
    d2l:   d(R⊙H) = dA_h W_hhᵀ,  dA_r = d(R⊙H) ⊙ H_{t-1} ⊙ R(1-R),
           dH_next = dH ⊙ Z + d(R⊙H) ⊙ R + [dA_z | dA_r] [W_hz | W_hr]ᵀ
    torch: dA_r = dA_h ⊙ HW_n ⊙ R(1-R),  dHW_n = dA_h ⊙ R,
           dH_next = dH ⊙ Z + [dA_z | dA_r | dHW_n] W_hᵀ
    """
    Hs, gates, RH, HW_n, W_h, b_hn = cache
    T, B, G = gates.shape
    n = G // 3
    torch_form = b_hn is not None
    W_zr, W_hh = W_h[:, : 2 * n], W_h[:, 2 * n:]  # (H, 2H), (H, H): views
    (dH_next,) = dstate  # (B, H): gradient reaching H_T from beyond the window
    dXW = np.empty_like(gates)  # (T, B, 3H): dL/d[A_z | A_r | A_h], the pre-activations
    # torch form: the gradient of H_{t-1} W_h + [0 | 0 | b_hn], which differs from dXW in
    # its candidate block (R multiplies the recurrent part only)
    dHW = np.empty_like(gates) if torch_form else None  # (T, B, 3H)
    for t in reversed(range(T)):
        H_prev = Hs[t]  # (B, H)
        Z, R, H_tilda = gates[t, :, :n], gates[t, :, n: 2 * n], gates[t, :, 2 * n:]
        dA_z, dA_r, dA_h = dXW[t, :, :n], dXW[t, :, n: 2 * n], dXW[t, :, 2 * n:]
        dH = dHs[t] + dH_next  # (B, H): H_t feeds the output at t and H_{t+1}
        np.subtract(H_prev, H_tilda, out=dA_z)  # ∂H_t/∂Z = H_{t-1} - H̃
        dA_z *= dH
        dA_z *= Z * (1 - Z)  # σ'
        np.multiply(dH, 1 - Z, out=dA_h)  # ∂H_t/∂H̃ = 1 - Z
        dA_h *= 1 - H_tilda * H_tilda  # tanh'
        dH_prev = dH * Z  # (B, H): the direct path H_{t-1} -> H_t
        if torch_form:
            np.multiply(dA_h, HW_n[t], out=dA_r)  # A_h = ... + R ⊙ HW_n
            dA_r *= R * (1 - R)
            dHW[t, :, : 2 * n] = dXW[t, :, : 2 * n]
            np.multiply(dA_h, R, out=dHW[t, :, 2 * n:])  # dL/dHW_n
            dH_prev += dHW[t] @ W_h.T  # H_{t-1} W_h fed Z, R and HW_n: one matmul
        else:
            dRH = dA_h @ W_hh.T  # (B, H): A_h = ... + (R ⊙ H_{t-1}) W_hh
            np.multiply(dRH, H_prev, out=dA_r)  # R ⊙ H_{t-1}
            dA_r *= R * (1 - R)
            dH_prev += dRH * R
            dH_prev += dXW[t, :, : 2 * n] @ W_zr.T  # H_{t-1} fed Z and R
        dH_next = dH_prev  # into H_{t-1}
    H_prevs = Hs[:-1].reshape(-1, n)  # (T*B, H)
    if torch_form:
        # dW_h += H_{t-1}ᵀ [dA_z | dA_r | dHW_n] for every t, as one product
        dHW2 = dHW.reshape(-1, G)  # (T*B, 3H)
        dW_h = H_prevs.T @ dHW2  # (H, 3H)
        db_hn = dHW2[:, 2 * n:].sum(axis=0)  # (H,)
        return dXW, dW_h, (dH_next,), db_hn
    dW_h = np.empty_like(W_h)  # (H, 3H)
    dW_h[:, : 2 * n] = H_prevs.T @ dXW[..., : 2 * n].reshape(-1, 2 * n)  # Σ_t H_{t-1}ᵀ dA_zr
    dW_h[:, 2 * n:] = RH.reshape(-1, n).T @ dXW[..., 2 * n:].reshape(-1, n)  # Σ (R⊙H)ᵀ dA_h
    return dXW, dW_h, (dH_next,)


CELLS["gru"] = (gru_forward, gru_backward)
