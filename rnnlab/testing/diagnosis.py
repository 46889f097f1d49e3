"""The diagnosis: which known mistakes does the subject reproduce, number for number?

On a diagnostic example with sizes where every mistake of the catalogue shows (several
steps and batch rows, D ≠ H), and then on the failing examples the properties found, the
subject's arrays are compared with each mistake's (the spec with that one rule changed,
``mistakes.py``) to the same tolerance as with the spec.

* A mistake is named when *every* array the subject returns matches it ("known mistake
  lstm-dropped-cell-carry"); where no single mistake does, pairs of mistakes are tried
  (two bugs at once).
* Failing that, an array that matches a mistake's is named with it ("dWh matches the spec
  with known mistake dW_h-from-H_t"): the other differences then have another cause.
* A subject that matches no known mistake gets the localisation alone.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from .adapters import SubjectRaised, Unit
from .compare import Tolerance, compare, gradient_scale
from .mistakes import Mistake, applicable, combine
from .properties import spec_result
from .report import Match
from .strategies import Example, make_problem

PREFERRED = {"handwritten": ("backward", "forward"), "autograd": ("autograd", "forward"),
             "forward-only": ("forward",)}


def diagnostic_example(unit: Unit) -> Example:
    """Sizes where the catalogue's mistakes are told apart: T = 4 steps (carries and the
    first step show), B = 3 rows (a mean is not a sum), D = 3 or V = 5 and H = 4 (D ≠ H)."""
    c = unit.cons
    B = min(3, c.B[1])
    T = min(4, c.T[1])
    D = 5 if c.one_hot else 3
    return Example(B, T, D, 4, 20240611, c.one_hot)


def _mismatches(unit: Unit, qs: dict, got: dict, want: dict, tol: Tolerance, G: float) -> set:
    bad = set()
    for k, q in qs.items():
        if k in want and (k not in got or compare(q, got[k], want[k], tol, G=G) is not None):
            bad.add(k)
    return bad


def diagnose(unit: Unit, tol: Tolerance, failing: list) -> tuple[list, str | None]:
    """([Match], note). ``failing``: Examples on which properties failed (tried after the
    diagnostic example, when it shows no difference)."""
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
        matches = _match(unit, p, qs, got, want, tol, G, failing_q)
        note = None if ex == diagnostic_example(unit) else f"diagnosed on the example {ex}"
        return matches, note
    if not agreed:
        return [], (f"your code raised on every example the diagnosis ran ({raised}): no numbers "
                    "to compare with the known mistakes")
    if raised:
        return [], ("where your code runs, every array it returns equals the spec's; the failures "
                    "above are the exceptions it raised")
    return [], ("run once over the whole sequence, every array your code returns equals the spec's "
                "(on the diagnostic example and the failing ones): what fails above is how it "
                "behaves across calls (windows run one after another, rows run alone)")


def _match(unit, p, qs, got, want, tol, G, failing_q) -> list:
    cands = []  # (mistake, arrays where it differs from the spec, arrays it explains)
    for m in applicable(unit.cell, unit.cons.head, unit.cons.gru_form):
        mw = unit.expect(p, spec_result(p, m.rules), unit.has_grads)
        Gm = max(G, gradient_scale(mw, qs))
        differs = _mismatches(unit, qs, mw, want, tol, Gm)
        if not differs:
            continue  # this unit cannot see the mistake
        off = _mismatches(unit, qs, got, mw, tol, Gm)
        cands.append((m, differs, off))
    full = [m for m, _, off in cands if not off]
    if full:
        return _prefer(unit, full)
    # two mistakes at once
    singles = [m for m, _, _ in cands]
    pairs = []
    for a, b in itertools.combinations(singles, 2):
        if _reorders(a) and _reorders(b):  # orders compose into one the catalogue has
            continue
        ab = combine(a, b)
        if ab is None:
            continue
        mw = unit.expect(p, spec_result(p, ab.rules), unit.has_grads)
        Gm = max(G, gradient_scale(mw, qs))
        if not _mismatches(unit, qs, got, mw, tol, Gm):
            pairs.append((a, b))
    if pairs:
        return [Match([a.name, b.name], [a.describe(unit.gate_order()), b.describe(unit.gate_order())],
                      sorted(qs), True) for a, b in pairs]
    # arrays explained one by one
    partial = []
    for m, differs, off in cands:
        explained = sorted((failing_q & differs) - off)
        if explained:
            partial.append(Match([m.name], [m.describe(unit.gate_order())], explained, False))
    return partial


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
