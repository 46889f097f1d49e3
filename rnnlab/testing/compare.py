"""Comparing a subject's arrays with the spec's: tolerances by dtype, and where they differ.

Tolerances follow the dtype the subject computes in (docs/verify.md defends them):

* outputs and states: |subject - spec| <= ``forward`` · max(1, max |spec|) of that array;
* gradients: |subject - spec| <= ``gradient`` · G, G the largest spec gradient of the
  example (every array's, the inputs' and initial state's included): a gradient that is a
  small difference of large terms carries the round-off of those terms, so it is measured
  on the scale of the problem's gradients, not on its own tiny scale;
* finite differences of the subject's own forward, along a random unit direction per gate
  block or time step: |backward · v - (L(θ+hv) - L(θ-hv))/2h| <= ``fd`` · max(G, ‖g_block‖).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conventions import Block, block_slices
from .report import Difference


@dataclass(frozen=True)
class Tolerance:
    dtype: str
    forward: float  # relative to max(1, max |spec|) of the array
    gradient: float  # relative to the example's largest spec gradient
    fd: float  # finite differences, relative to max(G, ‖g_block‖)
    fd_step: float  # h of the central differences

    def describe(self) -> str:
        return (f"outputs {self.forward:.0e} x max(1, |spec|), gradients {self.gradient:.0e} x "
                f"the largest spec gradient, finite differences {self.fd:.0e} (h = {self.fd_step:.0e})")


TOLERANCES = {
    # float64: round-off of these small problems is ~1e-15 relative; 1e-9 leaves six
    # orders for different summation orders and still sees any wrong term
    "float64": Tolerance("float64", forward=1e-9, gradient=1e-8, fd=1e-6, fd_step=1e-5),
    # float32: eps = 1.2e-7; measured worst 1.2e-6 (outputs) and 1.9e-6 (gradients) over
    # correct float32 subjects (docs/verify.md); a wrong term moves them by 1e-2 or more
    "float32": Tolerance("float32", forward=2e-5, gradient=2e-5, fd=1e-2, fd_step=3e-3),
}


def tolerance(dtype) -> Tolerance:
    name = np.dtype(dtype).name
    return TOLERANCES["float32" if name in ("float32", "float16", "bfloat16") else "float64"]


@dataclass(frozen=True)
class Misfit:
    """A value the subject returned in another form than its convention's (d2l's outputs
    stacked (T, B, V) where the book concatenates them, (T*B, V)): compared with anything,
    it is a difference with this message."""

    message: str  # "has shape (3, 2, 5); d2l's functions return ..."
    value: np.ndarray | None = field(default=None, compare=False)  # float64: the array as
    #                            returned, when it is numbers (the diagnosis reads its layout)
    layout: str = ""  # the layout mistake it is, when its numbers are right ("outputs-stacked")


@dataclass(frozen=True)
class Quantity:
    """One array a subject returns, as the report names it."""

    name: str  # the subject's name: "dWx", "h", "weight_ih_l0.grad", "loss"
    role: str  # "output" | "state" | "loss" | "grad" | "dinput" | "dstate"
    time_axis: int | None = None
    batch_axis: int | None = None
    block: Block | None = None  # a fused weight's layout: localises the gate block
    clip: float | None = None  # min-char-rnn: the subject may clip to [-clip, clip]
    index: int = 0  # state / dstate: which part (0: H, 1: C)

    @property
    def is_gradient(self) -> bool:
        return self.role in ("grad", "dinput", "dstate")


def gradient_scale(want: dict, quantities: dict) -> float:
    """G: the largest |entry| over every gradient the spec gives for the example."""
    vals = [float(np.abs(np.asarray(want[k])).max(initial=0.0))
            for k, q in quantities.items() if q.is_gradient and k in want]
    return max(vals, default=0.0)


def _steps(idx) -> str:
    idx = list(idx)
    runs, start = [], None
    for i, t in enumerate(idx):
        if start is None:
            start = t
        if i + 1 == len(idx) or idx[i + 1] != t + 1:
            runs.append(f"{start}" if start == t else f"{start}-{t}")
            start = None
    return ", ".join(runs)


def _bound(q: Quantity, want: np.ndarray, tol: Tolerance, G: float | None) -> tuple[float, float]:
    """(rtol, scale): the tolerance is rtol x scale, G (the largest spec gradient) for a
    gradient, max(1, |want|) for an output."""
    if q.is_gradient:
        scale = G if G is not None else float(np.abs(want).max(initial=0.0))
        return tol.gradient, (scale if scale > 0 else 1.0)
    return tol.forward, max(1.0, float(np.abs(want).max(initial=0.0)))


def agrees(q: Quantity, got, want, tol: Tolerance, G: float | None = None) -> bool:
    """``compare(...) is None``, without building the Difference: the diagnosis asks it of
    hundreds of known mistakes for every array."""
    if isinstance(got, Misfit):
        return False
    want = np.asarray(want, dtype=np.float64)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if got.shape != want.shape:
        return False
    if got.size == 0:
        return True
    rtol, scale = _bound(q, want, tol, G)
    atol = rtol * scale
    err = np.abs(got - want)
    if q.clip is not None:
        err = np.minimum(err, np.abs(got - np.clip(want, -q.clip, q.clip)))
    # NaN where want is finite fails (NaN <= atol is False); inf - inf (both infinite) fails too
    return bool(np.all(err <= atol))


def compare(q: Quantity, got, want, tol: Tolerance, G: float | None = None,
            against: str = "spec") -> Difference | None:
    """A Difference when ``got`` is not ``want`` to the tolerance, else None."""
    if isinstance(got, Misfit):
        return Difference(q.name, q.role, got.message)
    want = np.asarray(want, dtype=np.float64)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return Difference(q.name, q.role, f"is not an array of numbers ({type(got).__name__}: {exc})")
    if got.shape != want.shape:
        return Difference(q.name, q.role, f"has shape {got.shape}, expected {want.shape}")
    rtol, scale = _bound(q, want, tol, G)
    rule = (f"{rtol * scale:.1e} = {rtol:.0e} x G, G = {scale:.3g}" if q.is_gradient
            else f"{rtol * scale:.1e} = {rtol:.0e} x {scale:.3g}")
    atol = rtol * scale
    bad_finite = ~np.isfinite(got) & np.isfinite(want)
    err = np.abs(got - want)  # same shape
    if q.clip is not None:  # min-char-rnn's np.clip(d, -5, 5): the clipped value passes too
        err = np.minimum(err, np.abs(got - np.clip(want, -q.clip, q.clip)))
    err = np.where(np.isfinite(err), err, np.inf)
    if err.size == 0 or (err.max() <= atol and not bad_finite.any()):
        return None
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    denom = float(np.abs(want).max(initial=0.0))
    d = Difference(q.name, q.role, "differs from the " + against,
                   worst_abs=float(err[worst]), worst_rel=float(err[worst] / denom) if denom else float("inf"),
                   at=tuple(int(i) for i in worst), got=float(got[worst]) if np.isfinite(got[worst]) else str(got[worst]),
                   want=float(want[worst]), tolerance=rule)
    if q.block is not None and len(q.block.parts) > 1:
        d.gates = [label for label, sl in block_slices(q.block, err.shape) if err[sl].max() > atol]
    if q.time_axis is not None and err.ndim > q.time_axis and err.shape[q.time_axis] > 1:
        T = err.shape[q.time_axis]
        per_t = np.moveaxis(err, q.time_axis, 0).reshape(T, -1).max(axis=1)  # (T,)
        bad = [t for t in range(T) if per_t[t] > atol]
        d.steps, d.T = bad, T
        steps = f"time step{'s' if len(bad) > 1 else ''} {_steps(bad)} of 0-{T - 1}"
        if bad and len(bad) < T:
            d.detail = (f"{steps} differ{'' if len(bad) > 1 else 's'}; the first is {min(bad)}"
                        if q.role in ("output", "state") else
                        f"{steps} differ{'' if len(bad) > 1 else 's'}; the backward pass runs "
                        f"from step {T - 1} down and first differs at step {max(bad)}")
        elif bad:
            d.detail = f"every time step 0-{T - 1} differs"
    return d
