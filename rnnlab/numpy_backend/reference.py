"""The readable reference: d2l's per-gate ``rnn`` / ``lstm`` / ``gru`` (and Le et al.'s
``irnn``) and their BPTT, step by step.

These follow d2l 8.5, 9.1 and 9.2 line for line: one-hot inputs as real matrices, one matmul
per gate, a Python loop over time that stores what the backward needs. They are slow
on purpose. The fused cells in ``cells.py`` must give the same outputs and gradients,
and tests hold them to it. One layer, one direction.
"""

from __future__ import annotations

import numpy as np

from .functional import sigmoid


def one_hot(X: np.ndarray, V: int, dtype) -> np.ndarray:
    """(B, T) ids -> (T, B, V) one-hot rows, time-major as d2l's ``F.one_hot(X.T, V)``."""
    return np.eye(V, dtype=dtype)[X.T]  # (T, B, V)


def rnn_reference(params: dict, X: np.ndarray, state: tuple):
    """d2l's ``rnn``: H = tanh(X W_xh + H W_hh + b_h); Y = H W_hq + b_q, per step."""
    W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in ("W_xh", "W_hh", "b_h", "W_hq", "b_q"))
    (H,) = state
    inputs = one_hot(X, W_xh.shape[0], W_xh.dtype)  # (T, B, V)
    outputs, cache = [], {"inputs": inputs, "H": [H]}
    for X_t in inputs:
        H = np.tanh(X_t @ W_xh + H @ W_hh + b_h)  # (B, H)
        outputs.append(H @ W_hq + b_q)  # (B, V)
        cache["H"].append(H)
    return np.concatenate(outputs, axis=0), (H,), cache


def rnn_reference_backward(params: dict, dY: np.ndarray, cache: dict):
    """min-char-rnn's backward: walk time in reverse, carrying dH_next."""
    W_hh, W_hq = params["W_hh"], params["W_hq"]
    inputs, Hs = cache["inputs"], cache["H"]
    T, B = inputs.shape[:2]
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dH_next = np.zeros_like(Hs[0])  # (B, H)
    for t in reversed(range(T)):
        dY_t = dY[t * B:(t + 1) * B]  # (B, V)
        g["W_hq"] += Hs[t + 1].T @ dY_t  # Y = H W_hq + b_q
        g["b_q"] += dY_t.sum(0)
        dH = dY_t @ W_hq.T + dH_next  # (B, H): H_t feeds Y_t and H_{t+1}
        dZ = dH * (1 - Hs[t + 1] ** 2)  # (B, H): through tanh
        g["W_xh"] += inputs[t].T @ dZ
        g["W_hh"] += Hs[t].T @ dZ
        g["b_h"] += dZ.sum(0)
        dH_next = dZ @ W_hh.T  # (B, H): into H_{t-1}
    return g, (dH_next,)


def step_inputs(X: np.ndarray, V: int, dtype) -> np.ndarray:
    """The inputs of every step, time-major: one-hot rows of (B, T) ids, or (B, T, In) reals."""
    return one_hot(X, V, dtype) if X.ndim == 2 else X.transpose(1, 0, 2).astype(dtype)  # (T, B, In)


def irnn_reference(params: dict, X: np.ndarray, state: tuple):
    """Le et al.'s IRNN, step by step: H = ReLU(X W_xh + H W_hh + b_h); Y = H W_hq + b_q.

    X is (B, T) ids or (B, T, In) real inputs (the adding problem's).
    """
    W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in ("W_xh", "W_hh", "b_h", "W_hq", "b_q"))
    (H,) = state
    inputs = step_inputs(X, W_xh.shape[0], W_xh.dtype)  # (T, B, In)
    outputs, cache = [], {"inputs": inputs, "H": [H]}
    for X_t in inputs:
        H = np.maximum(X_t @ W_xh + H @ W_hh + b_h, 0)  # (B, H)
        outputs.append(H @ W_hq + b_q)  # (B, V)
        cache["H"].append(H)
    return np.concatenate(outputs, axis=0), (H,), cache


def irnn_reference_backward(params: dict, dY: np.ndarray, cache: dict):
    """rnn_reference_backward with ReLU' = [H > 0] where tanh' = 1 - H² was."""
    W_hh, W_hq = params["W_hh"], params["W_hq"]
    inputs, Hs = cache["inputs"], cache["H"]
    T, B = inputs.shape[:2]
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dH_next = np.zeros_like(Hs[0])  # (B, H)
    for t in reversed(range(T)):
        dY_t = dY[t * B:(t + 1) * B]  # (B, V)
        g["W_hq"] += Hs[t + 1].T @ dY_t  # Y = H W_hq + b_q
        g["b_q"] += dY_t.sum(0)
        dH = dY_t @ W_hq.T + dH_next  # (B, H): H_t feeds Y_t and H_{t+1}
        dZ = dH * (Hs[t + 1] > 0)  # (B, H): through ReLU
        g["W_xh"] += inputs[t].T @ dZ
        g["W_hh"] += Hs[t].T @ dZ
        g["b_h"] += dZ.sum(0)
        dH_next = dZ @ W_hh.T  # (B, H): into H_{t-1}
    return g, (dH_next,)


def lstm_reference(params: dict, X: np.ndarray, state: tuple):
    """d2l's ``lstm``, gate by gate."""
    p = params
    H, C = state
    inputs = one_hot(X, p["W_xi"].shape[0], p["W_xi"].dtype)  # (T, B, V)
    outputs = []
    cache = {"inputs": inputs, "H": [H], "C": [C], "I": [], "F": [], "O": [], "C_tilda": []}
    for X_t in inputs:
        I = sigmoid((X_t @ p["W_xi"]) + (H @ p["W_hi"]) + p["b_i"])  # (B, H)
        F = sigmoid((X_t @ p["W_xf"]) + (H @ p["W_hf"]) + p["b_f"])  # (B, H)
        O = sigmoid((X_t @ p["W_xo"]) + (H @ p["W_ho"]) + p["b_o"])  # (B, H)
        C_tilda = np.tanh((X_t @ p["W_xc"]) + (H @ p["W_hc"]) + p["b_c"])  # (B, H)
        C = F * C + I * C_tilda  # (B, H)
        H = O * np.tanh(C)  # (B, H)
        outputs.append(H @ p["W_hq"] + p["b_q"])  # (B, V)
        for k, v in (("I", I), ("F", F), ("O", O), ("C_tilda", C_tilda), ("H", H), ("C", C)):
            cache[k].append(v)
    return np.concatenate(outputs, axis=0), (H, C), cache


def lstm_reference_backward(params: dict, dY: np.ndarray, cache: dict):
    """The LSTM's BPTT, gate by gate, each line under the forward line it differentiates."""
    p = params
    inputs = cache["inputs"]
    T, B = inputs.shape[:2]
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dH_next = np.zeros_like(cache["H"][0])  # (B, H)
    dC_next = np.zeros_like(cache["C"][0])  # (B, H)
    for t in reversed(range(T)):
        X_t, H_prev, C_prev = inputs[t], cache["H"][t], cache["C"][t]
        I, F, O, C_tilda = (cache[k][t] for k in ("I", "F", "O", "C_tilda"))
        C, H = cache["C"][t + 1], cache["H"][t + 1]
        dY_t = dY[t * B:(t + 1) * B]  # (B, V)
        g["W_hq"] += H.T @ dY_t  # Y = H W_hq + b_q
        g["b_q"] += dY_t.sum(0)
        dH = dY_t @ p["W_hq"].T + dH_next  # (B, H): H_t feeds Y_t and H_{t+1}
        dO = dH * np.tanh(C)  # H = O ⊙ tanh(C)
        dC = dH * O * (1 - np.tanh(C) ** 2) + dC_next  # C_t feeds H_t and C_{t+1}
        dF = dC * C_prev  # C = F ⊙ C_prev + I ⊙ C_tilda
        dI = dC * C_tilda
        dC_tilda = dC * I
        dZ = {
            "i": dI * I * (1 - I),  # I = σ(Z_i)
            "f": dF * F * (1 - F),  # F = σ(Z_f)
            "o": dO * O * (1 - O),  # O = σ(Z_o)
            "c": dC_tilda * (1 - C_tilda ** 2),  # C_tilda = tanh(Z_c)
        }
        dH_next = np.zeros_like(H_prev)  # (B, H)
        for gate, dz in dZ.items():
            g[f"W_x{gate}"] += X_t.T @ dz
            g[f"W_h{gate}"] += H_prev.T @ dz
            g[f"b_{gate}"] += dz.sum(0)
            dH_next += dz @ p[f"W_h{gate}"].T  # into H_{t-1}, through every gate
        dC_next = dC * F  # into C_{t-1}
    return g, (dH_next, dC_next)


def gru_reference(params: dict, X: np.ndarray, state: tuple):
    """d2l's ``gru``, gate by gate. With ``b_hn`` in params, the torch form's candidate.

    d2l:   H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h)
    torch: H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh + b_hn))
    """
    p = params
    torch_form = "b_hn" in p
    (H,) = state
    inputs = one_hot(X, p["W_xz"].shape[0], p["W_xz"].dtype)  # (T, B, V)
    outputs = []
    cache = {"inputs": inputs, "H": [H], "Z": [], "R": [], "H_tilda": []}
    for X_t in inputs:
        Z = sigmoid((X_t @ p["W_xz"]) + (H @ p["W_hz"]) + p["b_z"])  # (B, H)
        R = sigmoid((X_t @ p["W_xr"]) + (H @ p["W_hr"]) + p["b_r"])  # (B, H)
        if torch_form:
            H_tilda = np.tanh((X_t @ p["W_xh"]) + p["b_h"] + R * ((H @ p["W_hh"]) + p["b_hn"]))  # (B, H)
        else:
            H_tilda = np.tanh((X_t @ p["W_xh"]) + ((R * H) @ p["W_hh"]) + p["b_h"])  # (B, H)
        H = Z * H + (1 - Z) * H_tilda  # (B, H)
        outputs.append(H @ p["W_hq"] + p["b_q"])  # (B, V)
        for k, v in (("Z", Z), ("R", R), ("H_tilda", H_tilda), ("H", H)):
            cache[k].append(v)
    return np.concatenate(outputs, axis=0), (H,), cache


def gru_reference_backward(params: dict, dY: np.ndarray, cache: dict):
    """The GRU's BPTT, gate by gate, each line under the forward line it differentiates."""
    p = params
    torch_form = "b_hn" in p
    inputs = cache["inputs"]
    T, B = inputs.shape[:2]
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dH_next = np.zeros_like(cache["H"][0])  # (B, H)
    for t in reversed(range(T)):
        X_t, H_prev, H = inputs[t], cache["H"][t], cache["H"][t + 1]
        Z, R, H_tilda = (cache[k][t] for k in ("Z", "R", "H_tilda"))
        dY_t = dY[t * B:(t + 1) * B]  # (B, V)
        g["W_hq"] += H.T @ dY_t  # Y = H W_hq + b_q
        g["b_q"] += dY_t.sum(0)
        dH = dY_t @ p["W_hq"].T + dH_next  # (B, H): H_t feeds Y_t and H_{t+1}
        dZ = dH * (H_prev - H_tilda)  # H = Z ⊙ H_prev + (1 - Z) ⊙ H_tilda
        dH_tilda = dH * (1 - Z)
        dH_prev = dH * Z
        dA_h = dH_tilda * (1 - H_tilda ** 2)  # H_tilda = tanh(A_h)
        g["W_xh"] += X_t.T @ dA_h
        g["b_h"] += dA_h.sum(0)
        if torch_form:  # A_h = X W_xh + b_h + R ⊙ (H_prev W_hh + b_hn)
            dR = dA_h * ((H_prev @ p["W_hh"]) + p["b_hn"])
            dHW_n = dA_h * R
            g["W_hh"] += H_prev.T @ dHW_n
            g["b_hn"] += dHW_n.sum(0)
            dH_prev += dHW_n @ p["W_hh"].T
        else:  # A_h = X W_xh + (R ⊙ H_prev) W_hh + b_h
            dRH = dA_h @ p["W_hh"].T
            g["W_hh"] += (R * H_prev).T @ dA_h
            dR = dRH * H_prev
            dH_prev += dRH * R
        dA = {"z": dZ * Z * (1 - Z), "r": dR * R * (1 - R)}  # Z = σ(A_z), R = σ(A_r)
        for gate, da in dA.items():
            g[f"W_x{gate}"] += X_t.T @ da
            g[f"W_h{gate}"] += H_prev.T @ da
            g[f"b_{gate}"] += da.sum(0)
            dH_prev += da @ p[f"W_h{gate}"].T  # into H_{t-1}, through Z and R
        dH_next = dH_prev
    return g, (dH_next,)


REFERENCES = {
    "rnn": (rnn_reference, rnn_reference_backward),
    "lstm": (lstm_reference, lstm_reference_backward),
    "gru": (gru_reference, gru_reference_backward),
    "irnn": (irnn_reference, irnn_reference_backward),
}
