"""The catalogue's families of mistakes made in one gate or between two: gate blocks read
in another order, a line copied from another gate's and not fully edited, one gate's
local derivative or array wrong, a parenthesis closed early in one gate's line. Each
family writes one entry per gate (or pair), in the spec's letters (``mistakes.py`` joins
them to the hand-written entries)."""

from __future__ import annotations

import itertools

from .mistake_entry import (CANDIDATE, SIGMOID_1MS_GRAD, SIGMOID_NO_GRAD, SIGMOID_OF_X_GRAD,
                            SIGMOID_S_GRAD, SIGMOID_TANH_GRAD, UNUSED_ONE, UNUSED_ZERO, mistake)
from .reparams import (DropBiasHalf, DropGateArray, GatePermutation, GateReads, GateReadsLayer,
                       InputHalfInside, TransposeRecurrent)
from .rules import GATES, TANH

def _cycles_name(gates: tuple, perm: tuple) -> str:
    """A permutation as the gates it exchanges, in the spec's letters: ``o-c-swapped`` (o
    reads c's block and c reads o's), ``i-f-o-rotated`` (i reads f's, f o's, o i's). Unlike
    a gate string (``rzh``), it cannot be read as some library's own, correct, order."""
    source = dict(zip(gates, perm))  # gate -> the gate whose block it reads
    seen, parts = set(), []
    for g in gates:
        if g in seen or source[g] == g:
            continue
        cycle = [g]
        while source[cycle[-1]] != g:
            cycle.append(source[cycle[-1]])
        seen.update(cycle)
        parts.append("-".join(cycle) + ("-swapped" if len(cycle) == 2 else "-rotated"))
    return "-".join(parts)


def _permutations():
    """Gate blocks in another order: read so in the forward (autograd follows, and a
    backward true to its forward), or only in the forward, or only in the backward's
    stacking (lstm: hand-written in CS231n, whose gate order differs from the others')."""
    for cell in ("lstm", "gru"):
        gates = GATES[cell]
        for perm in itertools.permutations(gates):
            if perm == gates:
                continue
            order = _cycles_name(gates, perm)
            wrong = ", ".join(f"{g} from {s}'s weights" for g, s in zip(gates, perm) if g != s)
            # σ gates alone exchanged: computing each from another's weights gives the
            # numbers of computing each right and using it in another's place
            # (C_t = I ⊙ C_{t-1} + F ⊙ C̃), so the title says both
            used = ("; or, the same numbers, the gates computed from their own weights and "
                    "used in each other's places" if perm[-1] == gates[-1] else "")
            yield mistake(f"{cell}-gates-{order}", {cell}, "forward",
                          f"gates computed from the wrong blocks: {wrong}{used}", perm=perm,
                          reparam=GatePermutation(cell, perm))
            if cell != "lstm":
                continue
            inverse = tuple(gates[perm.index(g)] for g in gates)  # gate k's gradient to block inverse[k]
            yield mistake(f"lstm-gates-{order}-in-forward", {cell}, "backward",
                          f"the forward computes {wrong}; the backward puts each gate's gradient "
                          "back in the convention's block", perm=perm, grad_perm=inverse,
                          reparam=GatePermutation(cell, perm))
            yield mistake(f"lstm-backward-gates-{order}", {cell}, "backward",
                          "the backward puts the gate gradients in the wrong blocks: "
                          + ", ".join(f"d{g} in {s}'s" for g, s in zip(gates, perm) if g != s),
                          grad_perm=perm)


def _copied_gates():
    """One gate computed from another gate's weights, the other keeping its own (a line
    copied from the one above and not fully edited): not a permutation, so the gate whose
    weights were meant is never used."""
    for cell in ("lstm", "gru"):
        gates = GATES[cell]
        for g, s in itertools.permutations(gates, 2):
            # two σ gates: g computed from s's weights equals g computed right and s used
            # in g's place, so the title names both (the numbers cannot tell them apart)
            used = ("" if CANDIDATE[cell] in (g, s) else
                    f"; or, the same numbers, {g.upper()} computed right but {s.upper()} "
                    f"used where {g.upper()} belongs")
            yield mistake(f"{cell}-{g}-from-{s}-weights", {cell}, "forward",
                          f"gate {g} computed from gate {s}'s weights (W_x{s}, W_h{s}, b_{s}) "
                          f"instead of its own (W_x{g}, W_h{g}, b_{g}), which are never used{used}",
                          reparam=GateReads(cell, g, s))


TORCH_LETTER = {"lstm": {"c": "g"}, "gru": {"h": "n"}}  # torch.nn's names of the candidate
GATE_NAMES = {"i": "input", "f": "forget", "o": "output", "c": "candidate", "z": "update",
              "r": "reset", "h": "candidate"}
UNUSED = {  # gate: (what the code computes without it, the constant it amounts to)
    ("lstm", "i"): ("C_t = F ⊙ C_{t-1} + C̃", UNUSED_ONE),
    ("lstm", "f"): ("C_t = C_{t-1} + I ⊙ C̃", UNUSED_ONE),
    ("lstm", "o"): ("H_t = tanh(C_t)", UNUSED_ONE),
    ("gru", "r"): ("H̃ = tanh(X W_xh + H_{t-1} W_hh + b_h) (torch.nn's form: X W_xh + b_h + "
                   "H_{t-1} W_hh + b_hn)", UNUSED_ONE),
    ("gru", "z"): ("H_t = H̃", UNUSED_ZERO),
}


def _copied_arrays():
    """One array of a gate's line read from another gate (W_hf in the o gate's line, b_i in
    the f gate's), the rest of the line right: that array of the gate's own is never used."""
    for cell in ("lstm", "gru"):
        for g, s in itertools.permutations(GATES[cell], 2):
            for kind in ("W_x", "W_h", "b_"):
                yield mistake(f"{cell}-{g}-reads-{kind}{s}", {cell}, "forward",
                              f"gate {g}'s line uses {kind}{s} (gate {s}'s) where {kind}{g} belongs, "
                              f"the rest of the line right: {kind}{g} is never used (its gradient is "
                              "zero)", reparam=GateReads(cell, g, s, (kind,)))


def _one_gate():
    """A mistake in one gate alone, the others right: its σ' left out or written σ, tanh in
    the place of its σ, the gate computed and never used, its bias never added."""
    for cell in ("lstm", "gru"):
        for g in GATES[cell]:
            G, name = g.upper(), GATE_NAMES[g]
            whose = "the candidate's" if g == CANDIDATE[cell] else f"the {name} gate's"
            yield mistake(f"{cell}-b_{g}-missing", {cell}, "forward",
                          f"{whose} bias b_{g} is never added (the other gates' are): its gradient "
                          "is zero", reparam=DropGateArray(g))
            yield mistake(f"{cell}-{g}-recurrent-term-missing", {cell}, "forward",
                          f"{whose} recurrent term H_{{t-1}} W_h{g} is never added (it reads the "
                          f"input alone): W_h{g}'s gradient is zero", reparam=DropGateArray(g, f"W_h{g}"))
            yield mistake(f"{cell}-{g}-recurrent-weight-transposed", {cell}, "forward",
                          f"{whose} recurrent weight alone used transposed, H_{{t-1}} W_h{g}ᵀ (in "
                          f"torch.nn's layout h @ W_h{TORCH_LETTER[cell].get(g, g)} where "
                          f"h @ W_h{TORCH_LETTER[cell].get(g, g)}.T belongs), the other "
                          "gates' right: a square matrix, so no shape error shows it",
                          reparam=TransposeRecurrent(g))
            if cell == "lstm":
                yield mistake(f"lstm-{g}-term-missing-in-dx-dh", {cell}, "backward",
                              f"dX_t and dH_{{t-1}} leave out {whose} term (dZ_{g} W_x{g}ᵀ, dZ_{g} "
                              f"W_h{g}ᵀ): the sums over the gates written without it",
                              back_skip=g)
            if not (cell == "gru" and g == "h"):  # (torch.nn's GRU keeps b_h and b_hn apart)
                torch_letter = TORCH_LETTER[cell].get(g, g)
                for side, what in (("hh", "hidden"), ("ih", "input")):
                    yield mistake(f"{cell}-{g}-{what}-side-bias-missing", {cell}, "forward",
                                  f"{whose} {what}-side bias (its block of bias_{side}, "
                                  f"b_{side[0]}{torch_letter} in "
                                  f"torch.nn's equations, or its {what} layer's bias) is never added: "
                                  f"that half gets no gradient", split=True,
                                  reparam=DropBiasHalf(side, (g,)))
            if not (cell == "gru" and g == "h"):  # (the gru candidate's line reads R too)
                act = "tanh" if g == CANDIDATE[cell] else "σ"
                yield mistake(f"{cell}-{g}-bias-after-activation", {cell}, "forward",
                              f"{whose} bias added after its {act}: {act}(X_t W_x{g} + H_{{t-1}} "
                              f"W_h{g}) + b_{g}, a parenthesis closed before + b_{g}", outside=((g, "b"),))
                if cell == "lstm":
                    yield mistake(f"lstm-{g}-bias-after-activation-in-forward", {cell}, "backward",
                                  f"the forward adds {whose} bias after its {act}, {act}(X_t W_x{g} + "
                                  f"H_{{t-1}} W_h{g}) + b_{g} (a parenthesis closed before + b_{g}); the "
                                  f"backward is that of {act}(... + b_{g}), as intended, on the values "
                                  "the forward made", outside=((g, "b"),), outside_back=False)
                yield mistake(f"{cell}-{g}-recurrent-term-after-activation", {cell}, "forward",
                              f"{whose} recurrent term and bias added after its {act}: {act}(X_t "
                              f"W_x{g}) + H_{{t-1}} W_h{g} + b_{g}, a parenthesis closed after the "
                              "input's term", outside=((g, "hb"),))
                yield mistake(f"{cell}-{g}-hidden-layer-after-activation", {cell}, "forward",
                              f"{whose} hidden-side layer added after its {act}: {act}(x2{g}(x)) "
                              f"+ h2{g}(h) (or {act}(x W_i{g}ᵀ + b_i{g}) + h W_h{g}ᵀ + b_h{g} in "
                              "torch.nn's equations), a parenthesis closed after the input's layer",
                              split=True, outside=((g, "hb"),), reparam=InputHalfInside(g))
            if g == CANDIDATE[cell]:
                continue
            yield mistake(f"{cell}-{g}-sigmoid-derivative-missing", {cell}, "backward",
                          f"σ' left out for the {name} gate {G} alone: the gradient of its "
                          f"pre-activation is d{G} where d{G} ⊙ {G}(1 - {G}) belongs",
                          gate_acts=((g, SIGMOID_NO_GRAD),))
            yield mistake(f"{cell}-{g}-sigmoid-derivative-one-minus-s", {cell}, "backward",
                          f"σ' = 1 - σ for the {name} gate {G} alone: the gradient of its "
                          f"pre-activation is d{G} ⊙ (1 - {G}) where d{G} ⊙ {G}(1 - {G}) belongs",
                          gate_acts=((g, SIGMOID_1MS_GRAD),))
            yield mistake(f"{cell}-{g}-sigmoid-derivative-as-tanh", {cell}, "backward",
                          f"σ' written as tanh's for the {name} gate {G} alone: the gradient of its "
                          f"pre-activation is d{G} ⊙ (1 - {G}²) where d{G} ⊙ {G}(1 - {G}) belongs",
                          gate_acts=((g, SIGMOID_TANH_GRAD),))
            yield mistake(f"{cell}-{g}-sigmoid-derivative-s", {cell}, "backward",
                          f"σ' = σ for the {name} gate {G} alone: the gradient of its pre-activation "
                          f"is d{G} ⊙ {G} where d{G} ⊙ {G}(1 - {G}) belongs",
                          gate_acts=((g, SIGMOID_S_GRAD),))
            yield mistake(f"{cell}-{g}-sigmoid-derivative-from-pre-activation", {cell}, "backward",
                          f"σ' of the {name} gate {G} written with its pre-activation x: the "
                          f"gradient of x is d{G} ⊙ x(1 - x) where d{G} ⊙ {G}(1 - {G}), {G} = σ(x), "
                          "belongs", gate_acts=((g, SIGMOID_OF_X_GRAD),))
            yield mistake(f"{cell}-{g}-gate-tanh", {cell}, "forward",
                          f"the {name} gate {G} computed with tanh instead of σ", gate_acts=((g, TANH),))
            what, act = UNUSED[(cell, g)]
            yield mistake(f"{cell}-{name}-gate-unused", {cell}, "forward",
                          f"{what}: the {name} gate {G} is computed and never used (its weights "
                          "get no gradient)", gate_acts=((g, act),))


def _derivatives_read_elsewhere():
    """A σ gate's derivative G(1 - G) written with another gate's value, wholly (a line
    copied from the gate above and not edited: df = ... * i * (1 - i)) or in one of its two
    places (f * (1 - i), i * (1 - f)); the candidate's tanh' from another tanh."""
    for cell in ("lstm", "gru"):
        sigmas = [g for g in GATES[cell] if g != CANDIDATE[cell]]
        for g, s in itertools.permutations(sigmas, 2):
            G, S, name = g.upper(), s.upper(), GATE_NAMES[g]
            for suffix, (a, b) in ((f"from-{s}", (s, s)), (f"{g}-one-minus-{s}", (g, s)),
                                   (f"{s}-one-minus-{g}", (s, g))):
                A, B = a.upper(), b.upper()
                yield mistake(f"{cell}-{g}-sigmoid-derivative-{suffix}", {cell}, "backward",
                              f"σ' of the {name} gate {G} written with gate {S}'s value: the gradient "
                              f"of its pre-activation is d{G} ⊙ {A}(1 - {B}) where d{G} ⊙ {G}(1 - {G}) "
                              "belongs (the line copied from gate "
                              f"{s}'s and not fully edited)", grad_reads=((g, a, b),))
    yield mistake("lstm-candidate-derivative-from-tanh-c", {"lstm"}, "backward",
                  "the candidate's tanh' taken at the cell, 1 - tanh²(C_t), where 1 - C̃² belongs "
                  "(dC̃ ⊙ (1 - tanh(c_next)²))", grad_reads=(("c", "TC", "TC"),))
    yield mistake("gru-candidate-derivative-from-H", {"gru"}, "backward",
                  "the candidate's tanh' taken at the new state, 1 - H_t², where 1 - H̃² belongs "
                  "(dH̃ ⊙ (1 - h_next²))", grad_reads=(("h", "H", "H"),))


def _copied_layers():
    """In a module of one layer per gate and source (its bias in two arrays, one per
    layer), one gate's line calling another gate's layer on one side: its weight and its
    half of the bias that gate's, the rest of the line right; or, one nn.Parameter per
    array, that half of the bias alone another gate's. torch.nn's GRU candidate,
    whose two biases are the spec's b_h and b_hn, is left to the arrays' entries above."""
    for cell, gates in (("lstm", GATES["lstm"]), ("gru", ("z", "r"))):
        for g, s in itertools.permutations(gates, 2):
            letter = TORCH_LETTER[cell].get(s, s)
            for side, what, W in (("hh", "hidden", "W_h"), ("ih", "input", "W_x")):
                yield mistake(f"{cell}-{g}-reads-{s}-{what}-layer", {cell}, "forward",
                              f"gate {g}'s line uses gate {s}'s {what}-side layer ({W}{s} and its "
                              f"half of b_{s}: {'h2' if side == 'hh' else 'x2'}{letter}(...), or "
                              f"W_{side[0]}{letter} and b_{side[0]}{letter} in torch.nn's equations) "
                              f"where its own belongs, the rest of the line right: gate {g}'s own "
                              f"{what}-side weight and bias are never used (their gradients are zero)",
                              split=True, reparam=GateReadsLayer(g, s, side))
                yield mistake(f"{cell}-{g}-reads-b_{s}-{what}-half", {cell}, "forward",
                              f"gate {g}'s line adds gate {s}'s {what}-side bias (its half of "
                              f"b_{s}: b_{side[0]}{letter} in torch.nn's equations) where its own "
                              f"belongs, the weights right: gate {g}'s own {what}-side bias is never "
                              "used (its gradient is zero)", split=True,
                              reparam=GateReadsLayer(g, s, side, weights=False))


def families():
    """Every family's entries."""
    yield from _permutations()
    yield from _copied_gates()
    yield from _one_gate()
    yield from _copied_arrays()
    yield from _copied_layers()
    yield from _derivatives_read_elsewhere()
