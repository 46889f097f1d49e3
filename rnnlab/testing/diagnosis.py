"""The diagnosis: which known mistakes does the subject reproduce, number for number?

On a diagnostic example with sizes where every mistake of the catalogue shows (several
steps and batch rows, D ≠ H), and then on the failing examples the properties found, the
subject's arrays are compared with each mistake's (the spec with that one rule changed,
``mistakes.py``) to the same tolerance as with the spec.

* A mistake is named only when *every* array the subject returns matches it ("known
  mistake lstm-dropped-cell-carry"), on the diagnostic example and again on a second one
  of other sizes and numbers; where no single mistake does, pairs of mistakes are tried
  (two bugs at once). A wrong name sends a student to change code that is right, so a
  mistake that explains some arrays but not all is never named.
* Failing that, the note says where the error lies and what its shape suggests: the
  forward right and the gradients wrong, every gradient zero, every gradient off by one
  common factor, one gate block or one time step alone, a transposed array (:func:`hints`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import numpy as np

from .adapters import SubjectRaised, Unit
from .compare import Misfit, Tolerance, agrees, gradient_scale
from .mistakes import (CATALOGUE, DEFAULT_STATE_FAULTS, DEFAULT_STATES, LAYOUT, Mistake, applicable,
                       combine)
from .properties import spec_result as _spec_result
from .rules import SPEC
from .report import Match
from .strategies import Example, make_problem

PREFERRED = {"handwritten": ("backward", "forward"), "autograd": ("autograd", "forward"),
             "forward-only": ("forward",)}


# The spec's numbers for a catalogue mistake on one of the two fixed examples are the same
# for every subject of a convention: kept, so a diagnosis pays for the subject's own calls
# and the comparisons, not for re-running a hundred variants of the spec each time. Keyed
# by the problem's constraints, example and dtype and by the rules object itself (kept
# alive in the key, so its id cannot be reused); a pair of mistakes is made afresh and
# not kept.
_SPEC_CACHE: dict = {}
_SPEC_CACHE_SIZE = 4096


def spec_result(p, rules=None, cache: bool = True):
    rules = SPEC if rules is None else rules
    if not cache:
        return _spec_result(p, rules)
    arrays = [*p.params.values(), p.X, *p.state0, *p.dState]
    arrays += [a for a in (p.dOut, p.targets) if a is not None] + list(p.split.values())
    content = hash(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays))
    key = (p.cons, p.example, content, id(rules), rules)
    hit = _SPEC_CACHE.get(key)
    if hit is None:
        if len(_SPEC_CACHE) >= _SPEC_CACHE_SIZE:
            _SPEC_CACHE.clear()
        hit = _SPEC_CACHE[key] = _spec_result(p, rules)
    return hit


def diagnostic_example(unit: Unit) -> Example:
    """Sizes where the catalogue's mistakes are told apart: T = 4 steps (carries and the
    first step show), B = 3 rows (a mean is not a sum), D = 3 or V = 5 and H = 4 (D ≠ H)."""
    c = unit.cons
    B = min(3, c.B[1])
    T = min(4, c.T[1])
    D = 5 if c.one_hot else 3
    return Example(B, T, D, 4, 20240611, c.one_hot)


def confirming_example(unit: Unit) -> Example:
    """A second example, other sizes and other numbers: a name must hold on both."""
    c = unit.cons
    B = min(2, c.B[1])
    T = min(5, c.T[1])
    D = 6 if c.one_hot else 2
    return Example(B, T, D, 3, 7310, c.one_hot)


def _differs(k: str, q, got: dict, want: dict, tol: Tolerance, G: float) -> bool:
    return k in want and (k not in got or not agrees(q, got[k], want[k], tol, G=G))


def _mismatches(unit: Unit, qs: dict, got: dict, want: dict, tol: Tolerance, G: float) -> set:
    return {k for k, q in qs.items() if _differs(k, q, got, want, tol, G)}


def _agrees(unit: Unit, qs: dict, got: dict, want: dict, tol: Tolerance, G: float,
            first: set) -> bool:
    """No array differs: ``_mismatches`` empty, stopping at the first difference (the
    arrays in ``first``, where the subject already differs from the spec, looked at
    first: thousands of pairs of mistakes are ruled out here, most on their first array)."""
    return not any(_differs(k, qs[k], got, want, tol, G)
                   for k in sorted(qs, key=lambda k: k not in first))


BEYOND_ONE_RUN = {  # a property that fails while one run equals the spec: what it looked at
    "stepwise": "how it behaves across calls (the sequence run step by step)",
    "carry": "how it behaves across calls (windows run one after another)",
    "batch": "batch rows run alone",
    "default-state": "the state it starts from when called without one",
    "unchanged": "the inputs and weights it changes in place",
}


def diagnose(unit: Unit, tol: Tolerance, failing: list,
             failed: list | None = None) -> tuple[list, str | None]:
    """([Match], note). ``failing``: Examples on which properties failed (tried after the
    diagnostic example, when it shows no difference); ``failed``: those properties' names."""
    grads = unit.has_grads
    qs = unit.quantities() if grads else unit.forward_quantities()
    raised = agreed = 0
    for ex in [diagnostic_example(unit), *failing]:
        p = make_problem(unit.cons, ex, unit.dtype)
        try:
            got = unit.observe(p, grads=grads)
        except SubjectRaised:
            raised += 1
            continue
        want = unit.expect(p, spec_result(p), grads)
        G = gradient_scale(want, qs)
        failing_q = _mismatches(unit, qs, got, want, tol, G)
        if not failing_q:
            agreed += 1
            continue
        layout = _layouts(unit, p, qs, got, want, tol, G, failing_q)
        if layout is not None:
            return [layout], None
        matches = _confirmed(unit, qs, tol, _match(unit, p, qs, got, want, tol, G, failing_q))
        where = "" if ex == diagnostic_example(unit) else f"diagnosed on the example {ex}: "
        if matches:
            return _twins(unit, matches), (where.rstrip(": ") or None)
        return [], (where + "no known mistake reproduces every array your code returns, so "
                    "none is named; " + hints(unit, qs, got, want, tol, G, failing_q))
    if not agreed:
        return [], (f"your code raised on every example the diagnosis ran ({raised}): no numbers "
                    "to compare with the known mistakes")
    if raised:
        return [], ("where your code runs, every array it returns equals the spec's; the failures "
                    "above are the exceptions it raised")
    if "default-state" in (failed or ()):
        start = _default_state(unit, tol, failing)
        if start is not None:
            return [start], None
    what = [BEYOND_ONE_RUN[n] for n in dict.fromkeys(failed or ()) if n in BEYOND_ONE_RUN]
    what = "; ".join(what) or "how it behaves across calls (windows run one after another, rows run alone)"
    return [], ("run once over the whole sequence, every array your code returns equals the spec's "
                f"(on the diagnostic example and the failing ones): what fails above is {what}")


def _default_state(unit: Unit, tol: Tolerance, failing: list) -> Match | None:
    """The state a module starts from when called without one, where that is one of
    ``DEFAULT_STATES``: its run without a state equals the spec's from that state, on every
    failing example (one at least) where it runs. Or one of ``DEFAULT_STATE_FAULTS``, where
    every failing example shows it: a state of another shape (the call raises of shapes or
    sizes, or returns arrays of other shapes), or a random one (two calls differ)."""
    qs = unit.forward_quantities()
    found = None
    faults = []  # per failing example: "wrong-shape", "random" or None
    for ex in failing:
        p = make_problem(unit.cons, ex, unit.dtype)
        zeros = replace(p, state0=tuple(np.zeros_like(s) for s in p.state0))
        default = replace(zeros, use_default_state=True)
        try:
            got = unit.observe(default, grads=False)
        except SubjectRaised as exc:
            faults.append("wrong-shape" if re.search(r"shape|size|dimension", exc.line) else None)
            continue
        want0 = unit.expect(zeros, spec_result(zeros), False)
        if any(np.shape(got.get(k)) != np.shape(want0[k]) for k in qs):
            faults.append("wrong-shape")
            continue
        try:
            again = unit.observe(default, grads=False)
        except SubjectRaised:
            faults.append(None)
            continue
        if _mismatches(unit, qs, got, again, tol, 0.0):  # the same call, other numbers
            faults.append("random")
            continue
        faults.append(None)
        fits = set()
        for name, (_, parts, value) in DEFAULT_STATES.items():
            if name.startswith("lstm-") and unit.cell != "lstm":
                continue  # (the others' parts beyond an rnn's or gru's one state are none)
            s0 = tuple(np.full_like(z, value) if k in parts else z for k, z in enumerate(zeros.state0))
            ps = replace(zeros, state0=s0)
            want = unit.expect(ps, spec_result(ps), False)
            if not _mismatches(unit, qs, got, want, tol, 0.0):
                fits.add(name)
        found = fits if found is None else found & fits
        if not found:
            break
    if faults and len(set(faults)) == 1 and faults[0] is not None:
        name = f"default-state-{faults[0]}"
        return Match([name], [DEFAULT_STATE_FAULTS[name]], sorted(qs), True)
    if not found or set(faults) != {None}:
        return None
    names = sorted(found)
    return Match(names, [DEFAULT_STATES[n][0] for n in names], sorted(qs), True)


def _layouts(unit, p, qs, got, want, tol, G, failing_q) -> Match | None:
    """A Match of LAYOUT mistakes when every array that differs holds the spec's numbers in
    another shape; or when the outputs do and every gradient is the one of the final state
    alone (an output of the wrong shape cannot be given its upstream gradient: the harness
    leaves it out of the loss, and what remains is right)."""
    layouts = {k: _layout(qs[k], got.get(k), want[k], tol, G) for k in failing_q}
    found = {k: n for k, n in layouts.items() if n is not None}
    if not found:
        return None
    rest = set(failing_q) - set(found)
    if rest:
        outputs = [k for k in found if qs[k].role == "output"]
        if not outputs or p.dOut is None or any(not qs[k].is_gradient for k in rest):
            return None
        p0 = replace(p, dOut=np.zeros_like(p.dOut))  # the outputs' upstream gradient left out
        want0 = unit.expect(p0, spec_result(p0), unit.has_grads)
        grads = {k: q for k, q in qs.items() if q.is_gradient}
        if not _agrees(unit, grads, got, want0, tol, max(G, gradient_scale(want0, qs)), rest):
            return None
    names = sorted(set(found.values()))
    titles = [LAYOUT[n] for n in names]
    if rest:
        titles.append("in that shape the outputs cannot be given their upstream gradient, so "
                      "they are left out of the loss the gradients are checked on; the gradients "
                      f"of what remains are right ({', '.join(sorted(rest))} differ only so)")
    return Match(names, titles, sorted(failing_q), True)


def _layout(q, got, want, tol: Tolerance, G: float) -> str | None:
    """The LAYOUT mistake this array is, when it holds the spec's numbers in another shape:
    as its convention's unit says (a Misfit's layout), without torch.nn's layer axis, with
    the time and batch axes exchanged, a gradient transposed, or reshaped in order; else None."""
    a = got.value if isinstance(got, Misfit) else got
    if a is None:
        return None
    a, w = np.asarray(a, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if a.size != w.size or a.size == 0:
        return None

    def same(x) -> bool:
        return agrees(q, x, w, tol, G=G)

    if isinstance(got, Misfit) and got.layout and same(a.reshape(w.shape)):
        return got.layout
    if a.shape == w.shape:
        return None
    if q.role == "state" and w.shape == (1, *a.shape) and same(a.reshape(w.shape)):
        return "state-without-layer-axis"
    if q.role == "output" and a.ndim == w.ndim == 3 and a.shape == (w.shape[1], w.shape[0], w.shape[2]) \
            and same(a.swapaxes(0, 1)):
        return "time-batch-axes-exchanged"
    if q.is_gradient and a.ndim == w.ndim == 2 and a.shape == w.shape[::-1] and same(a.T):
        return "gradient-transposed"  # (a square one is a rule of the spec: dW_h-transposed)
    return "right-numbers-other-shape" if same(a.reshape(w.shape)) else None


def _match(unit, p, qs, got, want, tol, G, failing_q) -> list:
    ms = applicable(unit.cell, unit.cons.head, unit.cons.gru_form, unit.cons.bias_split,
                    unit.cons.predicts)
    expected = [unit.expect(p, spec_result(p, m.rules), unit.has_grads) for m in ms]
    # one mistake whose numbers are the subject's on every array (then it differs from the
    # spec where the subject does): each ruled out at its first array that differs
    full = [m for m, mw in zip(ms, expected)
            if _agrees(unit, qs, got, mw, tol, max(G, gradient_scale(mw, qs)), failing_q)]
    if full:
        return _prefer(unit, full)
    cands = []  # (mistake, arrays where it differs from the spec, arrays it does not explain)
    for m, mw in zip(ms, expected):
        Gm = max(G, gradient_scale(mw, qs))
        differs = _mismatches(unit, qs, mw, want, tol, Gm)
        if not differs:
            continue  # this unit cannot see the mistake
        cands.append((m, differs, _mismatches(unit, qs, got, mw, tol, Gm)))
    # two mistakes at once. An array that mistake b alone leaves as the spec's is, with both
    # made, mistake a's alone (and so must be the subject's), and the arrays the two change
    # are those where the subject differs: pairs that fail this are not computed. It holds
    # unless one changes an array only through the other, or undoes it (then the pair goes
    # unnamed, never misnamed), and it leaves a few dozen of the thousands of pairs to run.
    pairs = []
    for (a, differs_a, off_a), (b, differs_b, off_b) in itertools.combinations(cands, 2):
        if _reorders(a) and _reorders(b):  # orders compose into one the catalogue has
            continue
        if not (off_a <= differs_b and off_b <= differs_a and differs_a | differs_b == failing_q):
            continue  # (and the arrays they change are the ones the subject's differ in)
        ab = combine(a, b)
        if ab is None:
            continue
        mw = unit.expect(p, spec_result(p, ab.rules, cache=False), unit.has_grads)
        if _agrees(unit, qs, got, mw, tol, max(G, gradient_scale(mw, qs)), failing_q):
            pairs.append((a, b))
    return [Match([a.name, b.name], [a.describe(unit.gate_order()), b.describe(unit.gate_order())],
                  sorted(qs), True) for a, b in pairs]


def _confirmed(unit, qs, tol, matches: list) -> list:
    """The matches whose mistakes reproduce the subject on the confirming example too
    (every array): a coincidence of one example's numbers is not a diagnosis."""
    if not matches:
        return matches
    p = make_problem(unit.cons, confirming_example(unit), unit.dtype)
    try:
        got = unit.observe(p, grads=unit.has_grads)
    except SubjectRaised:
        return []  # no second look: better no name than an unconfirmed one
    want = unit.expect(p, spec_result(p), unit.has_grads)
    G = gradient_scale(want, qs)
    kept = []
    for match in matches:
        names = [*match.mistakes]
        single = len(names) == 1
        rules = (CATALOGUE[names[0]].rules if single
                 else combine(CATALOGUE[names[0]], CATALOGUE[names[1]]).rules)
        mw = unit.expect(p, spec_result(p, rules, cache=single), unit.has_grads)
        if not _mismatches(unit, qs, got, mw, tol, max(G, gradient_scale(mw, qs))):
            equivalent = [n for n in match.equivalent
                          if not _mismatches(unit, qs, got, unit.expect(
                              p, spec_result(p, CATALOGUE[n].rules), unit.has_grads), tol, G)]
            kept.append(replace(match, equivalent=equivalent))
    return kept


# ------------------------------------------------------------------------------- hints


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _is_zero(x, scale: float) -> bool:
    a = np.asarray(x, dtype=np.float64)
    return a.size > 0 and float(np.abs(a).max()) <= 1e-7 * max(scale, 1e-300)


def _common_factor(pairs: list) -> float | None:
    """c when got = c · want for every (got, want) pair (least squares, then checked)."""
    g = np.concatenate([_flat(a) for a, _ in pairs])
    w = np.concatenate([_flat(b) for _, b in pairs])
    if g.shape != w.shape or not np.any(w):
        return None
    c = float(g @ w / (w @ w))
    scale = float(np.abs(w).max())
    if not np.isfinite(c) or abs(c - 1) < 1e-6 or abs(c) < 1e-12:
        return None
    return c if float(np.abs(g - c * w).max()) <= 1e-6 * abs(c) * scale else None


def _first_step(qs: dict, got: dict, want: dict, names: list) -> int | None:
    """The first time step at which any of these sequence arrays differs, counted from 0 as
    the arrays index it and as the properties' reports count."""
    first = None
    for k in names:
        q, g, w = qs[k], got.get(k), want.get(k)
        if q.time_axis is None or g is None or np.shape(g) != np.shape(w):
            continue
        diff = np.abs(np.asarray(g, dtype=np.float64) - np.asarray(w, dtype=np.float64))
        scale = max(float(np.abs(np.asarray(w, dtype=np.float64)).max()), 1.0)
        per_step = np.moveaxis(diff, q.time_axis, 0).reshape(diff.shape[q.time_axis], -1).max(1)
        bad = np.nonzero(per_step > 1e-6 * scale)[0]
        if len(bad):
            first = int(bad[0]) if first is None else min(first, int(bad[0]))
    return first


def hints(unit: Unit, qs: dict, got: dict, want: dict, tol: Tolerance, G: float,
          failing_q: set) -> str:
    """Where the error lies, in words, from the arrays that differ (``failing_q``) and the
    shape of their difference. Facts about the numbers only, never a cause that was not
    checked: "every gradient is zero" is a fact; detached outputs are one way to get it."""
    bad = sorted(failing_q)
    grads = [k for k in bad if qs[k].is_gradient]
    forward = [k for k in bad if not qs[k].is_gradient]
    said = [f"the arrays that differ: {', '.join(bad)}"]
    if grads and not forward:
        said.append("the forward pass (outputs and final state) equals the spec's, so the "
                    "error is in the gradients")
    elif forward:
        first = _first_step(qs, got, want, forward)
        said.append(f"the forward already differs ({', '.join(forward)}"
                    + (f", from time step {first} on" if first is not None else "")
                    + "): look at the forward first, the gradients follow it")
    comparable = [(got[k], want[k]) for k in grads if k in got
                  and np.shape(got[k]) == np.shape(want[k])]
    scale = max((float(np.abs(np.asarray(w, dtype=np.float64)).max()) for _, w in comparable
                 if np.size(w)), default=0.0)
    returned = [got[k] for k, q in qs.items() if q.is_gradient and k in got and k in want
                and np.shape(got[k]) == np.shape(want[k])]  # every gradient, not those that differ
    misshapen = [k for k in forward if qs[k].role in ("output", "state") and (
        isinstance(got.get(k), Misfit) or np.shape(got.get(k)) != np.shape(want[k]))]
    if misshapen:  # what cannot be given its upstream gradient is left out of the loss
        said.append(f"{', '.join(misshapen)} {'has' if len(misshapen) == 1 else 'have'} another "
                    "shape than the spec's, so the loss the gradients are checked on leaves "
                    f"{'it' if len(misshapen) == 1 else 'them'} out: the gradients are those "
                    "of what remains, and differ from the spec's for that reason too")
    elif comparable and scale > 0 and all(_is_zero(g, scale) for g in returned):
        said.append("every gradient your code returns is zero: nothing reaches the parameters "
                    "(outputs cut from the graph, computed under no_grad, or a backward "
                    "that never runs)")
    elif comparable and scale > 0:
        zero = [k for k in grads if k in got and np.shape(got[k]) == np.shape(want[k])
                and _is_zero(got[k], scale) and not _is_zero(want[k], scale)]
        if zero:
            why = ("never computed or never accumulated in your backward"
                   if unit.kind == "handwritten" else
                   "what they belong to never reaches the loss in your code")
            said.append(f"these gradients are zero where the spec's are not: {', '.join(zero)} "
                        f"({why})")
    if len(comparable) > 1 and not all(_is_zero(g, scale) for g, _ in comparable):
        c = _common_factor(comparable)
        if c is not None:
            said.append(f"every gradient that differs is the spec's times {c:.6g}: one common "
                        "factor points at a scale (a mean for a sum, a step count) or a local "
                        "derivative shared by every path")
    for k in bad:
        if k not in got:
            continue
        layout = _layout(qs[k], got[k], want[k], tol, G)
        if layout is not None:  # a fact about its numbers: the spec's, in another shape
            said.append(f"{k} holds the spec's numbers in another shape ({layout}: "
                        f"{LAYOUT[layout]})")
            continue
        if isinstance(got[k], Misfit):
            said.append(f"{k} {got[k].message}")
            continue
        g, w = np.asarray(got[k]), np.asarray(want[k])
        if g.ndim == 2 and g.shape == w.shape[::-1] and g.shape != w.shape:
            said.append(f"{k} has the shape of the spec's transposed, {g.shape}")
        elif g.ndim == 2 and g.shape == w.shape and g.shape[0] == g.shape[1] \
                and np.allclose(g, w.T, rtol=1e-6, atol=1e-9 * max(G, 1e-300)) \
                and not np.allclose(g, w, rtol=1e-6, atol=1e-9 * max(G, 1e-300)):
            said.append(f"{k} equals the spec's transposed")
        elif g.shape != w.shape:
            said.append(f"{k} has shape {g.shape}, the spec's is {w.shape}")
    return "; ".join(said)


# A GRU's candidate read in one form, when its form was guessed (per-gate layers whose
# source does not say it): the mistake with the same numbers in the other form
FORM_TWINS = {"gru-reset-after-matmul": "gru-b_hn-outside-reset",
              "gru-b_hn-outside-reset": "gru-reset-after-matmul"}


def _twins(unit: Unit, matches: list) -> list:
    if getattr(unit, "form_guessed", False):
        for m in matches:
            m.equivalent += [FORM_TWINS[n] for n in m.mistakes
                             if n in FORM_TWINS and FORM_TWINS[n] not in m.equivalent]
    return matches


def _reorders(m: Mistake) -> bool:
    return m.perm is not None or m.grad_perm is not None


def _full(m: Mistake, equivalent=()) -> Match:
    return Match([m.name], [m.title], [], True, list(equivalent))


def _prefer(unit: Unit, ms: list) -> list:
    """Of several mistakes that all reproduce the numbers, those of the subject's own kind
    (a detached state is an autograd mistake, a dropped carry a hand-written one); the
    others are listed as equivalent."""
    mine = [m for m in ms if m.kind in PREFERRED[unit.kind]] or ms
    rest = [m.name for m in mine[1:]] + [m.name for m in ms if m not in mine]
    return [_full(replace(mine[0], title=mine[0].describe(unit.gate_order())), rest)]
