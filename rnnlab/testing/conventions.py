"""How each convention lays out the spec's parameters: data, and a few pure functions.

The spec's parameters are rnnlab's per-gate arrays with d2l's names (row vectors:
``W_x<g>`` (D, H), ``W_h<g>`` (H, H), ``b_<g>`` (H,), and ``W_hq`` (H, V), ``b_q`` (V,) for an
output layer). A convention stores them differently: CS231n fuses the gates into
``Wx`` (D, 4H) in the order i, f, o, g; ``torch.nn`` stacks them transposed, ``weight_ih_l0``
(4H, D), in the order i, f, g, o, with two biases whose sum is the spec's; min-char-rnn
keeps column vectors, ``Wxh`` (H, V). Each subject array is a :class:`Block`: which spec
arrays it stacks, in which order, transposed or not. Equations for every convention are
in docs/verify.md.

    to_subject(layout, params, split)  -> the subject's arrays
    from_subject(layout, arrays)       -> (params, split)      a round trip is the identity
    grads_to_subject(layout, grads)    -> the subject's gradient arrays
    block_slices(block, shape)         -> (label, index) per gate block, for localisation
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_bool, check_choice, check_str
from ..errors import ConfigError
from .rules import GATES


@dataclass(frozen=True)
class Block:
    """One subject array: spec arrays stacked along the gate axis, in the subject's order.

    ``parts[k]`` is the spec's name of block k and ``labels[k]`` the subject's name for its
    gate ("g" for the lstm candidate in CS231n and torch.nn, "n" for torch's GRU candidate).
    A spec array (D, H) stacks along axis 1, as (D, G*H); ``transpose`` stores the stack
    transposed, (G*H, D), as torch.nn does; ``column`` stores a bias (H,) as (H, 1).
    ``shared[k]`` marks a spec bias split between two subject arrays (torch.nn's ``bias_ih``
    and ``bias_hh``): ``role`` "ih" holds b - s and "hh" holds s, for a split s.
    """

    parts: tuple
    labels: tuple
    transpose: bool = False
    column: bool = False
    shared: tuple = ()
    role: str | None = None

    @property
    def gate_axis(self) -> int:
        return 0 if (self.transpose or self.column) else -1


def fused(kind: str, order: str, cell: str, transpose: bool = False, column: bool = False,
          role: str | None = None, hn: bool = False) -> Block:
    """A block of gate arrays ``kind`` ("W_x", "W_h" or "b_") in the subject's gate
    ``order`` (a string of labels; "g" is the lstm candidate c, "n" the gru candidate h).

    ``role`` ("ih"/"hh") marks torch.nn's two biases; ``hn`` puts the torch-form GRU's
    b_hn in the candidate's slot of ``bias_hh``."""
    check_choice("kind", kind, ("W_x", "W_h", "b_"))
    check_str("order", order, nonempty=True)
    check_choice("cell", cell, tuple(GATES))
    for name, flag in (("transpose", transpose), ("column", column), ("hn", hn)):
        check_bool(name, flag)
    if role is not None:
        check_choice("role", role, ("ih", "hh"))
    alias = {"g": "c"} if cell == "lstm" else {"n": "h"} if cell == "gru" else {}
    gates = tuple(alias.get(label, label) for label in order)
    if sorted(gates) != sorted(GATES[cell]):
        raise ConfigError(f"gate order {order!r} does not name every {cell} gate {GATES[cell]}")
    parts = tuple(f"{kind}{g}" for g in gates)
    shared = ()
    if role is not None:
        shared = tuple(not (cell == "gru" and g == "h" and hn) for g in gates)
        if role == "hh" and hn:
            parts = tuple("b_hn" if g == "h" else p for g, p in zip(gates, parts))
    return Block(parts, tuple(order), transpose, column, shared, role)


def single(name: str, transpose: bool = False, column: bool = False) -> Block:
    """A subject array that is one spec array (an output layer, an unfused gate)."""
    check_str("name", name, nonempty=True)
    check_bool("transpose", transpose)
    check_bool("column", column)
    return Block((name,), ("",), transpose, column)


# ------------------------------------------------------------------------ the layouts


def cs231n_layout(cell: str) -> dict:
    """CS231n assignment 3: ``Wx`` (D, G*H), ``Wh`` (H, G*H), ``b`` (G*H,); lstm order i, f, o, g."""
    order = {"rnn": "h", "lstm": "ifog"}[cell]
    return {"Wx": fused("W_x", order, cell), "Wh": fused("W_h", order, cell),
            "b": fused("b_", order, cell)}


def torch_nn_layout(cell: str, gru_form: str = "torch") -> dict:
    """``torch.nn.RNN/LSTM/GRU``: ``weight_ih_l0`` (G*H, D), ``weight_hh_l0`` (G*H, H),
    ``bias_ih_l0`` + ``bias_hh_l0`` (G*H,); lstm order i, f, g, o; gru r, z, n."""
    order = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}[cell]
    hn = cell == "gru"
    return {"weight_ih_l0": fused("W_x", order, cell, transpose=True),
            "weight_hh_l0": fused("W_h", order, cell, transpose=True),
            "bias_ih_l0": fused("b_", order, cell, role="ih", hn=hn),
            "bias_hh_l0": fused("b_", order, cell, role="hh", hn=hn)}


def linear_gates_layout(cell: str, pairs: dict, biased: dict, form: str = "torch") -> dict:
    """One ``nn.Linear`` per gate and source (a GRU's ``x2r``, ``h2r``, ...): ``pairs`` is
    {spec gate: (input-side layer, hidden-side layer)}, ``biased`` {layer: has a bias}.
    Each weight is one spec array transposed (nn.Linear stores (out, in)); a gate's two
    biases share its spec bias, b = b_x + b_h (a random split drawn), and one bias alone
    holds all of it; in torch.nn's GRU ``form`` the candidate's input-side bias is b_h and
    its hidden-side one b_hn, inside the reset product."""
    check_choice("cell", cell, ("lstm", "gru"))
    check_choice("form", form, ("torch", "d2l"))
    out = {}
    for g, (x, h) in pairs.items():
        out[f"{x}.weight"] = single(f"W_x{g}", transpose=True)
        out[f"{h}.weight"] = single(f"W_h{g}", transpose=True)
        if cell == "gru" and g == "h" and form == "torch":
            out[f"{x}.bias"], out[f"{h}.bias"] = single("b_h"), single("b_hn")
        elif biased[x] and biased[h]:
            out[f"{x}.bias"] = Block((f"b_{g}",), ("",), shared=(True,), role="ih")
            out[f"{h}.bias"] = Block((f"b_{g}",), ("",), shared=(True,), role="hh")
        elif biased[x] or biased[h]:
            out[f"{x if biased[x] else h}.bias"] = single(f"b_{g}")
        else:
            raise ConfigError(f"gate {g}: neither {x} nor {h} has a bias; the spec adds b_{g}")
    return out


def parameter_gates_layout(cell: str, weights: dict, biases: dict, transpose: bool,
                           form: str = "torch") -> dict:
    """One ``nn.Parameter`` per gate and source, as a module written from torch's equations
    holds them (``W_ii``, ``W_hi``, ``b_ii``, ``b_hi``, ...): ``weights`` is {spec gate:
    (input-side name, hidden-side name)}, ``biases`` {spec gate: {"x": name, "h": name}},
    one side or both. Each weight is one spec array, ``transpose``d where it is stored
    (H, D) as torch's are; the biases are laid out as ``linear_gates_layout``'s."""
    check_choice("cell", cell, ("lstm", "gru"))
    check_choice("form", form, ("torch", "d2l"))
    out = {}
    for g, (x, h) in weights.items():
        out[x] = single(f"W_x{g}", transpose=transpose)
        out[h] = single(f"W_h{g}", transpose=transpose)
        b = biases.get(g, {})
        if cell == "gru" and g == "h" and form == "torch":
            out[b["x"]], out[b["h"]] = single("b_h"), single("b_hn")
        elif len(b) == 2:
            out[b["x"]] = Block((f"b_{g}",), ("",), shared=(True,), role="ih")
            out[b["h"]] = Block((f"b_{g}",), ("",), shared=(True,), role="hh")
        elif len(b) == 1:
            out[next(iter(b.values()))] = single(f"b_{g}")
        else:
            raise ConfigError(f"gate {g}: no bias of its own; the spec adds b_{g}")
    return out


D2L_ORDER = {"rnn": ("W_xh", "W_hh", "b_h"),
             "lstm": ("W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o",
                      "W_xc", "W_hc", "b_c"),
             "gru": ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h")}


def d2l_layout(cell: str) -> dict:
    """d2l's ``get_params`` list: every gate's arrays as they are, then ``W_hq``, ``b_q``."""
    return {name: single(name) for name in (*D2L_ORDER[cell], "W_hq", "b_q")}


def min_char_layout() -> dict:
    """min-char-rnn's column vectors: h = tanh(Wxh x + Whh h + bh), y = Why h + by."""
    return {"Wxh": single("W_xh", transpose=True), "Whh": single("W_hh", transpose=True),
            "Why": single("W_hq", transpose=True), "bh": single("b_h", column=True),
            "by": single("b_q", column=True)}


def rnnlab_layout(cell: str, gru_form: str = "d2l") -> dict:
    """rnnlab's own per-gate names (the protocol's default): the identity mapping."""
    names = [f"{k}{g}" for g in GATES[cell] for k in ("W_x", "W_h", "b_")]
    if cell == "gru" and gru_form == "torch":
        names.append("b_hn")
    return {n: single(n) for n in names}


def gate_order(layout: dict) -> tuple | None:
    """((spec gate, subject label), ...) in the subject's block order, read off its first
    fused weight; None when the gates are separate arrays named by the spec's letters."""
    for block in layout.values():
        if len(block.parts) > 1:
            return tuple((p[len("W_x"):] if p.startswith("W_") else p[len("b_"):], lab)
                         for p, lab in zip(block.parts, block.labels))
    return None


# ---------------------------------------------------------------- pure functions


def _stack(block: Block, arrays: list) -> np.ndarray:
    a = np.concatenate([np.atleast_1d(x) for x in arrays], axis=-1)  # (..., G*H)
    if block.column:
        return a.reshape(-1, 1)  # (G*H, 1)
    return np.ascontiguousarray(a.T) if block.transpose else a


def _unstack(block: Block, a: np.ndarray) -> list:
    a = np.asarray(a)
    if block.column:
        a = a.reshape(-1)
    elif block.transpose:
        a = a.T
    return np.split(a, len(block.parts), axis=-1)


def to_subject(layout: dict, params: dict, split: dict | None = None) -> dict:
    """The spec's parameters in the subject's arrays. ``split[name]`` is the part of a
    shared bias held by the "hh" array (zero when not given)."""
    split = split or {}
    out = {}
    for name, block in layout.items():
        arrays = []
        for k, part in enumerate(block.parts):
            v = params[part]
            if block.shared and block.shared[k]:
                s = split.get(part, np.zeros_like(v))
                v = v - s if block.role == "ih" else s
            arrays.append(v)
        out[name] = _stack(block, arrays)
    return out


def from_subject(layout: dict, arrays: dict) -> tuple[dict, dict]:
    """Inverse of :func:`to_subject`: (params, split). A shared bias is the sum of its two
    halves; the "hh" half is returned as the split."""
    params, split, ih = {}, {}, {}
    for name, block in layout.items():
        for k, (part, v) in enumerate(zip(block.parts, _unstack(block, arrays[name]))):
            if block.shared and block.shared[k]:
                (ih if block.role == "ih" else split)[part] = v.copy()
            else:
                params[part] = v.copy()
    for part in ih:
        params[part] = ih[part] + split[part]
    return params, split


def grads_to_subject(layout: dict, grads: dict) -> dict:
    """The spec's gradients in the subject's arrays: each half of a shared bias b = b_ih + b_hh
    gets all of db (∂b/∂b_ih = ∂b/∂b_hh = 1), unless ``grads`` has that half's own,
    ``"<part>@<role>"`` (a mistake that leaves the half out: its gradient is zero)."""
    out = {}
    for name, block in layout.items():
        out[name] = _stack(block, [grads.get(f"{part}@{block.role}", grads[part])
                                   if block.shared and block.shared[k] else grads[part]
                                   for k, part in enumerate(block.parts)])
    return out


def block_slices(block: Block, shape: tuple) -> list:
    """(label, index) of every gate block of an array of ``shape``; one entry for a single array."""
    if len(block.parts) == 1:
        return [(block.labels[0], tuple(slice(None) for _ in shape))]
    axis = block.gate_axis % len(shape)
    n = shape[axis] // len(block.parts)
    out = []
    for k, label in enumerate(block.labels):
        idx = [slice(None)] * len(shape)
        idx[axis] = slice(k * n, (k + 1) * n)
        out.append((label, tuple(idx)))
    return out


def block_range(block: Block, k: int, n: int) -> str:
    """Human range of gate block k of width n: "H:2H" style, on the gate axis."""
    def h(m):
        return "0" if m == 0 else ("H" if m == 1 else f"{m}H")
    where = "rows" if block.gate_axis == 0 else "columns"
    return f"{where} {h(k)}:{h(k + 1)}"
