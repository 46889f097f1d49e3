"""The forward mistakes that re-read the weights or the state, f(P(θ)): gate blocks in another
order, a bias left out or added twice, the initial state replaced, one gate's line reading
another's weights... Each is a :class:`rules.Reparam`: the spec's forward runs on P(θ), and
its gradients are pulled back through P (``mistakes.py`` names them; ``spec.run`` applies
them)."""

from __future__ import annotations

import numpy as np

from .rules import GATES, Reparam


class GatePermutation(Reparam):
    """Gate g computed with the weights of gate perm[g]: fused blocks read in the wrong order."""

    def __init__(self, cell: str, perm: tuple):
        self.gates, self.perm = GATES[cell], perm

    def _names(self, g):
        return (f"W_x{g}", f"W_h{g}", f"b_{g}")

    def apply(self, params, state):
        p = dict(params)
        for g, src in zip(self.gates, self.perm):
            for a, b in zip(self._names(g), self._names(src)):
                p[a] = params[b]
        return p, state

    def pullback(self, params, grads, dstate):
        out = dict(grads)
        for g, src in zip(self.gates, self.perm):
            for a, b in zip(self._names(g), self._names(src)):
                out[b] = grads[a]
        return out, dstate


class NegateGate(Reparam):
    """A gate used as its complement, 1 - G where G belongs: the spec with 1 - G = σ(-A_g),
    the gate's weights negated (the GRU's update: H_t = (1 - Z) ⊙ H_{t-1} + Z ⊙ H̃ where
    Z and 1 - Z belong; its reset: (1 - R) ⊙ (...) in the candidate)."""

    def __init__(self, gate: str):
        self.names = (f"W_x{gate}", f"W_h{gate}", f"b_{gate}")

    def apply(self, params, state):
        return {k: (-v if k in self.names else v) for k, v in params.items()}, state

    def pullback(self, params, grads, dstate):
        return {k: (-v if k in self.names else v) for k, v in grads.items()}, dstate


class ResetAfter(Reparam):
    """The torch form's candidate, tanh(X W_xh + b_h + R ⊙ (H W_hh)), on d2l-form weights
    (no b_hn: it is zero)."""

    def apply(self, params, state):
        return {**params, "b_hn": np.zeros_like(params["b_h"])}, state

    def pullback(self, params, grads, dstate):
        return {k: v for k, v in grads.items() if k != "b_hn"}, dstate


class ResetBefore(Reparam):
    """The d2l form's candidate, tanh(X W_xh + b_h + (R ⊙ H) W_hh + b_hn), on torch-form
    weights: b_hn then sits outside R, beside b_h."""

    def apply(self, params, state):
        p = {k: v for k, v in params.items() if k != "b_hn"}
        p["b_h"] = params["b_h"] + params["b_hn"]
        return p, state

    def pullback(self, params, grads, dstate):
        return {**grads, "b_hn": grads["b_h"].copy()}, dstate


class BhnOutside(Reparam):
    """tanh(X W_xh + b_h + R ⊙ (H W_hh) + b_hn): the torch form with b_hn outside R, which is
    the torch form with b_hn = 0 and b_h + b_hn for b_h (both then get b_h's gradient)."""

    def apply(self, params, state):
        return {**params, "b_h": params["b_h"] + params["b_hn"],
                "b_hn": np.zeros_like(params["b_hn"])}, state

    def pullback(self, params, grads, dstate):
        return {**grads, "b_hn": grads["b_h"].copy()}, dstate


class IgnoreState(Reparam):
    """The initial state given is ignored: every window starts from zeros."""

    def apply(self, params, state):
        return params, tuple(np.zeros_like(s) for s in state)

    def pullback(self, params, grads, dstate):
        return grads, tuple(np.zeros_like(d) for d in dstate)


class DropBias(Reparam):
    """The gate biases never added: the spec with b = 0 (whose gradients are then zero)."""

    def apply(self, params, state):
        return {k: (np.zeros_like(v) if _is_gate_bias(k) else v) for k, v in params.items()}, state

    def pullback(self, params, grads, dstate):
        return {k: (np.zeros_like(v) if _is_gate_bias(k) else v) for k, v in grads.items()}, dstate


class DoubleBias(Reparam):
    """The gate biases added twice (``+ b`` in two places): the spec with 2b."""

    def apply(self, params, state):
        return {k: (2 * v if _is_gate_bias(k) else v) for k, v in params.items()}, state

    def pullback(self, params, grads, dstate):
        return {k: (2 * v if _is_gate_bias(k) else v) for k, v in grads.items()}, dstate


class GateReads(Reparam):
    """Gate g computed from gate s's weights (a line copied and not fully edited), while
    gate s keeps its own: g's weights are then never used and s's serve twice. With
    ``kinds``, one of its arrays alone (its W_h, W_x or bias) read from gate s."""

    def __init__(self, cell: str, gate: str, source: str, kinds=("W_x", "W_h", "b_")):
        self.gate, self.source, self.kinds = gate, source, kinds

    def _pairs(self):
        return [(f"{k}{self.gate}", f"{k}{self.source}") for k in self.kinds]

    def apply(self, params, state):
        p = dict(params)
        for own, other in self._pairs():
            p[own] = params[other]
        return p, state

    def pullback(self, params, grads, dstate):
        out = dict(grads)
        for own, other in self._pairs():
            out[other] = grads[other] + grads[own]  # s's weights feed both gates
            out[own] = np.zeros_like(grads[own])  # g's own weights feed nothing
        return out, dstate


class DropGateArray(Reparam):
    """One array of a gate's never used: its bias by default (the line written without
    ``+ b_<gate>``), or ``name`` (its recurrent weight W_h<gate>: the term H_{t-1} W_h<gate>
    never added). The spec with that array 0, whose gradient is then zero."""

    def __init__(self, gate: str, name: str | None = None):
        self.name = name or f"b_{gate}"

    def apply(self, params, state):
        return {**params, self.name: np.zeros_like(params[self.name])}, state

    def pullback(self, params, grads, dstate):
        return {**grads, self.name: np.zeros_like(grads[self.name])}, dstate


class CellStart(Reparam):
    """The lstm's initial cell state C_0 replaced: by zeros (the c0 given ignored) or by the
    initial hidden state H_0 (prev_c = h0)."""

    def __init__(self, source: str):
        self.source = source  # "zeros" | "h0"

    def apply(self, params, state):
        H0, C0 = state
        return params, (H0, np.zeros_like(C0) if self.source == "zeros" else H0)

    def pullback(self, params, grads, dstate):
        dH0, dC0 = dstate
        return grads, ((dH0 + dC0) if self.source == "h0" else dH0, np.zeros_like(dC0))


class TransposeRecurrent(Reparam):
    """H_{t-1} W_hᵀ for every recurrent weight, or for one gate's (``gate``): the (H, H)
    matrices used transposed (a square matrix multiplies either way, so no shape error
    shows it)."""

    def __init__(self, gate: str | None = None):
        self.gate = gate

    def _recurrent(self, name: str) -> bool:
        if self.gate is not None:
            return name == f"W_h{self.gate}"
        return name.startswith("W_h") and name != "W_hq"

    def apply(self, params, state):
        return {k: (v.T if self._recurrent(k) else v) for k, v in params.items()}, state

    def pullback(self, params, grads, dstate):
        return {k: (v.T if self._recurrent(k) else v) for k, v in grads.items()}, dstate


class DropOutputBias(Reparam):
    """The output layer's bias b_q never added: Y_t = H_t W_hq."""

    def apply(self, params, state):
        return {**params, "b_q": np.zeros_like(params["b_q"])}, state

    def pullback(self, params, grads, dstate):
        return {**grads, "b_q": np.zeros_like(grads["b_q"])}, dstate


def _half_grad(out: dict, split: dict, name: str, side: str, value: np.ndarray) -> None:
    """Set the gradient of one side's half of bias ``name``: its own ``"<name>@<side>"`` where
    the module keeps the bias in two arrays (``split`` has it), else the whole bias's, which
    is the input side's (a gate whose hidden-side layer has no bias): none for "hh"."""
    if name in split:
        out[f"{name}@{side}"] = value
    elif side == "ih":
        out[name] = value


def _is_gate_bias(name: str) -> bool:
    return name.startswith("b_") and name != "b_q"


class StateSwapped(Reparam):
    """The lstm's initial state read as (C_0, H_0) where it is (H_0, C_0): h, c = c0, h0."""

    def apply(self, params, state):
        H0, C0 = state
        return params, (C0, H0)

    def pullback(self, params, grads, dstate):
        dH0, dC0 = dstate  # the spec's run started from (C_0, H_0): its dH_0 is C_0's
        return grads, (dC0, dH0)


class StackedOrder(Reparam):
    """deeplearning.ai's stacked weights, Wᵀ = [W_h<g>; W_x<g>] (H + D, H) for concat =
    [H_{t-1}; X_t], used on [X_t; H_{t-1}]: the first D rows multiply X_t, the last H the
    state. The spec with W_x<g> = Wᵀ[:D], W_h<g> = Wᵀ[D:]."""

    def __init__(self, cell: str):
        self.gates = GATES[cell]

    def apply(self, params, state):
        p = dict(params)
        for g in self.gates:
            Wt = np.concatenate([params[f"W_h{g}"], params[f"W_x{g}"]])  # (H + D, H)
            D = params[f"W_x{g}"].shape[0]
            p[f"W_x{g}"], p[f"W_h{g}"] = Wt[:D], Wt[D:]  # (D, H), (H, H)
        return p, state

    def pullback(self, params, grads, dstate):
        out = dict(grads)
        for g in self.gates:
            dWt = np.concatenate([grads[f"W_x{g}"], grads[f"W_h{g}"]])  # (D + H, H): rows as read
            H = params[f"W_h{g}"].shape[0]
            out[f"W_h{g}"], out[f"W_x{g}"] = dWt[:H], dWt[H:]  # (H, H), (D, H)
        return out, dstate


class DropBiasHalf(Reparam):
    """One side of the gate biases never added, where the module keeps each in two arrays
    (torch.nn's ``bias_ih`` + ``bias_hh``, or an nn.Linear per gate and source): ``side``
    "hh" leaves out the hidden-side halves, "ih" the input-side ones; ``gates`` those of
    these gates alone (every gate by default). The spec's b_<g> = b_ih + b_hh becomes the
    half kept, so ``bind(split)`` gives the halves (each shared bias's "hh" part); the half
    left out gets no gradient (``"b_<g>@<side>"``, read by ``conventions.grads_to_subject``).
    torch.nn's GRU keeps its candidate's two biases apart (b_h and b_hn, b_hn hidden-side)."""

    def __init__(self, side: str, gates: tuple | None = None, split: dict | None = None):
        self.side, self.gates, self.split = side, gates, split or {}

    def bind(self, split: dict) -> DropBiasHalf:
        return DropBiasHalf(self.side, self.gates, split)

    def _shared(self, params) -> list:
        """The gate biases kept in two arrays: each but the torch GRU form's candidate (whose
        halves are b_h and b_hn); an undrawn split is zero (d2l's GRU candidate)."""
        return [k for k in params if _is_gate_bias(k) and k != "b_hn"
                and not (k == "b_h" and "b_hn" in params)
                and (self.gates is None or k[2:] in self.gates)]

    def _apart(self, params) -> str | None:
        """The candidate bias of torch.nn's GRU form on the side left out, if this drops it."""
        if "b_hn" in params and (self.gates is None or "h" in self.gates):
            return "b_hn" if self.side == "hh" else "b_h"
        return None

    def apply(self, params, state):
        p = dict(params)
        for k in self._shared(params):  # the half kept: b - s (input side) or s (hidden side)
            s = self.split.get(k, np.zeros_like(params[k]))  # (H,)
            p[k] = params[k] - s if self.side == "hh" else s
        apart = self._apart(params)
        if apart is not None:
            p[apart] = np.zeros_like(params[apart])
        return p, state

    def pullback(self, params, grads, dstate):
        out = dict(grads)
        for k in self._shared(params):  # the half kept gets db, the half left out nothing
            _half_grad(out, self.split, k, self.side, np.zeros_like(grads[k]))
        apart = self._apart(params)
        if apart is not None:
            out[apart] = np.zeros_like(grads[apart])
        return out, dstate


class ShiftGateBias(Reparam):
    """A constant added to one gate's pre-activation in the forward (``+ 1.0`` in the forget
    gate's line: the forget-bias initialisation written into every step): the spec with
    b_<gate> + shift, whose gradient is b_<gate>'s own."""

    def __init__(self, gate: str, shift: float):
        self.name, self.shift = f"b_{gate}", shift

    def apply(self, params, state):
        return {**params, self.name: params[self.name] + self.shift}, state

    def pullback(self, params, grads, dstate):
        return grads, dstate


class GateReadsLayer(Reparam):
    """Gate g's line reading gate s's layer on one ``side`` where the module keeps each
    gate's bias in two arrays (an nn.Linear per gate and source: ``h_input(h)`` in the
    forget gate's line): g's weight on that side and its half of the bias are s's, the
    other side g's own. ``bind(split)`` gives the halves (each shared bias's "hh" part);
    g's own layer on that side gets no gradient, s's gets both gates'. With ``weights``
    False, the bias half alone is s's (``+ self.b_hf`` in the output gate's line), the
    weight g's own."""

    def __init__(self, gate: str, source: str, side: str, split: dict | None = None,
                 weights: bool = True):
        self.gate, self.source, self.side, self.split = gate, source, side, split or {}
        self.weights = weights

    def bind(self, split: dict) -> GateReadsLayer:
        return GateReadsLayer(self.gate, self.source, self.side, split, self.weights)

    def _halves(self, params, g: str) -> tuple:
        """(input-side, hidden-side) halves of gate g's bias."""
        s = self.split.get(f"b_{g}", np.zeros_like(params[f"b_{g}"]))  # (H,)
        return params[f"b_{g}"] - s, s

    def apply(self, params, state):
        g, s, W = self.gate, self.source, "W_h" if self.side == "hh" else "W_x"
        p = {**params, f"{W}{g}": params[f"{W}{s}"]} if self.weights else dict(params)
        own, other = self._halves(params, g), self._halves(params, s)
        k = 1 if self.side == "hh" else 0  # the half read from s's layer
        p[f"b_{g}"] = own[1 - k] + other[k]  # (H,)
        return p, state

    def pullback(self, params, grads, dstate):
        g, s, W = self.gate, self.source, "W_h" if self.side == "hh" else "W_x"
        out = dict(grads)
        if self.weights:
            out[f"{W}{s}"] = grads[f"{W}{s}"] + grads[f"{W}{g}"]  # s's layer serves both gates
            out[f"{W}{g}"] = np.zeros_like(grads[f"{W}{g}"])  # g's own is never used
        dg, ds = grads[f"b_{g}"], grads[f"b_{s}"]
        _half_grad(out, self.split, f"b_{g}", self.side, np.zeros_like(dg))  # g's: unused
        _half_grad(out, self.split, f"b_{s}", self.side, ds + dg)  # s's: both gates'
        return out, dstate


class InputHalfInside(Reparam):
    """Gate g's line closed after its input-side layer, act(x2f(x)) + h2f(h), in a module
    that keeps the gate's bias in two arrays: the input-side half inside the activation,
    the hidden-side half after it. The spec's ``b_<g>~in`` (inside, ``Rules.outside``) is
    the input-side half and b_<g> the hidden-side one; ``bind(split)`` gives the halves."""

    def __init__(self, gate: str, split: dict | None = None):
        self.gate, self.split = gate, split or {}

    def bind(self, split: dict) -> InputHalfInside:
        return InputHalfInside(self.gate, split)

    def apply(self, params, state):
        b = f"b_{self.gate}"
        s = self.split.get(b, np.zeros_like(params[b]))  # (H,): the hidden-side half
        return {**params, f"{b}~in": params[b] - s, b: s}, state

    def pullback(self, params, grads, dstate):
        b = f"b_{self.gate}"
        out = {k: v for k, v in grads.items() if k != f"{b}~in"}
        out[b], out[f"{b}@hh"] = grads[f"{b}~in"], grads[b]  # each half its own part's
        return out, dstate
