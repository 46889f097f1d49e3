"""The properties, written once against the spec's terms and run on any adapted subject.

    forward             outputs and the final state equal the spec's
    gradients           every gradient (weights, inputs, initial state) equals the spec's BPTT
    finite-differences  a hand-written backward agrees with central differences of the
                        subject's own forward (so a wrong forward with a backward true to it
                        is told apart from a wrong backward)
    stepwise            step by step, the state carried, equals the whole sequence
    carry               T1 steps then T2 steps with the state carried equal T1 + T2 steps;
                        backwards, the second window's dH_0 fed to the first as its dH_T gives
                        the whole window's gradients
    batch               every batch row run alone gives that row of the batch run (and the
                        weight gradients add up over the rows)
    unchanged           the inputs, weights, upstream gradients (and initial state, but for
                        d2l's functions) the subject is given are the same after the call

Each is a Hypothesis test over sizes and a seed (``strategies.examples``); a failure is
shrunk to the smallest example, which the report prints for replay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hyp_seed
from hypothesis.errors import Flaky

from . import spec
from .rules import SPEC, Rules
from .adapters import SubjectEnded, SubjectRaised, Unit, f64, perturbed_losses
from .compare import Misfit, Quantity, Tolerance, compare, gradient_scale
from .conventions import block_slices
from .report import Difference, PropertyResult
from .strategies import Example, Problem, examples, make_problem


def spec_result(p: Problem, rules: Rules = SPEC) -> spec.SpecResult:
    return spec.run(p.cell, p.params, p.X, p.state0, head=p.cons.head, dOut=p.dOut,
                    dState=p.dState, targets=p.targets, rules=rules, split=p.split)


class PropertyFailed(Exception):
    def __init__(self, example: Example, differences: list, error: str | None = None):
        super().__init__(str(example))
        self.example, self.differences, self.error = example, differences, error


def _compare_all(qs: dict, got: dict, want: dict, tol: Tolerance, against: str) -> list:
    G = gradient_scale(want, qs)
    out = []
    for k, q in qs.items():
        if k not in want:
            continue
        if k not in got:
            out.append(Difference(k, q.role, "is missing from what the subject returned"))
            continue
        d = compare(q, got[k], want[k], tol, G=G, against=against)
        if d is not None:
            out.append(d)
    return out


# ---------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Property:
    name: str
    title: str
    min_T: int = 1
    min_B: int = 1

    def applicable(self, unit: Unit) -> str | None:
        """None when the property applies to the unit, else why not (shown as n/a)."""
        return None

    def check(self, unit: Unit, p: Problem, tol: Tolerance) -> list:
        raise NotImplementedError


class Forward(Property):
    def check(self, unit, p, tol):
        got = unit.observe(p, grads=False)
        want = unit.expect(p, spec_result(p), grads=False)
        return _compare_all(unit.forward_quantities(), got, want, tol, "spec")


class Gradients(Property):
    def applicable(self, unit):
        if not unit.has_grads:
            return unit.notes[0] if unit.notes else "no gradients to check"
        return None

    def check(self, unit, p, tol):
        got = unit.observe(p, grads=True)
        want = unit.expect(p, spec_result(p), grads=True)
        qs = {k: q for k, q in unit.quantities().items() if q.is_gradient}
        G = gradient_scale(want, unit.quantities())
        out = []
        for k, q in qs.items():
            if k not in got:
                out.append(Difference(k, q.role, "is missing from what the subject returned"))
                continue
            d = compare(q, got[k], want[k], tol, G=G)
            if d is not None:
                out.append(d)
        return out


class FiniteDifferences(Property):
    def applicable(self, unit):
        if unit.kind != "handwritten":
            return ("gradients come from autograd, not a hand-written backward" if unit.kind == "autograd"
                    else "no hand-written backward")
        return None

    def check(self, unit, p, tol):
        arrays, loss = unit.fd_setup(p)
        got = unit.observe(p, grads=True)
        qs = unit.quantities()
        G = gradient_scale(got, {k: qs[k] for k in arrays})
        rng = np.random.default_rng(p.example.seed)
        h = tol.fd_step
        # every direction first (the same draws, in the same order, as one at a time), then
        # the subject's forward at x ± h v for all of them: one request to a child process
        plan = []  # (name, g, kind, label, idx, v)
        for name, (arr, q) in arrays.items():
            g = np.asarray(got.get(name, np.empty(0)), dtype=np.float64)
            if g.shape != arr.shape:
                continue  # the comparison with the spec reports the shape
            for kind, label, idx in _directions(q, arr.shape):
                v = np.zeros(arr.shape)  # same shape as the array
                v[idx] = rng.standard_normal(v[idx].shape)
                if q.clip is not None:  # an entry the subject clipped has no derivative to check
                    v[np.abs(g) >= q.clip * (1 - 1e-9)] = 0
                norm = float(np.linalg.norm(v))
                if norm == 0:
                    continue
                plan.append((name, g, kind, label, idx, v / norm))
        many = getattr(loss, "many", None) or (lambda deltas: perturbed_losses(arrays, loss, deltas))
        values = many([(name, h * v) for name, _, _, _, _, v in plan])
        out = []
        for name in arrays:
            bad = []  # (kind, label, error, scale, analytic, fd) of each direction that disagrees
            for (n, g, kind, label, idx, v), (plus, minus) in zip(plan, values):
                if n != name:
                    continue
                fd = (plus - minus) / (2 * h)
                analytic = float((g * v).sum())
                scale = max(G, float(np.linalg.norm(g[idx])), 1e-300)
                err = abs(fd - analytic)
                if not err <= tol.fd * scale:
                    bad.append((kind, label, err, scale, analytic, fd))
            if bad:
                kind, label, err, scale, analytic, fd = max(bad, key=lambda b: b[2] / b[3])
                d = Difference(name, "fd", "disagrees with finite differences of your forward",
                               worst_abs=err, worst_rel=err / scale, got=analytic, want=fd,
                               tolerance=f"{tol.fd * scale:.1e}")
                where = f" in {'gate block' if kind == 'gate' else 'time step'} {label}" if kind else ""
                d.detail = (f"along a random direction v{where}: Σ {name}·v = {analytic:.6g}, "
                            f"central differences of your forward {fd:.6g}")
                if kind == "gate":
                    d.gates = [b[1] for b in bad]
                elif kind == "step":
                    d.steps = [int(b[1]) for b in bad]
                    d.message += (f" at time step{'s' if len(bad) > 1 else ''} "
                                  f"{', '.join(str(t) for t in d.steps)}")
                d.at = None
                out.append(d)
        return out


def _directions(q: Quantity, shape: tuple) -> list:
    """(kind, label, index): one direction per gate block of a fused weight, per time step
    of a sequence input, else one for the whole array, so a disagreement is localised."""
    if q.block is not None and len(q.block.parts) > 1:
        return [("gate", label, sl) for label, sl in block_slices(q.block, shape)]
    if q.time_axis is not None and len(shape) > q.time_axis and shape[q.time_axis] > 1:
        out = []
        for t in range(shape[q.time_axis]):
            idx = [slice(None)] * len(shape)
            idx[q.time_axis] = t
            out.append(("step", str(t), tuple(idx)))
        return out
    return [(None, "", tuple(slice(None) for _ in shape))]


class _Chained(Property):
    """Shared by stepwise and carry: windows run one after the other, the state carried."""

    def applicable(self, unit):
        if unit.cons.T[1] < 2:
            return "one step per call: nothing to chain"
        if not all(unit.cons.state_in):
            return unit.notes[-1] if unit.notes else "the state cannot be given"
        return None

    def cuts(self, p: Problem) -> list:
        raise NotImplementedError

    def check(self, unit, p, tol):
        T = p.example.T
        cuts = self.cuts(p)
        bounds = list(zip([0, *cuts], [*cuts, T]))
        grads = unit.chain_grads
        whole = unit.observe(p, grads=grads)
        # forward: each window starts from the previous window's final state; backward: the
        # later window's dH_0 is the earlier window's dH_T
        parts = unit.observe_chain(p, bounds, grads)
        qs = unit.quantities() if grads else unit.forward_quantities()
        chained = {k: _combine_time(q, [o.get(k) for o in parts]) for k, q in qs.items()
                   if all(k in o for o in parts)}
        return _compare_all(qs, chained, whole, tol, "whole sequence run at once")


def _combine_time(q: Quantity, arrays: list):
    misfit = next((a for a in arrays if isinstance(a, Misfit)), None)
    if misfit is not None:
        return misfit
    arrays = [f64(a) for a in arrays]
    if q.role in ("output", "dinput"):
        if q.time_axis is None or any(a.ndim <= q.time_axis for a in arrays):
            return arrays[0]
        others = {a.shape[:q.time_axis] + a.shape[q.time_axis + 1:] for a in arrays}
        if len(others) > 1:  # the windows' arrays cannot be put one after another in time
            shapes = ", ".join(str(a.shape) for a in arrays)
            return Misfit(f"has shapes {shapes} in the windows run one after another, which "
                          f"differ in more than their time axis ({q.time_axis})")
        return np.concatenate(arrays, axis=q.time_axis)
    if q.role != "state" and len({a.shape for a in arrays}) > 1:  # gradients, loss: a sum
        return Misfit(f"has shapes {', '.join(str(a.shape) for a in arrays)} in the windows run "
                      "one after another, where one shape belongs")
    if q.role == "state":
        return arrays[-1]
    if q.role == "dstate":
        return arrays[0]
    return sum(arrays[1:], arrays[0])  # loss and weight gradients add up over windows


class Stepwise(_Chained):
    def cuts(self, p):
        return list(range(1, p.example.T))


class Carry(_Chained):
    def cuts(self, p):
        T = p.example.T
        return [1 + p.example.seed % (T - 1)]  # T1 in 1..T-1, drawn with the example


class Batch(Property):
    def applicable(self, unit):
        if unit.cons.B[1] < 2:
            return "one batch row per call (the convention's)"
        return None

    def check(self, unit, p, tol):
        grads = unit.has_grads
        whole, *parts = unit.observe_many([p, *(p.rows(b) for b in range(p.example.B))], grads)
        qs = unit.quantities() if grads else unit.forward_quantities()
        joined = {}
        for k, q in qs.items():
            if not all(k in o for o in parts):
                continue
            misfit = next((o[k] for o in parts if isinstance(o[k], Misfit)), None)
            if misfit is not None:
                joined[k] = misfit
                continue
            arrays = [f64(o[k]) for o in parts]
            if q.batch_axis is not None and all(a.ndim > q.batch_axis for a in arrays):
                joined[k] = np.concatenate(arrays, axis=q.batch_axis)
            else:
                joined[k] = sum(arrays[1:], arrays[0])
        return _compare_all(qs, joined, whole, tol, "batch run (rows run one at a time differ)")


class DefaultState(Property):
    """A convention whose contract has a default state (``nn.LSTM(x)``, d2l's
    ``forward(inputs, state=None)``) starts from zeros when called without one."""

    def applicable(self, unit):
        if not any(unit.cons.state_in):
            return "it is never given a state: what it starts from is its own"
        if not getattr(unit, "has_default_state", False):
            return ("the convention always passes a state" if unit.convention not in
                    ("torch.nn", "d2l") else "its forward takes no default state (no state=None)")
        return None

    def check(self, unit, p, tol):
        zeros = replace(p, state0=tuple(np.zeros_like(s) for s in p.state0))
        want = unit.observe(zeros, grads=False)
        got = unit.observe(replace(zeros, use_default_state=True), grads=False)
        return _compare_all(unit.forward_quantities(), got, want, tol,
                            "run from zeros (called without a state, your code starts elsewhere)")


class Unchanged(Property):
    """A call that writes into what it was given (``x += ...``, ``Wx[...] = ...``) breaks
    its caller (a training loop reuses the weights), even where its results are right."""

    def check(self, unit, p, tol):
        unit.mutated = []
        unit.observe(p, grads=unit.has_grads)
        out, seen = [], set()
        for name, call in unit.mutated:
            if name not in seen:
                seen.add(name)
                out.append(Difference(name, "input", f"was changed in place by {call}"))
        return out


PROPERTIES = (
    Forward("forward", "outputs and final state equal the spec"),
    Gradients("gradients", "every gradient equals the spec's BPTT"),
    FiniteDifferences("finite-differences", "the backward agrees with finite differences of "
                                            "the forward"),
    Stepwise("stepwise", "step by step equals the whole sequence", min_T=2),
    Carry("carry", "T1 then T2 steps, the state carried, equal T1+T2 steps", min_T=2),
    Batch("batch", "batch rows are independent", min_B=2),
    Unchanged("unchanged", "the inputs and weights it is given are unchanged by the call"),
    DefaultState("default-state", "called without a state, it starts from zeros"),
)


# -------------------------------------------------------------------------- runner


def fixed_example(unit: Unit, prop: Property) -> Example:
    """Run after Hypothesis's examples have passed: sizes where every mistake of the
    catalogue shows (T = 4 steps, so carries do; B = 3 rows, so a mean is not a sum; D or
    V ≠ H), so a run of few examples, whatever Hypothesis's version draws, still sees them."""
    c = unit.cons

    def within(v: int, bounds: tuple) -> int:
        return max(bounds[0], min(v, bounds[1]))

    B = max(prop.min_B, within(3, c.B))
    T = max(prop.min_T, within(4, c.T))
    return Example(B, T, within(5 if c.one_hot else 3, c.D), within(4, c.H), 20240611, c.one_hot)


def run_property(prop: Property, unit: Unit, tol: Tolerance, max_examples: int, seed: int,
                 shrink: bool = True, example: Example | None = None) -> PropertyResult:
    """Run one property as a Hypothesis test; a failure comes back shrunk to the smallest
    example. With ``example``, run that one example only (a replay)."""
    reason = prop.applicable(unit)
    if reason is not None:
        return PropertyResult(prop.name, prop.title, "n/a", reason=reason)
    count = {"run": 0, "first_failure": None, "current": None}

    def test(ex: Example) -> None:
        count["run"] += 1
        count["current"] = ex
        p = make_problem(unit.cons, ex, unit.dtype)
        try:
            diffs = prop.check(unit, p, tol)
        except SubjectRaised as exc:
            count["first_failure"] = count["first_failure"] or count["run"]
            raise PropertyFailed(ex, [], exc.line) from None
        if diffs:
            count["first_failure"] = count["first_failure"] or count["run"]
            raise PropertyFailed(ex, diffs)

    try:
        if example is not None:
            if example.T < prop.min_T or example.B < prop.min_B:
                return PropertyResult(prop.name, prop.title, "n/a",
                                      reason=f"needs T >= {prop.min_T} and B >= {prop.min_B}")
            test(example)
        else:
            phases = [Phase.generate] + ([Phase.shrink] if shrink else [])
            strategy = examples(unit.cons, min_T=prop.min_T, min_B=prop.min_B)
            wrapped = settings(max_examples=max_examples, deadline=None, database=None,
                               derandomize=False, verbosity=Verbosity.quiet, phases=phases,
                               report_multiple_bugs=False, print_blob=False,
                               suppress_health_check=list(HealthCheck))(given(strategy)(test))
            hyp_seed(seed)(wrapped)()
            test(fixed_example(unit, prop))  # the same check on any Hypothesis version
            count["run"] -= 1  # not one of the max_examples asked for
    except PropertyFailed as f:
        return PropertyResult(prop.name, prop.title, "FAIL", examples=count["first_failure"] or 1,
                              example=str(f.example), differences=f.differences, error=f.error)
    except SubjectEnded as end:  # no process left to run the subject: no shrinking
        ex = count["current"]
        on = f" (on the example {ex}, not shrunk: replay it with --example)" if ex is not None else ""
        return PropertyResult(prop.name, prop.title, "FAIL", examples=count["run"],
                              error=end.line + on)
    except Flaky:
        return PropertyResult(prop.name, prop.title, "FAIL", examples=count["run"],
                              error="gave different results on the same example: the subject "
                                    "is not deterministic (random numbers, or state kept "
                                    "between calls)")
    return PropertyResult(prop.name, prop.title, "PASS", examples=count["run"])
