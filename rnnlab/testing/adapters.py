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


class SubjectEnded(BaseException):
    """The subject ended or hung the process that runs it (``sys.exit``, ``os._exit``, a
    signal, ``KeyboardInterrupt``, a call past its time limit): a failure of the subject
    (exit 1) after which nothing more of it can run. A BaseException, so that Hypothesis
    does not shrink it: there is no process left to run a smaller example in."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line


# Set by the child process that runs a subject (isolation.py): called with the name of
# every call into the subject just before it is made, so that a call that hangs or ends
# the process can be named by rnnlab's process.
CALL_HOOK: Callable | None = None
# In rnnlab's own process the subject's prints are swallowed (the report owns stdout); the
# child lets them reach its file descriptors, which rnnlab's process captures and shows.
SWALLOW_PRINTS = True


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
        self.mutated: list = []  # (name, call) of each array the subject changed in place

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

    def observe_many(self, problems: list, grads: bool) -> list:
        """``observe`` on each problem in turn (for a subject in a child process, one
        request instead of one per problem)."""
        return [self.observe(p, grads) for p in problems]

    def observe_chain(self, p: Problem, bounds: list, grads: bool) -> list:
        """The windows [a, b) of ``p`` run one after another, each from the final state the
        subject returned for the window before; with ``grads``, then backwards, each window
        given as dState the initial-state gradient the subject returned for the window
        after it. Returns each window's observation (the backward pass's, with grads)."""
        states, s, fwd = [], p.state0, []
        for a, b in bounds:
            states.append(s)
            o = self.observe(p.window(a, b, state0=s), grads=False)
            fwd.append(o)
            s = tuple(f64(x) for x in self.final_state(o))
        if not grads:
            return fwd
        parts, d = [None] * len(bounds), p.dState
        for k in reversed(range(len(bounds))):
            a, b = bounds[k]
            o = self.observe(p.window(a, b, state0=states[k], dState=d), grads=True)
            parts[k] = o
            d = tuple(f64(x) for x in self.initial_grad(o))
        return parts

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

    def call(self, what: str, fn: Callable, *args, watch: dict | None = None):
        """Call the subject: its exceptions become SubjectRaised, its prints are swallowed.
        ``watch``: {the subject's name: an array or tensor it was given}; one it changes in
        place is added to ``self.mutated`` as (name, call), for the ``unchanged`` property."""
        if CALL_HOOK is not None:
            CALL_HOOK(what)
        before = {k: _snapshot(v) for k, v in (watch or {}).items()}
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf) if SWALLOW_PRINTS else contextlib.nullcontext(), \
                    warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                return fn(*args)
        except (KeyboardInterrupt, SystemExit, SubjectRaised):
            raise
        except Exception as exc:  # noqa: BLE001: anything the subject raises is its failure
            raise SubjectRaised(f"{what} raised {exc_text(exc)}"
                                f"{where(exc, self.source)}") from None
        finally:
            self.printed += buf.getvalue().count("\n")
            for k, old in before.items():
                if old is not None and not _same(old, _snapshot(watch[k])):
                    self.mutated.append((k, what))

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
        raw = getattr(self, "last_raw", obs)
        self.dtype = lowest_dtype(raw.values() if isinstance(raw, dict) else raw)
        if isinstance(raw, dict):  # NumPy arrays by name: the subject was given float64
            narrowed = [k for k, v in raw.items() if isinstance(v, np.ndarray)
                        and v.dtype.kind == "f" and v.dtype.itemsize < 8]
            if narrowed:
                self.notes.append(
                    f"your code returns float32 for float64 inputs ({', '.join(narrowed)}): it is "
                    "held to float32's tolerances, 2e-5, not float64's 1e-9, and a gradient check in "
                    "float64 (CS231n's rel_error, ~1e-8) would see its round-off")


def perturbed_losses(arrays: dict, loss: Callable, deltas: list) -> list:
    """[(loss at x + δ, loss at x - δ)] for each (name, δ) of ``deltas``, x the array
    ``arrays[name][0]`` (changed in place for each evaluation, then restored)."""
    out = []
    for name, delta in deltas:
        arr = arrays[name][0]
        orig = arr.copy()
        arr[...] = orig + delta
        plus = loss()
        arr[...] = orig - delta
        minus = loss()
        arr[...] = orig
        out.append((plus, minus))
    return out


def lowest_dtype(arrays) -> str:
    """float32 if any returned float array is float32 (or less), else float64."""
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is not None and str(dt).replace("torch.", "") in ("float32", "float16", "bfloat16"):
            return "float32"
    return "float64"


def f64(a, name: str | None = None) -> np.ndarray:
    """A subject's array (NumPy, or anything np.asarray takes) as float64. Complex numbers
    (their imaginary part would be dropped), strings and objects are refused by name."""
    if isinstance(a, (str, bytes)):
        raise SubjectRaised(f"{name or 'a result'} is a string ({shown_value(a)}), expected an "
                            "array of real numbers")
    if hasattr(a, "detach"):  # a torch tensor that slipped through
        t = a.detach().cpu()
        if getattr(t, "is_complex", lambda: False)():
            raise SubjectRaised(f"{name or 'a result'} is a complex tensor ({t.dtype}), expected "
                                "real numbers")
        a = t.numpy()
    arr = np.asarray(a) if not isinstance(a, np.ndarray) else a
    kind = arr.dtype.kind
    if kind == "c":
        raise SubjectRaised(f"{name or 'a result'} is complex ({arr.dtype}), expected real "
                            "numbers: its imaginary part would be dropped")
    if kind in "OUSVM":
        what = {"O": "of Python objects", "U": "of strings", "S": "of bytes", "V": "of records",
                "M": "of dates"}.get(kind, "")
        raise SubjectRaised(f"{name or 'a result'} is an array {what} (dtype {arr.dtype}), "
                            "expected an array of real numbers")
    return np.asarray(arr, dtype=np.float64)


def shown_value(v, n: int = 40) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _snapshot(a):
    """A copy of an array or tensor the subject is given, or None for anything else."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy().copy()
    if isinstance(a, np.ndarray):
        return a.copy()
    return None


def _same(a: np.ndarray, b: np.ndarray | None) -> bool:
    return b is not None and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


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
