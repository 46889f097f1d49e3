"""Convention adapters: run a subject on a spec problem and name what it returns.

A :class:`Unit` is one thing under test, in one convention: a CS231n forward/backward
pair, a d2l ``lstm(inputs, state, params)``, a ``torch.nn`` module class, min-char-rnn's
``lossFun``, or a :class:`Protocol` object. It knows

* ``quantities()``: the arrays the subject returns, by the subject's own names;
* ``observe(problem, grads)``: call the subject on a problem (the spec's weights put into
  the subject's layout by ``conventions.py``) and collect those arrays as float64;
* ``expect(problem, result, grads)``: the same arrays computed from the spec's
  ``SpecResult`` (or a known mistake's), in the subject's layout.

The properties compare the two; they never look inside a convention. This module is the
base every convention shares: :class:`Unit`, :class:`SubjectRaised`, the signature check
and the conversions to float64. Each convention is a module of its own:

* ``cs231n_units.py``: CS231n's forward/backward functions;
* ``d2l_units.py``: d2l's functions on NumPy arrays;
* ``torch_units.py``: d2l's functions on tensors, and ``torch.nn`` module classes (torch
  is imported only there);
* ``minchar_units.py``: min-char-rnn's ``lossFun``;
* ``protocol_units.py``: a :class:`Protocol` of callables, for any other implementation.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import traceback
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SubjectError
from . import conventions as cv
from .compare import Quantity
from .spec import SpecResult
from .strategies import Constraints, Example, Problem, make_problem


class SubjectRaised(Exception):
    """The subject's code raised, or returned something of the wrong structure, on one
    example: a failure of the subject (exit 1), reported with where it happened."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def exc_text(exc: BaseException) -> str:
    """``ValueError: shapes (2,3) and (2,3) not aligned``; a bare ``assert`` is ``AssertionError``."""
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def where(exc: BaseException, source: Path | None) -> str:
    """' (at solution.py:42 in lstm_backward: da = np.hstack(...))': the innermost frame in
    the subject's file, with its line of code."""
    frames = traceback.extract_tb(exc.__traceback__)
    if source is not None:
        src = str(Path(source).resolve())
        mine = [f for f in frames if _same_file(f.filename, src)]
        if mine:
            f = mine[-1]
            code = " ".join((f.line or "").split())
            code = f": {code[:80]}{'...' if len(code) > 80 else ''}" if code else ""
            return f" (at {Path(f.filename).name}:{f.lineno} in {f.name}{code})"
    return ""


def _same_file(a: str, b: str) -> bool:
    try:
        return str(Path(a).resolve()) == b
    except OSError:
        return False


class Unit:
    """One subject in one convention (see the module docstring)."""

    convention = ""
    kind = "handwritten"  # how its gradients are made: handwritten | autograd | forward-only

    def __init__(self, name: str, cons: Constraints, layout: dict, source: Path | None = None):
        self.name = name
        self.cons = cons
        self.layout = layout
        self.source = source
        self.dtype = "float64"
        self.notes: list[str] = []
        self.printed = 0  # lines the subject printed (swallowed: the report owns stdout)

    # ---- capabilities
    @property
    def cell(self) -> str:
        return self.cons.cell

    @property
    def has_grads(self) -> bool:
        return self.kind != "forward-only"

    @property
    def chain_forward(self) -> bool:
        """Can a window start from a given state and hand its final state on?"""
        return self.cons.T[1] > 1 and all(self.cons.state_in)

    @property
    def chain_grads(self) -> bool:
        """... and, backwards, take a final-state gradient and return the initial state's?"""
        return (self.chain_forward and self.has_grads and all(self.cons.state_upstream)
                and self.initial_grad_names() is not None)

    def gate_order(self):
        return cv.gate_order(self.layout)

    # ---- to implement
    def quantities(self) -> dict:
        raise NotImplementedError

    def observe(self, p: Problem, grads: bool) -> dict:
        raise NotImplementedError

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        raise NotImplementedError

    def final_state_names(self) -> tuple:
        """Names of the final-state quantities (H, C), in state order."""
        raise NotImplementedError

    def initial_grad_names(self) -> tuple | None:
        """Names of the initial-state gradient quantities, or None."""
        return None

    def fd_setup(self, p: Problem):
        """For a hand-written backward: ({gradient name: (array to perturb, Quantity)},
        loss()) where loss() runs the subject's forward on the arrays as they are now."""
        return None

    # ---- helpers
    def final_state(self, obs: dict) -> tuple:
        """The final state as the spec's (B, H) arrays, from an observation."""
        return tuple(self._as_state(obs[n]) for n in self.final_state_names())

    def initial_grad(self, obs: dict) -> tuple:
        return tuple(self._as_state(obs[n]) for n in self.initial_grad_names())

    def _as_state(self, a) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    def forward_quantities(self) -> dict:
        return {k: q for k, q in self.quantities().items() if not q.is_gradient}

    def call(self, what: str, fn: Callable, *args):
        """Call the subject: its exceptions become SubjectRaised, its prints are swallowed."""
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), warnings.catch_warnings(), \
                    np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                return fn(*args)
        except (KeyboardInterrupt, SystemExit, SubjectRaised):
            raise
        except Exception as exc:  # noqa: BLE001: anything the subject raises is its failure
            raise SubjectRaised(f"{what} raised {exc_text(exc)}"
                                f"{where(exc, self.source)}") from None
        finally:
            self.printed += buf.getvalue().count("\n")

    def unpack(self, what: str, result, names: tuple, rest: bool = False):
        """Check a subject's return value has the convention's structure: ``names`` values
        (and, with ``rest``, a cache after them)."""
        n = len(names)
        if not isinstance(result, (tuple, list)) or len(result) < n + (1 if rest else 0):
            got = (f"{len(result)} values" if isinstance(result, (tuple, list))
                   else f"a {type(result).__name__}")
            expect = ", ".join(names) + (", cache" if rest else "")
            got = got.replace("a ndarray", "an ndarray")
            raise SubjectRaised(f"{what} returned {got}, expected ({expect})")
        vals = list(result[:n])
        if rest:
            cache = result[n:]
            return vals, cache[0] if len(cache) == 1 else tuple(cache)
        return vals

    def probe(self) -> None:
        """Run once on a small problem to learn the dtype the subject computes in. A
        structural misfit (wrong number of return values) is a SubjectError: the code
        does not fit the convention. Its exceptions are left to the properties to report."""
        cons = self.cons
        ex = Example(min(2, cons.B[1]), min(3, cons.T[1]), max(3, cons.D[0]), 2, 0, cons.one_hot)
        try:
            obs = self.observe(make_problem(cons, ex), grads=self.has_grads)
        except SubjectRaised as exc:
            if " returned " in exc.line and " raised " not in exc.line:
                raise SubjectError(f"{exc.line} ({self.convention} convention)") from None
            return
        self.dtype = lowest_dtype(getattr(self, "last_raw", obs.values()))


def lowest_dtype(arrays) -> str:
    """float32 if any returned float array is float32 (or less), else float64."""
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is not None and str(dt).replace("torch.", "") in ("float32", "float16", "bfloat16"):
            return "float32"
    return "float64"


def f64(a) -> np.ndarray:
    """A subject's array (NumPy, or anything np.asarray takes) as float64."""
    if hasattr(a, "detach"):  # a torch tensor that slipped through
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _grad_quantities(layout: dict, prefix: str = "d", suffix: str = "", clip=None) -> dict:
    return {f"{prefix}{n}{suffix}": Quantity(f"{prefix}{n}{suffix}", "grad", block=b, clip=clip)
            for n, b in layout.items()}


def _check_signature(fn, names: tuple, what: str, convention: str) -> None:
    """Refuse a function that cannot be called with the convention's positional arguments."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C extension: let the call decide
        return
    try:
        sig.bind(*names)
    except TypeError:
        raise SubjectError(f"{what}({', '.join(names)}) expected ({convention} convention); "
                           f"{what} takes {sig}") from None
