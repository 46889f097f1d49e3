"""The specification that ``rnnlab verify`` holds code to, and every rule in it that code breaks.

One recurrent layer (``rnn``, ``irnn``, ``lstm`` or ``gru``) over dense inputs, gate by
gate as in d2l 8.5, 9.1 and 9.2, each backward directly below its forward. The ``irnn``
(Le, Jaitly & Hinton 2015) is the ``rnn`` with ReLU in the place of tanh; its W_hh starts
at the identity, which matters to training, not to the function checked here. Notation (docs/verify.md):

    X (T, B, D) inputs, time-major;  H_0 (and C_0) the initial state (B, H)
    step t = 1..T reads X_t and H_{t-1} and makes H_t;  in code ``Hs[t]`` is H_t, ``Hs[0] = H_0``
    parameters: rnnlab's (d2l's) names, row vectors: W_x<g> (D, H), W_h<g> (H, H), b_<g> (H,)

An optional output layer (d2l's ``rnn(inputs, state, params)`` and min-char-rnn have one)
makes Y_t = H_t W_hq + b_q (B, V); min-char-rnn's loss is Σ_t -log softmax(Y_t)[target_t].

Every function here computes under a :class:`rules.Rules` (``SPEC``, the specification, by
default): a known mistake (``mistakes.py``) is ``SPEC`` with one field replaced, so it is
computed by this same readable code, and a subject whose numbers reproduce it can be told
which line is wrong.

Everything here is float64 NumPy, slow on purpose and short: it is the reference, not a
fast path (``rnnlab.numpy_backend`` is).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .rules import GATES, RELU, SPEC, TANH, Act, Rules


def _acts(r: Rules, cell: str) -> dict:
    """Each gate's nonlinearity: the σ gates r.gate, the candidate r.candidate, unless
    r.gate_acts gives one gate another (σ' missing in one gate only, a gate never used)."""
    gates = GATES[cell]
    cand = gates[-1]  # lstm's c, gru's h
    acts = {g: (r.candidate if g == cand else r.gate) for g in gates}
    acts.update(dict(r.gate_acts))
    return acts


def _local_grad(r: Rules, acts: dict, gate: str, z: np.ndarray, values: dict) -> np.ndarray:
    """A gate's local derivative at its pre-activation z, from its value values[gate]: the
    act's own, or, where r.grad_reads rewrites it, a(1 - b) (a σ) or 1 - a b (a tanh) with
    the values it names."""
    for g, a, b in r.grad_reads:
        if g == gate:
            va, vb = values[a], values[b]  # (B, H) each
            return 1 - va * vb if acts[gate].name == "tanh" else va * (1 - vb)
    return acts[gate].grad(z, values[gate])


def _gate_line(r: Rules, act: Act, p: dict, g: str, X_t: np.ndarray, H: np.ndarray) -> tuple:
    """(A, value) of gate g: A = X_t W_x<g> + H_{t-1} W_h<g> + b_<g> and act(A), or, with a
    parenthesis closed early (r.outside), the part inside act and the value with the rest
    added after it."""
    xw, hw, b = X_t @ p[f"W_x{g}"], H @ p[f"W_h{g}"], p[f"b_{g}"]  # (B, H), (B, H), (H,)
    where = dict(r.outside).get(g)
    if where == "b":  # act(X W_x + H W_h) + b
        A = xw + hw  # (B, H)
        return A, act.f(A) + b
    if where == "hb":  # act(X W_x + b_in) + H W_h + b
        A = xw + p.get(f"b_{g}~in", 0)  # (B, H)
        return A, act.f(A) + hw + b
    A = xw + hw + b  # (B, H)
    return A, act.f(A)


def _gate_line_back(r: Rules, g: str, dz: np.ndarray, dvalue: np.ndarray) -> tuple:
    """(dA for W_x and X_t, dA for W_h and H_{t-1}, dA for b_<g>) of gate g's line: dz, the
    gradient through the activation, for each; with r.outside, the value's own gradient
    where a term was added after the activation."""
    where = dict(r.outside).get(g) if r.outside_back else None
    if where == "b":
        return dz, dz, dvalue
    if where == "hb":
        return dz, dvalue, dvalue
    return dz, dz, dz


def _one_of(which: str, name: str) -> bool:
    """Whether parameter ``name`` is among ``which``: the output layer's "W_hq" or "b_q" by
    name, or the cell's arrays by prefix ("W_x" is every W_x<g>, "b_" every gate bias)."""
    head = ("W_hq", "b_q")
    return name == which if which in head else name.startswith(which) and name not in head


def _acc(r: Rules, g: dict, name: str, part: np.ndarray) -> None:
    """dW += part (spec), or dW = part when the code forgot to accumulate over steps (every
    array, or one of the cell's, the output layer's W_hq and b_q never among those)."""
    one = bool(r.not_accumulated) and _one_of(r.not_accumulated, name)
    g[name] = g[name] + part if r.accumulate and not one else part


def _bias(r: Rules, dZ: np.ndarray) -> np.ndarray:
    """db = Σ_b dZ[b]: every batch row's loss depends on the one bias."""
    return dZ.sum(0) if r.bias == "sum" else dZ.mean(0)  # (H,)


def _carry(r: Rules, dH_next: np.ndarray, t: int, T: int) -> np.ndarray:
    """dH_next: what reaches H_t from step t+1, or at t = T from beyond the window (which a
    dropped carry keeps: it arrives as the upstream gradient of the final output)."""
    return dH_next if t == T - 1 else r.carry_h * dH_next


def _back(r: Rules, dZ: np.ndarray, W: np.ndarray) -> np.ndarray:
    """dH_{t-1} += dZ W_hᵀ (the forward computed H_{t-1} W_h)."""
    return dZ @ (W.T if r.transpose_W_h else W)  # (B, H)


def _clip(r: Rules, dH: np.ndarray) -> np.ndarray:
    """The gradient carried into H_{t-1}, as the loop passes it on: itself (spec), or
    clipped to [-clip_carry, clip_carry] at every step, wrongly."""
    return np.clip(dH, -r.clip_carry, r.clip_carry) if r.clip_carry > 0 else dH


def _cut(r: Rules, t: int) -> bool:
    """Whether the state entering step t (0-based) was detached: at every step with
    ``detach``, except the first when the cut comes after each step (H_0 is a leaf that
    step 1 still reads from the graph)."""
    return r.detach and (t > 0 or r.detach_first)


def _steps(r: Rules, T: int):
    """The order BPTT visits the steps: T-1 (T-2, r.skip_last) down to r.first_step (or,
    wrongly, up)."""
    steps = range(r.first_step, T - r.skip_last)
    return steps if r.bptt_order == "forward" else reversed(steps)


def _cached(r: Rules, t: int, T: int) -> int:
    """The step whose cache BPTT's step t reads: t (spec), t-1 (cache[t-1], wrapping to the
    last step at t = 0, as Python's cache[-1] does) or T-1-t (the caches reversed)."""
    return {"t": t, "t-1": (t - 1) % T, "reversed": T - 1 - t}[r.cache_step]


def _zeros(params: dict, names) -> dict:
    return {k: np.zeros_like(params[k]) for k in names}


# ------------------------------------------------------------------------------- rnn


class RNNCache(NamedTuple):
    X: np.ndarray  # (T, B, D)
    Hs: np.ndarray  # (T+1, B, H): H_0 .. H_T
    A: np.ndarray  # (T, B, H): pre-activations


def rnn_forward(p: dict, X: np.ndarray, state: tuple, r: Rules = SPEC):
    """H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)."""
    (H,) = state
    Hs, A = [H], []
    for X_t in X:
        H_in = H if r.step_reads == "prev" else Hs[0]  # (B, H): H_{t-1}, or H_0 every step
        A_t = X_t @ p["W_xh"] + H_in @ p["W_hh"] + (0 if r.bias_after else p["b_h"])  # (B, H)
        H = r.candidate.f(A_t) + (p["b_h"] if r.bias_after else 0)  # (B, H)
        Hs.append(H)
        A.append(A_t)
    return np.stack(Hs[1:]), (H,), RNNCache(X, np.stack(Hs), np.stack(A))


def rnn_backward(p: dict, dHs: np.ndarray, dstate: tuple, c: RNNCache, r: Rules = SPEC):
    """dA_t = (dY_t + dH_next) ⊙ (1 - H_t²);  dW_xh += X_tᵀ dA_t;  dW_hh += H_{t-1}ᵀ dA_t;
    db_h += Σ_b dA_t;  dX_t = dA_t W_xhᵀ;  dH_next ← dA_t W_hhᵀ."""
    X, Hs, A = c
    T = len(X)
    g = _zeros(p, ("W_xh", "W_hh", "b_h"))
    dX = np.zeros_like(X)  # (T, B, D)
    (dH_next,) = dstate  # (B, H): reaches H_T from beyond the window
    if r.skip_last:  # the loop starts at step T-1: what reaches H_T is never read
        dH_next = 0 * dH_next
    if r.bptt_order == "forward":  # H_T's upstream gradient still arrives at step T; the
        dHs = np.concatenate([dHs[:-1], dHs[-1:] + dH_next])  # loop starts from nothing
        dH_next = 0 * dH_next
    dH = dH_next
    reads_H0 = r.step_reads == "initial"  # every step read H_0 ...
    true_H0 = reads_H0 and r.step_reads_back == "true"  # ... and the backward knows it
    dH0 = 0 * dH_next  # (B, H): what every step sends to H_0 when each read it
    for t in _steps(r, T):
        k = _cached(r, t, T)  # the step whose cache step t reads: t
        dH = dHs[t] + _carry(r, dH_next, t, T)  # (B, H): H_t feeds Y_t and step t+1
        y = (Hs[k] if r.dtanh_state == "prev" else Hs[k + 1] if r.bias_after == "forward-only"
             else r.candidate.f(A[k]))  # (B, H): tanh(A_t) (or the H_t cached, or H_{t-1})
        dA = dH * r.candidate.grad(A[k], y)  # (B, H): H_t = tanh(A_t)
        if r.carry_after_dtanh:  # the carry added after tanh', wrongly
            dA = dHs[t] * r.candidate.grad(A[k], y) + _carry(r, dH_next, t, T)  # (B, H)
        H_used = Hs[k] if r.dW_h_state == "prev" else Hs[k + 1]  # (B, H)
        if reads_H0 and r.step_reads_back != "states":
            H_used = Hs[0]  # (B, H): the state step t read (or the cache says it read)
        d = {a: (dH if a in r.raw_for else dA) for a in ("W_xh", "W_hh", "X")}  # (B, H) each
        _acc(r, g, "W_xh", X[k].T @ d["W_xh"])
        _acc(r, g, "W_hh", H_used.T @ d["W_hh"])
        _acc(r, g, "b_h", _bias(r, dA if r.db_of == "dA" and r.bias_after != "true" else dH))
        dX[t] = d["X"] @ p["W_xh"].T  # (B, D)
        carried = _back(r, dH if r.carry_raw else dA, p["W_hh"])  # (B, H): into H_{t-1}
        dH_next = 0 * dH if _cut(r, t) else _clip(r, carried)  # (B, H)
        if true_H0:  # step t read H_0, not H_{t-1}: its gradient goes there
            dH0, dH_next = dH0 + dH_next, 0 * dH_next
    if true_H0:
        dH_next = dH0
    dstate0 = {"carried": (dH_next,), "zero": (0 * dH_next,), "unmultiplied": (dH,),
               "upstream": (dHs[0],), "plus-upstream": (dH_next + dHs[0],)}[r.dstate0]
    return g, dX, dstate0


# ------------------------------------------------------------------------------ irnn


def _relu_rules(r: Rules) -> Rules:
    """The irnn's rules: the rnn's, with ReLU where the spec has tanh (a mistake that
    replaces the candidate's nonlinearity keeps its own)."""
    return replace(r, candidate=RELU) if r.candidate is TANH else r


def irnn_forward(p: dict, X: np.ndarray, state: tuple, r: Rules = SPEC):
    """H_t = relu(X_t W_xh + H_{t-1} W_hh + b_h)."""
    return rnn_forward(p, X, state, _relu_rules(r))


def irnn_backward(p: dict, dHs: np.ndarray, dstate: tuple, c: RNNCache, r: Rules = SPEC):
    """The rnn's backward with relu'(A_t) = [A_t > 0] in the place of 1 - H_t²."""
    return rnn_backward(p, dHs, dstate, c, _relu_rules(r))


# ------------------------------------------------------------------------------ lstm


class LSTMCache(NamedTuple):
    X: np.ndarray  # (T, B, D)
    Hs: np.ndarray  # (T+1, B, H)
    Cs: np.ndarray  # (T+1, B, H)
    Z: dict  # gate -> (T, B, H) pre-activations
    I: np.ndarray  # (T, B, H)
    F: np.ndarray  # (T, B, H)
    O: np.ndarray  # (T, B, H)
    C_tilda: np.ndarray  # (T, B, H)
    TC: np.ndarray  # (T, B, H): tanh(C_t)


def lstm_forward(p: dict, X: np.ndarray, state: tuple, r: Rules = SPEC):
    """I, F, O = σ(X_t W_x<g> + H_{t-1} W_h<g> + b_<g>),  C̃ = tanh(... c ...),
    C_t = F ⊙ C_{t-1} + I ⊙ C̃,  H_t = O ⊙ tanh(C_t)."""
    H, C = state
    Hs, Cs = [H], [C]
    acts = _acts(r, "lstm")
    keep = {k: [] for k in ("i", "f", "o", "c", "I", "F", "O", "C_tilda", "TC")}
    for X_t in X:
        if r.step_reads == "initial":  # the state never updated: every step reads H_0, C_0
            H, C = Hs[0], Cs[0]
        if r.step_reads == "initial-c":  # the cell state alone never updated: C_0 every step
            C = Cs[0]
        lines = {g: _gate_line(r, acts[g], p, g, X_t, C if g in r.reads_c else H)  # (A, value)
                 for g in "ifoc"}  # each; C is C_{t-1} here
        Z = {g: A for g, (A, _) in lines.items()}  # (B, H) each: the pre-activations
        I, F, O, C_tilda = (lines[g][1] for g in "ifoc")  # (B, H) each
        if r.coupled_input:  # I computed and never used: 1 - F in its place
            I = 1 - F  # (B, H)
        C_prev = C  # (B, H)
        C = F * (C if r.forget_on == "C" else H) + I * C_tilda  # (B, H): H is H_{t-1} here
        if r.c_squash:  # squashed, wrongly
            C = np.tanh(C)  # (B, H)
        TC = r.cell.f({"new": C, "candidate": C_tilda}.get(r.h_cell, C_prev))  # (B, H): tanh(C_t)
        H = O * (C if r.cell_forward_only else TC)  # (B, H)
        if r.h_form == "tanh-oc":  # the tanh around the product, wrongly
            H = r.cell.f(O * C)  # (B, H)
        Hs.append(H)
        Cs.append(C)
        for k, v in (*Z.items(), ("I", I), ("F", F), ("O", O), ("C_tilda", C_tilda), ("TC", TC)):
            keep[k].append(v)
    s = {k: np.stack(v) for k, v in keep.items()}
    cache = LSTMCache(X, np.stack(Hs), np.stack(Cs), {g: s[g] for g in "ifoc"}, s["I"], s["F"],
                      s["O"], s["C_tilda"], s["TC"])
    outs = {"H": Hs[1:], "C": Cs[1:], "C-forward-only": Cs[1:],
            "candidate": keep["C_tilda"]}[r.outputs]  # (T, B, H) each
    return np.stack(outs), (H, C), cache


def lstm_backward(p: dict, dHs: np.ndarray, dstate: tuple, c: LSTMCache, r: Rules = SPEC,
                  dC_at: tuple | None = None, dCand_last: np.ndarray | None = None):
    """The LSTM's BPTT, each line under the forward line it differentiates:

    dO = dH ⊙ tanh(C_t)                            (H_t = O ⊙ tanh(C_t))
    dC = dH ⊙ O ⊙ (1 - tanh²(C_t)) + dC_next       (C_t feeds H_t and C_{t+1})
    dF = dC ⊙ C_{t-1},  dI = dC ⊙ C̃,  dC̃ = dC ⊙ I  (C_t = F ⊙ C_{t-1} + I ⊙ C̃)
    dZ_<g> = d<gate> ⊙ σ' (i, f, o) or ⊙ tanh' (c);  dC_next ← dC ⊙ F;  dH_next ← Σ_g dZ_g W_h<g>ᵀ
    """
    X, Hs, Cs, Z, I, F, O, C_tilda, TC = c
    T = len(X)
    acts = _acts(r, "lstm")
    names = [f"{k}{g}" for g in "ifoc" for k in ("W_x", "W_h", "b_")]
    g = _zeros(p, names + [k for k in p if k.endswith("~in")])
    dX = np.zeros_like(X)  # (T, B, D)
    dH_next, dC_next = dstate  # (B, H) each: reach H_T, C_T from beyond the window
    if r.skip_last:  # the loop starts at step T-1: what reaches H_T, C_T is never read
        dH_next, dC_next = 0 * dH_next, 0 * dC_next
    dH_T, dC_T = 0 * dH_next, 0 * dC_next  # (B, H) each: H_T's, C_T's upstream gradients
    if r.bptt_order == "forward":  # when the loop runs forward in time (see rnn_backward):
        dH_T, dC_T, dH_next, dC_next = dH_next, dC_next, 0 * dH_next, 0 * dC_next
    dH, dC = dH_next, dC_next
    reads_0 = r.step_reads == "initial"  # every step read H_0, C_0 (see rnn_backward) ...
    reads_c0 = reads_0 or r.step_reads == "initial-c"  # ... or C_0 alone, H carried
    cached = r.step_reads_back != "states"  # the backward reads what each step read
    true_0 = reads_c0 and r.step_reads_back == "true"  # ... and the backward knows it
    dH0, dC0 = 0 * dH_next, 0 * dC_next  # (B, H) each: what every step sends to H_0, C_0
    for t in _steps(r, T):
        k = _cached(r, t, T)  # the step whose cache step t reads: t
        H_prev = Hs[0] if reads_0 and cached else Hs[k]  # (B, H): the state step t read
        C_prev = Cs[0] if reads_c0 and cached else Cs[k]  # (B, H)
        dOut = {r.outputs.replace("C-forward-only", "H"): dHs[t]}  # (B, H): H_t (C_t, C̃_t) ...
        dOut_H, dOut_C, dOut_cand = (dOut.get(k, 0) for k in ("H", "C", "candidate"))
        # (B, H): H_t feeds Y_t and step t+1 (and, the loop run forward, H_T its upstream)
        dH = dOut_H + _carry(r, dH_next, t, T) + (dH_T if t == T - 1 else 0)
        # the cell H_t reads (C_t) and its tanh, as the backward takes them: a backward written
        # for O ⊙ tanh(C_t) recomputes tanh(C_t) where the forward took tanh(C_{t-1})
        h_cell = "new" if r.h_cell == "prev-forward-only" else r.h_cell
        TC_k = r.cell.f(Cs[k + 1]) if r.h_cell == "prev-forward-only" else TC[k]  # (B, H)
        dO = dH * {"tanh": TC_k, "raw": Cs[k + 1], "none": 1}[r.dO_cell]  # (B, H)
        C_h = {"new": Cs[k + 1], "prev": Cs[k], "candidate": C_tilda[k]}[h_cell]  # (B, H)
        d_tanh_C = (r.cell.grad(C_h, TC_k) if not r.cell_grad_reads  # (B, H): tanh'(C_t)
                    else 1 - {"c": C_tilda[k], "H": Hs[k + 1]}[r.cell_grad_reads] ** 2)
        dC_h = r.c_path * dH * (O[k] if r.c_path_o else 1) * d_tanh_C  # (B, H)
        if r.h_form == "tanh-oc":  # H_t = tanh(O ⊙ C_t): d(O ⊙ C) = dH ⊙ (1 - H_t²)
            dOC = dH * r.cell.grad(O[k] * Cs[k + 1], Hs[k + 1])  # (B, H)
            dO, dC_h = dOC * Cs[k + 1], dOC * O[k]  # (B, H) each
        dC_in = r.carry_c * dC_next  # (B, H): what reaches C_t from step t+1
        dC = (dC_h if h_cell == "new" else 0) + dC_in + dOut_C  # (B, H)
        if dC_at is not None and t == dC_at[0]:  # C_t returned as the final state (C_1,
            dC = dC + dC_at[1]  # C_{T-1}): its upstream gradient
        if t == T - 1:  # C_T's upstream gradient, when the loop did not start from it
            dC = dC + dC_T
        if r.c_squash:  # C_t = tanh(F ⊙ C_{t-1} + I ⊙ C̃): through that tanh first
            dC = dC * (1 - Cs[k + 1] ** 2)  # (B, H)
        dC_g = {g: (dC_in + dOut_C if g in r.dc_gates else dC - dC_in if g in r.dc_h_only
                    else dC) for g in "ifc"}  # (B, H) each:
        dF = dC_g["f"] * {"prev": C_prev if r.forget_on == "C" else H_prev,  # what F reads
                          "next": Cs[k + 1], "h_prev": H_prev}[r.dF_cell]  # (B, H)
        dI = dC_g["i"] * C_tilda[k]  # (B, H)
        if r.coupled_input:  # I = 1 - F: I's gradient is F's, negated; I's own gets none
            dF, dI = dF - dI, 0 * dI
        dC_tilda = dC_g["c"] * I[k] + dOut_cand  # (B, H)
        if h_cell == "candidate":  # H_t = O ⊙ tanh(C̃): its path reaches C̃ directly
            dC_tilda = dC_tilda + dC_h  # (B, H)
        if t == T - 1 and dCand_last is not None:  # C̃_T returned as the final cell state
            dC_tilda = dC_tilda + dCand_last  # (B, H)
        values = {"i": I[k], "f": F[k], "o": O[k], "c": C_tilda[k], "TC": TC_k, "H": Hs[k + 1]}
        for gate, _ in (r.outside if r.outside_back else ()):  # a term added after the activation:
            values[gate] = acts[gate].f(Z[gate][k])  # (B, H)   act(A) is not its value
        dvalue = {"i": dI, "f": dF, "o": dO, "c": dC_tilda}  # (B, H) each
        dZ = {gate: dv * _local_grad(r, acts, gate, Z[gate][k], values)  # (B, H) each:
              for gate, dv in dvalue.items()}  # through each gate's nonlinearity
        H_used = H_prev if r.dW_h_state == "prev" else Hs[k + 1]  # (B, H)
        dH_next = np.zeros_like(dH)  # (B, H)
        dC_read = np.zeros_like(dH)  # (B, H): from gates that read C_{t-1} (r.reads_c)
        for gate, dz in dZ.items():
            w = gate if r.grad_perm is None else r.grad_perm["ifoc".index(gate)]  # its block
            dz_x, dz_h, dz_b = _gate_line_back(r, gate, dz, dvalue[gate])  # (B, H) each
            _acc(r, g, f"W_x{w}", X[k].T @ dz_x)
            read = C_prev if gate in r.reads_c else H_used  # (B, H): what W_h<g> multiplies
            _acc(r, g, f"W_h{w}", read.T @ dz_h)
            _acc(r, g, f"b_{w}", _bias(r, dz_b))
            if f"b_{w}~in" in p:  # the bias's part inside the activation
                _acc(r, g, f"b_{w}~in", _bias(r, dz_x))
            if gate == r.back_skip:  # its term left out of dX and dH_{t-1}
                continue
            if not r.dx_from_gate or gate == r.dx_from_gate:  # (else overwritten by the last)
                dX[t] += dz_x @ p[f"W_x{w}"].T  # (B, D)
            if gate in r.reads_c:  # C_{t-1} W_h<g>: its gradient goes to C_{t-1}
                dC_read += _back(r, dz_h, p[f"W_h{w}"])  # (B, H)
                continue
            if r.dh_from_gate and gate != r.dh_from_gate:  # overwritten by the last gate's
                continue
            dH_next += _back(r, dz_h, p[f"W_h{w}"])  # into H_{t-1}, through every gate
        D = X.shape[2]
        if r.dconcat_order == "xh":  # d[H_{t-1}; X_t] split as if it were d[X_t; H_{t-1}]
            dcat = np.concatenate([dH_next, dX[t]], axis=1)  # (B, H + D)
            dX[t], dH_next = dcat[:, :D], dcat[:, D:]  # (B, D), (B, H)
        if r.dconcat_order == "xh-read-hx":  # d[X_t; H_{t-1}] split as if d[H_{t-1}; X_t]
            dcat = np.concatenate([dX[t], dH_next], axis=1)  # (B, D + H)
            dH_next, dX[t] = dcat[:, :-D], dcat[:, -D:]  # (B, H), (B, D)
        if r.forget_on == "C":
            dC_kept = dC if r.carry_c_total else dC_in  # (B, H): C_t's gradient (or part of it)
            dC_next = dC_kept * (F[k] if r.carry_c_forget else 1)  # (B, H): into C_{t-1}
        else:  # C_t = F ⊙ H_{t-1} + ...: the carry goes to H_{t-1}, none to C_{t-1}
            dH_next += dC * F[k]
            dC_next = 0 * dC
        if r.h_cell == "prev":  # H_t = O ⊙ tanh(C_{t-1}): its path reaches C_{t-1} directly
            dC_next = dC_next + dC_h
        dC_next = dC_next + dC_read  # (B, H)
        dH_next = _clip(r, dH_next)  # (B, H)
        if _cut(r, t):
            dH_next, dC_next = 0 * dH_next, 0 * dC_next
        if r.cut_c:  # C_{t-1} cut from the graph where step t reads it: nothing reaches it
            dC_next = 0 * dC_next
        if r.cut_h:  # H_{t-1} so: only the cell state carries a gradient between steps
            dH_next = 0 * dH_next
        if true_0 and reads_0:  # step t read H_0 (and C_0), not H_{t-1}: its gradients go there
            dH0, dH_next = dH0 + dH_next, 0 * dH_next
        if true_0:
            dC0, dC_next = dC0 + dC_next, 0 * dC_next
    if true_0:
        dH_next, dC_next = (dH0 if reads_0 else dH_next), dC0
    dstate0 = {"carried": (dH_next, dC_next), "zero": (0 * dH_next, 0 * dC_next),
               "unmultiplied": (dH, dC), "upstream": (dHs[0], 0 * dC_next),
               "plus-upstream": (dH_next + dHs[0], dC_next)}[r.dstate0]
    return g, dX, dstate0


# ------------------------------------------------------------------------------- gru


class GRUCache(NamedTuple):
    X: np.ndarray  # (T, B, D)
    Hs: np.ndarray  # (T+1, B, H)
    A_z: np.ndarray  # (T, B, H)
    A_r: np.ndarray  # (T, B, H)
    A_h: np.ndarray  # (T, B, H)
    Z: np.ndarray  # (T, B, H)
    R: np.ndarray  # (T, B, H)
    H_tilda: np.ndarray  # (T, B, H)
    P: np.ndarray  # (T, B, H): what R multiplies: H_{t-1} (d2l) or H_{t-1} W_hh + b_hn (torch)


def gru_forward(p: dict, X: np.ndarray, state: tuple, r: Rules = SPEC):
    """Z = σ(X_t W_xz + H_{t-1} W_hz + b_z),  R = σ(X_t W_xr + H_{t-1} W_hr + b_r),
    d2l form:   H̃ = tanh(X_t W_xh + (R ⊙ H_{t-1}) W_hh + b_h)
    torch form: H̃ = tanh(X_t W_xh + b_h + R ⊙ (H_{t-1} W_hh + b_hn))   (``b_hn`` in params)
    H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃."""
    torch_form = "b_hn" in p
    (H,) = state
    Hs = [H]
    acts = _acts(r, "gru")
    keep = {k: [] for k in ("A_z", "A_r", "A_h", "Z", "R", "H_tilda", "P")}
    for X_t in X:
        if r.step_reads == "initial":  # the state never updated: every step reads H_0
            H = Hs[0]
        (A_z, Z), (A_r, R) = (_gate_line(r, acts[g], p, g, X_t, H) for g in "zr")  # (B, H) each
        if r.reset_on == "outside":  # R after the tanh, wrongly: P = tanh(A_h), H̃ = R ⊙ P
            A_h = X_t @ p["W_xh"] + p["b_h"] + H @ p["W_hh"] + p.get("b_hn", 0)  # (B, H)
            P = acts["h"].f(A_h)  # (B, H)
        elif torch_form and r.reset_on == "all":  # R on the input's terms too, wrongly
            P = X_t @ p["W_xh"] + p["b_h"] + H @ p["W_hh"] + p["b_hn"]  # (B, H)
            A_h = R * P  # (B, H)
        elif torch_form:
            P = H @ p["W_hh"] + p["b_hn"]  # (B, H): reset after the matmul
            A_h = X_t @ p["W_xh"] + p["b_h"] + R * P  # (B, H)
        elif r.reset_on == "h":
            P = H  # (B, H): reset before the matmul
            A_h = X_t @ p["W_xh"] + (R * H) @ p["W_hh"] + p["b_h"]  # (B, H)
        else:  # the reset gate on the input's term, wrongly
            P = X_t @ p["W_xh"]  # (B, H)
            A_h = R * P + H @ p["W_hh"] + p["b_h"]  # (B, H)
        H_tilda = R * P if r.reset_on == "outside" else acts["h"].f(A_h)  # (B, H)
        U = {"z": Z, "r": R}  # the gates H_t's update reads (Z and Z in the spec)
        H = U[r.update_gates[0]] * H * r.direct_term + (1 - U[r.update_gates[1]]) * H_tilda  # (B, H)
        Hs.append(H)
        for k, v in (("A_z", A_z), ("A_r", A_r), ("A_h", A_h), ("Z", Z), ("R", R),
                     ("H_tilda", H_tilda), ("P", P)):
            keep[k].append(v)
    s = {k: np.stack(v) for k, v in keep.items()}
    outs = s["H_tilda"] if r.outputs == "candidate" else np.stack(Hs[1:])  # (T, B, H)
    return outs, (H,), GRUCache(X, np.stack(Hs), **s)


def gru_backward(p: dict, dHs: np.ndarray, dstate: tuple, c: GRUCache, r: Rules = SPEC):
    """The GRU's BPTT, each line under the forward line it differentiates:

    dA_z = dH ⊙ (H_{t-1} - H̃) ⊙ σ'       dA_h = dH ⊙ (1 - Z) ⊙ tanh'
    d2l:   d(R⊙H) = dA_h W_hhᵀ,  dA_r = d(R⊙H) ⊙ H_{t-1} ⊙ σ'
    torch: dA_r = dA_h ⊙ (H_{t-1} W_hh + b_hn) ⊙ σ',  d(H_{t-1} W_hh) = dA_h ⊙ R
    dH_next = dH ⊙ Z + (the products through Z, R and the candidate)
    """
    torch_form = "b_hn" in p
    X, Hs, A_z, A_r, A_h, Z, R, H_tilda, P = c
    T = len(X)
    acts = _acts(r, "gru")
    names = [f"{k}{g}" for g in "zrh" for k in ("W_x", "W_h", "b_")] + (["b_hn"] if torch_form else [])
    g = _zeros(p, names + [k for k in p if k.endswith("~in")])
    dX = np.zeros_like(X)  # (T, B, D)
    (dH_next,) = dstate  # (B, H)
    if r.skip_last:  # the loop starts at step T-1: what reaches H_T is never read
        dH_next = 0 * dH_next
    dH = dH_next
    reads_0 = r.step_reads == "initial"  # every step read H_0 (see rnn_backward) ...
    true_0 = reads_0 and r.step_reads_back == "true"  # ... and the backward knows it
    dH0 = 0 * dH_next  # (B, H): what every step sends to H_0
    keep = r.direct_term * 1.0  # the Z ⊙ H_{t-1} term's weight: 1, or 0 when left out
    for t in reversed(range(r.first_step, T - r.skip_last)):
        H_prev = Hs[0] if reads_0 and r.step_reads_back != "states" else Hs[t]  # (B, H)
        H_used = H_prev if r.dW_h_state == "prev" else Hs[t + 1]  # (B, H)
        cand = r.outputs == "candidate"  # the output is H̃_t, not H_t
        dH = (0 if cand else dHs[t]) + _carry(r, dH_next, t, T)  # (B, H): H_t feeds Y_t and step t+1
        # H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃ (U_kept ⊙ H_{t-1} + (1 - U_mixed) ⊙ H̃)
        U = {"z": Z[t], "r": R[t]}
        kept, mixed = r.update_gates
        dU = {"z": 0 * dH, "r": 0 * dH}  # (B, H) each
        dU[kept] = dU[kept] + dH * keep * H_prev  # (B, H)
        dU[mixed] = dU[mixed] - dH * H_tilda[t]  # (B, H)
        dZ = r.update_sign * dU["z"]  # (B, H)
        dH_tilda = dH * (1 - U[mixed]) + (dHs[t] if cand else 0)  # (B, H)
        dH_prev = r.direct_path * keep * dH * U[kept]  # (B, H): the direct path H_{t-1} -> H_t
        values = {"z": Z[t], "r": R[t], "h": H_tilda[t], "H": Hs[t + 1]}
        if r.reset_on == "outside":  # H̃ = R ⊙ tanh(A_h), A_h = X W_xh + b_h + H W_hh (+ b_hn)
            dR = dH_tilda * (P[t] if r.reset_partner else 1)  # (B, H)
            dA_h = dH_tilda * R[t] * _local_grad(r, acts, "h", A_h[t], {**values, "h": P[t]})
            _acc(r, g, "W_xh", X[t].T @ dA_h)
            _acc(r, g, "b_h", _bias(r, dA_h))
            dX[t] += dA_h @ p["W_xh"].T  # (B, D)
            _acc(r, g, "W_hh", H_used.T @ dA_h)
            if torch_form:
                _acc(r, g, "b_hn", _bias(r, dA_h))
            dH_prev = dH_prev + _back(r, dA_h, p["W_hh"])
        else:
            dA_h = dH_tilda * _local_grad(r, acts, "h", A_h[t], values)  # (B, H): H̃ = tanh(A_h)
            reset_x = not torch_form and r.reset_on == "x"  # A_h = R ⊙ (X W_xh) + ..., wrongly
            reset_all = torch_form and r.reset_on == "all"  # A_h = R ⊙ (X W_xh + b_h + ...), wrongly
            dXW = dA_h * R[t] if reset_x or reset_all else dA_h  # (B, H): d(X_t W_xh)
            _acc(r, g, "W_xh", X[t].T @ dXW)
            _acc(r, g, "b_h", _bias(r, dXW if reset_all else dA_h))
            dX[t] += dXW @ p["W_xh"].T  # (B, D)
            if torch_form:  # A_h = X W_xh + b_h + R ⊙ (H_{t-1} W_hh + b_hn)
                dR = dA_h * (P[t] if r.reset_partner else 1)  # (B, H)
                dP = dA_h * R[t]  # (B, H)
                _acc(r, g, "W_hh", H_used.T @ dP)
                _acc(r, g, "b_hn", _bias(r, dP))
                dH_prev = dH_prev + _back(r, dP, p["W_hh"])
            elif reset_x:  # A_h = R ⊙ (X W_xh) + H_{t-1} W_hh + b_h
                dR = dA_h * (P[t] if r.reset_partner else 1)  # (B, H)
                _acc(r, g, "W_hh", H_used.T @ dA_h)
                dH_prev = dH_prev + _back(r, dA_h, p["W_hh"])
            else:  # A_h = X W_xh + (R ⊙ H_{t-1}) W_hh + b_h
                dRH = dA_h @ p["W_hh"].T  # (B, H)
                _acc(r, g, "W_hh", (R[t] * H_used).T @ dA_h)
                dR = dRH * (H_prev if r.reset_partner else 1)  # (B, H)
                dH_prev = dH_prev + dRH * R[t]
        dR = dR + dU["r"]  # (B, H): R in H_t's update too, wrongly
        for gate, _ in (r.outside if r.outside_back else ()):  # a term added after the activation:
            values[gate] = acts[gate].f({"z": A_z, "r": A_r}[gate][t])  # (B, H)   not act(A)
        dvalue = {"z": dZ, "r": dR}  # (B, H) each
        dA = {"z": dZ * _local_grad(r, acts, "z", A_z[t], values),
              "r": dR * _local_grad(r, acts, "r", A_r[t], values)}
        for gate, da in dA.items():
            da_x, da_h, da_b = _gate_line_back(r, gate, da, dvalue[gate])  # (B, H) each
            _acc(r, g, f"W_x{gate}", X[t].T @ da_x)
            _acc(r, g, f"W_h{gate}", H_used.T @ da_h)
            _acc(r, g, f"b_{gate}", _bias(r, da_b))
            if f"b_{gate}~in" in p:  # the bias's part inside the activation
                _acc(r, g, f"b_{gate}~in", _bias(r, da_x))
            dX[t] += da_x @ p[f"W_x{gate}"].T  # (B, D)
            dH_prev = dH_prev + _back(r, da_h, p[f"W_h{gate}"])  # into H_{t-1}, through Z and R
        dH_next = 0 * dH_prev if _cut(r, t) else dH_prev
        if true_0:  # step t read H_0, not H_{t-1}: its gradient goes there
            dH0, dH_next = dH0 + dH_next, 0 * dH_next
    if true_0:
        dH_next = dH0
    dstate0 = {"carried": (dH_next,), "zero": (0 * dH_next,), "unmultiplied": (dH,),
               "upstream": (dHs[0],), "plus-upstream": (dH_next + dHs[0],)}[r.dstate0]
    return g, dX, dstate0


CELLS = {"rnn": (rnn_forward, rnn_backward), "irnn": (irnn_forward, irnn_backward),
         "lstm": (lstm_forward, lstm_backward), "gru": (gru_forward, gru_backward)}


# ---------------------------------------------------------------------- output layer


def head_forward(p: dict, Hs: np.ndarray) -> np.ndarray:
    """Y_t = H_t W_hq + b_q for every step."""
    return Hs @ p["W_hq"] + p["b_q"]  # (T, B, V)


def head_backward(p: dict, dY: np.ndarray, Hs_all: np.ndarray, r: Rules = SPEC):
    """dW_hq = Σ_t H_tᵀ dY_t,  db_q = Σ dY_t,  dH_t = dY_t W_hqᵀ. ``Hs_all`` holds H_0..H_T."""
    H_used = Hs_all[1:] if r.head_state == "same" else Hs_all[:-1]  # (T, B, H)
    g = {"W_hq": np.zeros_like(p["W_hq"]), "b_q": np.zeros_like(p["b_q"])}
    first = r.first_step if r.first_step_head else 0  # a loop stopped early skips its outputs
    for t in reversed(range(first, len(dY) - r.skip_last)):  # (and one started late)
        _acc(r, g, "W_hq", H_used[t].T @ dY[t])
        _acc(r, g, "b_q", dY[t].sum(0))
    return g, dY @ p["W_hq"].T  # (T, B, H)


def log_softmax_forward(Y: np.ndarray) -> np.ndarray:
    """PyTorch's tutorial's outputs: log softmax(Y_t) over the V classes (nn.LogSoftmax(dim=1))."""
    Z = Y - Y.max(-1, keepdims=True)  # (..., V)
    return Z - np.log(np.exp(Z).sum(-1, keepdims=True))  # (..., V)


def log_softmax_backward(dOut: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dY = dOut - softmax(Y) Σ_v dOut: the Jacobian of log softmax, softmax = exp(out)."""
    return dOut - np.exp(out) * dOut.sum(-1, keepdims=True)  # (..., V)


def softmax(Y: np.ndarray) -> np.ndarray:
    e = np.exp(Y - Y.max(-1, keepdims=True))  # (..., V)
    return e / e.sum(-1, keepdims=True)


def softmax_loss(Y: np.ndarray, targets: np.ndarray, r: Rules = SPEC, ids: np.ndarray | None = None):
    """min-char-rnn's loss L = Σ_t -log softmax(Y_t)[target_t] and dL/dY = p - onehot.
    ``ids`` (T, B): the inputs, where r.softmax_at "inputs" puts the -1, wrongly."""
    P = softmax(Y)  # (T, B, V)
    T, B = targets.shape
    read = targets if r.loss_at == "targets" else ids  # (T, B): the ids the loss reads
    picked = np.take_along_axis(P, read[..., None], -1)[..., 0]  # (T, B)
    loss = float(-np.log(picked).sum())
    dY = P.copy()  # (T, B, V)
    at = targets if r.softmax_at == "targets" else ids  # (T, B)
    if r.softmax_minus_one:
        np.put_along_axis(dY, at[..., None], np.take_along_axis(dY, at[..., None], -1) - 1, -1)
    if r.loss == "mean-both":
        return loss / T, dY / T
    return (loss / T if r.loss == "mean" else loss), dY


# ------------------------------------------------------------------------- one pass


class SpecResult(NamedTuple):
    Hs: np.ndarray  # (T, B, H) hidden outputs
    Y: np.ndarray | None  # (T, B, V) output layer, when there is one (log-probabilities
    #                        for the "logsoftmax" head)
    loss: float | None  # softmax head only
    state: tuple  # final state, (B, H) each
    grads: dict  # every parameter (rnnlab names), the output layer's included
    dX: np.ndarray  # (T, B, D)
    dstate0: tuple  # (B, H) each
    Cs: np.ndarray | None = None  # (T, B, H) lstm: the cell state after every step
    P: np.ndarray | None = None  # (T, B, H) what a cell's own prediction reads (H_t: the
    #                              state the cell made, whatever the loop collects)
    norm: str = "classes"  # the prediction's softmax over "classes", "all" or "batch"; "shift-
    #                        classes": shifted by each column's max, summed over the whole array


def predictions(res: SpecResult, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A cell's own prediction, softmax(P_t Wᵀ + b) normalised as ``res.norm`` says:
    W (V, H), b (V,) -> (T, B, V)."""
    Z = res.P @ W.T + b  # (T, B, V)
    axes = {"classes": (-1,), "batch": (1,), "all": (1, 2), "shift-classes": (1, 2)}[res.norm]
    shift = (-1,) if res.norm == "shift-classes" else axes  # the max each exp is shifted by
    E = np.exp(Z - Z.max(axis=shift, keepdims=True))  # (T, B, V)
    return E / E.sum(axis=axes, keepdims=True)


def run(cell: str, params: dict, X: np.ndarray, state0: tuple, *, head: str | None = None,
        dOut: np.ndarray | None = None, dState: tuple | None = None,
        targets: np.ndarray | None = None, rules: Rules = SPEC,
        split: dict | None = None) -> SpecResult:
    """Forward and backward of one layer (and its output layer), under ``rules``.

    head None: the outputs are H_t and the loss is L = Σ H_t ⊙ dOut_t + Σ state_T ⊙ dState
    (random upstream gradients: no symmetry can hide a wrong term). head "linear": the
    outputs are Y_t = H_t W_hq + b_q, L = Σ Y_t ⊙ dOut_t + Σ state_T ⊙ dState. head
    "softmax": L = Σ_t -log softmax(Y_t)[targets_t], min-char-rnn's loss. head
    "logsoftmax": the outputs are log softmax(Y_t) (PyTorch's char-RNN tutorial), L as for
    "linear". ``rules.head_input`` "prev" makes Y_t read H_{t-1} (H_0 for the first step).
    ``split``: the "hh" half of each bias the subject keeps in two arrays (torch.nn's).
    """
    forward, backward = CELLS[cell]
    if rules.inputs_from == "targets":  # each step's one-hot built from its target
        X = np.eye(X.shape[-1])[targets]  # (T, B, V)
    reparam = rules.reparam
    if reparam is not None and hasattr(reparam, "bind"):
        reparam = reparam.bind(split or {})
    p, s0 = (params, state0) if reparam is None else reparam.apply(params, state0)
    Hs, state, cache = forward(p, X, s0, rules)
    Y = loss = None
    if dState is None or not rules.final_state_grad:  # a detached final state passes nothing back
        dState = tuple(np.zeros_like(s) for s in state)
    dS0_returned = None  # the initial state's own gradient, when it is the state returned
    if rules.final_state == "swapped":  # (C_T, H_T) returned: the gradient given for the first
        state, dState = state[::-1], dState[::-1]  # reaches C_T, the second's H_T
    if rules.final_state == "tanh-c":  # (H_T, tanh(C_T)) returned: dC_T = dc_n ⊙ tanh'(C_T)
        state = (state[0], rules.cell.f(state[1]))
        dState = (dState[0], dState[1] * rules.cell.grad(cache.Cs[-1], state[1]))
    extra = {}  # what the backward is given beside: the upstream of a state returned early
    if rules.final_state == "candidate-c":  # (H_T, C̃_T) returned: dc_n reaches C̃_T
        state = (state[0], cache.C_tilda[-1])
        extra["dCand_last"], dState = dState[1], (dState[0], np.zeros_like(dState[1]))
    early = {"first": 1, "previous": len(X) - 1}.get(rules.final_state)  # H_k returned
    dFirst = None  # the gradient of the state after step k, when that is the one returned
    if early == 0:  # one step early on one step: the initial state
        state, dS0_returned = s0, dState
        dState = tuple(np.zeros_like(s) for s in state)
    elif early is not None:
        state = (cache.Hs[early], cache.Cs[early]) if cell == "lstm" else (cache.Hs[early],)
        dFirst, dState = dState, tuple(np.zeros_like(s) for s in state)
    if rules.final_state == "initial":  # returned unchanged: H_T is returned nowhere
        state, dS0_returned = s0, dState
        dState = tuple(np.zeros_like(s) for s in state)
    head_grads = {}
    late = rules.head_input == "prev"
    dH0_head = 0  # what a late output layer (or output) sends straight to H_0
    if head is None and rules.head_input == "prev-forward-only":  # H_0 .. H_{T-1} returned,
        Hs, dHs = cache.Hs[:-1], dOut  # the backward as if they were H_1 .. H_T
    elif head is None and late:  # the outputs collected are H_0 .. H_{T-1}, one step late
        Hs = cache.Hs[:-1]  # (T, B, H)
        dHs = np.concatenate([dOut[1:], np.zeros_like(dOut[:1])])  # (T, B, H): to H_1..H_T
        dH0_head = dOut[0]  # (B, H)
    elif head is None:
        dHs = dOut
    else:
        read = cache.Hs[:-1] if late else Hs  # (T, B, H): H_{t-1} or H_t
        Y = head_forward(p, read)  # (T, B, V)
        dY = dOut
        if head == "softmax":
            loss, dY = softmax_loss(Y, targets, rules, ids=X.argmax(-1))
        if head == "logsoftmax":
            Y = log_softmax_forward(Y)  # (T, B, V): what the subject returns
            dY = log_softmax_backward(dOut, Y)  # (T, B, V)
        if late:  # Y_t reads H_{t-1}: its gradient reaches H_0 .. H_{T-1}
            head_grads, dRead = head_backward(p, dY, np.concatenate([read[:1], read]), rules)
            dHs = np.concatenate([dRead[1:], np.zeros_like(dRead[:1])])  # (T, B, H): to H_1..H_T
            dH0_head = dRead[0]  # (B, H)
        else:  # Y_t reads the outputs collected (H_t; the candidates, wrongly): dW_hq too
            head_grads, dHs = head_backward(p, dY, np.concatenate([cache.Hs[:1], Hs]), rules)
    if rules.last_twice:  # H_T's upstream gradient counted twice (the cell state's is apart)
        dHs = np.concatenate([dHs[:-1], 2 * dHs[-1:]])  # (T, B, H)
        dState = (2 * dState[0], *dState[1:])
    if rules.upstream == "last":  # only the last output's gradient enters BPTT
        dHs = np.concatenate([np.zeros_like(dHs[:-1]), dHs[-1:]])  # (T, B, H)
    if not rules.output_grad:  # outputs detached before they were collected: no gradient
        dHs = np.zeros_like(dHs)  # (T, B, H)   reaches a step through its own output
    if dFirst is not None:  # H_k (and C_k) returned: their upstream gradients reach step k
        dHs = dHs.copy()  # (T, B, H)
        dHs[early - 1] += dFirst[0]
        if cell == "lstm":
            extra["dC_at"] = (early - 1, dFirst[1])
    given = reparam is not None and not rules.pullback and rules.backward_weights == "given"
    grads, dX, dstate0 = backward(params if given else p, dHs, dState, cache, rules, **extra)
    if rules.inputs_from == "targets":  # the inputs given are never read
        dX = np.zeros_like(dX)  # (T, B, V)
    if late and rules.output_grad:
        dstate0 = (dstate0[0] + dH0_head, *dstate0[1:])
    if dS0_returned is not None:
        dstate0 = tuple(d + e for d, e in zip(dstate0, dS0_returned))
    grads.update(head_grads)
    if rules.dW_concat == "xh":  # dW = dZ [X_t; H_{t-1}]ᵀ: rows [dW_x; dW_h] read as [dW_h; dW_x]
        for g in GATES[cell]:
            dWt = np.concatenate([grads[f"W_x{g}"], grads[f"W_h{g}"]])  # (D + H, H)
            H_ = grads[f"W_h{g}"].shape[0]
            grads[f"W_h{g}"], grads[f"W_x{g}"] = dWt[:H_], dWt[H_:]  # (H, H), (D, H)
    if rules.zero_grad:  # never accumulated: the zeros it started from
        grads = {k: (0 * v if _one_of(rules.zero_grad, k) else v) for k, v in grads.items()}
    if rules.dW_h_transposed:  # Σ dZ_tᵀ H_{t-1}: each recurrent weight's gradient transposed
        grads = {k: (v.T if k.startswith("W_h") and k != "W_hq" else v) for k, v in grads.items()}
    if rules.param_grads != "sum":  # dW /= B: a mean, the loss a sum (one array's, or all)
        mean = rules.param_grads.removeprefix("mean").removeprefix("-")  # "", "W_x" or "W_h"
        grads = {k: (v / X.shape[1] if not mean or _one_of(mean, k) else v)
                 for k, v in grads.items()}
    if reparam is not None and rules.pullback:
        grads, dstate0 = reparam.pullback(params, grads, dstate0)
    elif reparam is not None:  # the backward of the intended forward, at the mistaken
        grads = {k: grads.get(k, np.zeros_like(v)) for k, v in params.items()}  # forward's values
    Cs = cache.Cs[1:] if cell == "lstm" else None  # (T, B, H)
    P = {"H_prev": cache.Hs[:-1], "C": Cs}.get(rules.prediction, cache.Hs[1:])  # (T, B, H)
    norm = rules.prediction if rules.prediction in ("all", "batch", "shift-classes") else "classes"
    return SpecResult(Hs, Y, loss, state, grads, dX, dstate0, Cs, P, norm)
