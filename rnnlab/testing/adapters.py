"""Convention adapters: run a subject on a spec problem and name what it returns.

A :class:`Unit` is one thing under test, in one convention: a CS231n forward/backward
pair, a d2l ``lstm(inputs, state, params)``, a ``torch.nn`` module class, min-char-rnn's
``lossFun``, or a :class:`Protocol` object. It knows

* ``quantities()``: the arrays the subject returns, by the subject's own names;
* ``observe(problem, grads)``: call the subject on a problem (the spec's weights put into
  the subject's layout by ``conventions.py``) and collect those arrays as float64;
* ``expect(problem, result, grads)``: the same arrays computed from the spec's
  ``SpecResult`` (or a known mistake's), in the subject's layout.

The properties compare the two; they never look inside a convention. The torch
conventions are in ``torch_units.py`` (torch is imported only there).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SubjectError
from . import conventions as cv
from .compare import Misfit, Quantity
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


# ------------------------------------------------------------------------- CS231n

CS231N = {  # unit: (forward, backward, forward args, backward args, forward returns, backward returns)
    "rnn_step": ("rnn_step_forward", "rnn_step_backward", ("x", "prev_h", "Wx", "Wh", "b"),
                 ("dnext_h", "cache"), ("next_h",), ("dx", "dprev_h", "dWx", "dWh", "db")),
    "rnn": ("rnn_forward", "rnn_backward", ("x", "h0", "Wx", "Wh", "b"), ("dh", "cache"),
            ("h",), ("dx", "dh0", "dWx", "dWh", "db")),
    "lstm_step": ("lstm_step_forward", "lstm_step_backward",
                  ("x", "prev_h", "prev_c", "Wx", "Wh", "b"), ("dnext_h", "dnext_c", "cache"),
                  ("next_h", "next_c"), ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")),
    "lstm": ("lstm_forward", "lstm_backward", ("x", "h0", "Wx", "Wh", "b"), ("dh", "cache"),
             ("h",), ("dx", "dh0", "dWx", "dWh", "db")),
}
CS231N_NAMES = tuple(n for v in CS231N.values() for n in v[:2])


class CS231nUnit(Unit):
    """CS231n assignment 3's functions: row vectors, batch-major (N, T, D), fused gates in
    the order i, f, o, g; ``lstm_forward`` starts from c0 = 0 and takes h0 only."""

    convention = "cs231n"

    def __init__(self, unit: str, forward, backward, source=None):
        self.key = unit
        self.fwd_name, self.bwd_name, self.fargs, self.bargs, self.fret, self.bret = CS231N[unit]
        cell = unit.split("_")[0]
        step = unit.endswith("_step")
        lstm = cell == "lstm"
        cons = Constraints(cell, T=(1, 1) if step else (1, 6),
                           state_in=(True, step) if lstm else (True,),
                           state_upstream=(not step, step) if lstm else (not step,))
        name = self.fwd_name + (f" / {self.bwd_name}" if backward is not None else "")
        super().__init__(name, cons, cv.cs231n_layout(cell), source)
        self.forward, self.backward = forward, backward
        self.step = step
        self.kind = "handwritten" if backward is not None else "forward-only"
        if backward is None:
            self.notes.append(f"{self.bwd_name} not found: gradients are not checked")
        if lstm and not step:
            self.notes.append("lstm_forward starts from c0 = 0 (the convention), so a sequence "
                              "cannot be continued from a given cell state")

    def quantities(self) -> dict:
        q = {}
        if self.step:
            q["next_h"] = Quantity("next_h", "output", batch_axis=0)
            if self.cell == "lstm":
                q["next_c"] = Quantity("next_c", "state", batch_axis=0, index=1)
        else:
            q["h"] = Quantity("h", "output", time_axis=1, batch_axis=0)
        if self.has_grads:
            q["dx"] = Quantity("dx", "dinput", time_axis=None if self.step else 1, batch_axis=0)
            for k, n in enumerate(self.bret[1:-3]):  # dprev_h, dprev_c | dh0
                q[n] = Quantity(n, "dstate", batch_axis=0, index=k)
            q.update(_grad_quantities(self.layout))
        return q

    def final_state_names(self) -> tuple:
        return ("next_h", "next_c")[: self.cons.n_state] if self.step else ("h",)

    def final_state(self, obs: dict) -> tuple:
        if self.step:
            return super().final_state(obs)
        return (f64(obs["h"])[:, -1],)

    def initial_grad_names(self):
        return tuple(self.bret[1:-3]) if self.has_grads else None

    def _inputs(self, p: Problem) -> dict:
        W = cv.to_subject(self.layout, p.params)
        if self.step:
            args = {"x": p.X[0], "prev_h": p.state0[0]}
            if self.cell == "lstm":
                args["prev_c"] = p.state0[1]
        else:
            args = {"x": p.X.transpose(1, 0, 2), "h0": p.state0[0]}  # (N, T, D)
        args.update(W)
        return {k: np.array(v) for k, v in args.items()}  # copies: the subject may write

    def _upstream(self, p: Problem) -> list:
        if self.step:
            up = [p.dOut[0] + p.dState[0]]  # dnext_h
            if self.cell == "lstm":
                up.append(p.dState[1])  # dnext_c
            return [np.array(u) for u in up]
        dh = p.dOut.transpose(1, 0, 2).copy()  # (N, T, H)
        dh[:, -1] += p.dState[0]  # h[:, -1] is the final state
        return [dh]

    def _run_forward(self, args: dict):
        res = self.call(self.fwd_name, self.forward, *[args[a] for a in self.fargs])
        return self.unpack(self.fwd_name, res, self.fret, rest=True)

    def observe(self, p: Problem, grads: bool) -> dict:
        args = self._inputs(p)
        outs, cache = self._run_forward(args)
        raw = dict(zip(self.fret, outs))
        if grads and self.has_grads:
            res = self.call(self.bwd_name, self.backward, *self._upstream(p), cache)
            raw.update(zip(self.bret, self.unpack(self.bwd_name, res, self.bret)))
        self.last_raw = list(raw.values())
        return {k: f64(v) for k, v in raw.items()}

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        if self.step:
            e = {"next_h": res.Hs[0]}
            if self.cell == "lstm":
                e["next_c"] = res.state[1]
        else:
            e = {"h": res.Hs.transpose(1, 0, 2)}
        if grads and self.has_grads:
            e["dx"] = res.dX[0] if self.step else res.dX.transpose(1, 0, 2)
            for k, n in enumerate(self.bret[1:-3]):
                e[n] = res.dstate0[k]
            e.update({f"d{k}": v for k, v in cv.grads_to_subject(self.layout, res.grads).items()})
        return e

    def fd_setup(self, p: Problem):
        if not self.has_grads:
            return None
        args = self._inputs(p)
        up = self._upstream(p)

        def loss() -> float:
            outs, _ = self._run_forward({k: v.copy() for k, v in args.items()})
            return float(sum((f64(o) * u).sum() for o, u in zip(outs, up)))

        qs = self.quantities()
        grad_of = {"x": "dx", "prev_h": "dprev_h", "prev_c": "dprev_c", "h0": "dh0",
                   "Wx": "dWx", "Wh": "dWh", "b": "db"}
        return {grad_of[a]: (args[a], qs[grad_of[a]]) for a in self.fargs}, loss


def cs231n_units(module, cell: str | None, only: str | None, source: Path | None) -> tuple:
    """The CS231n units a module offers: ([Unit], [found names]). ``only`` restricts to one
    function name (FILE:NAME), ``cell`` to rnn or lstm."""
    found = [n for n in CS231N_NAMES if callable(getattr(module, n, None))]
    label = source.name if source is not None else getattr(module, "__name__", "the module")
    if not found:
        raise SubjectError(f"{label} has none of {', '.join(CS231N_NAMES)} (cs231n convention)")
    units = []
    for key, (fwd, bwd, fargs, bargs, *_rest) in CS231N.items():
        if cell is not None and key.split("_")[0] != cell:
            continue
        if only is not None and only not in (fwd, bwd):
            continue
        f, b = getattr(module, fwd, None), getattr(module, bwd, None)
        if not callable(f):
            continue
        _check_signature(f, fargs, fwd, "cs231n")
        if callable(b):
            _check_signature(b, bargs, bwd, "cs231n")
        units.append(CS231nUnit(key, f, b if callable(b) else None, source))
    if not units:
        want = f"{cell} " if cell else ""
        what = only or f"{want}forward function"
        raise SubjectError(f"{label} has no {what} to check (cs231n convention: "
                           f"{', '.join(n for n in CS231N_NAMES if cell is None or n.startswith(cell))}); "
                           f"found {', '.join(found)}")
    return units, found


# ------------------------------------------------------------------- d2l (NumPy)

D2L_ARGS = ("inputs", "state", "params")


class D2LUnit(Unit):
    """d2l's ``rnn|lstm|gru(inputs, state, params)``: inputs (T, B, V) one-hot, time-major;
    state a tuple of (B, H); params in ``get_params`` order; returns (cat(outputs), state)
    with outputs (T*B, V). This class runs NumPy functions (forward only); the torch
    subclass in ``torch_units.py`` adds gradients by the subject's own autograd."""

    convention = "d2l"
    kind = "forward-only"

    def __init__(self, fn, cell: str, name: str, source=None):
        cons = Constraints(cell, one_hot=True, head="linear", gru_form="d2l")
        super().__init__(name, cons, cv.d2l_layout(cell), source)
        self.fn = fn
        self.order = (*cv.D2L_ORDER[cell], "W_hq", "b_q")
        self.state_names = ("H", "C")[: cons.n_state]
        if self.kind == "forward-only":
            self.notes.append("a NumPy function has no gradients to check: forward properties only")

    def quantities(self) -> dict:
        q = {"outputs": Quantity("outputs", "output", time_axis=0, batch_axis=1)}
        for k, s in enumerate(self.state_names):
            q[f"{s}_T"] = Quantity(f"{s}_T", "state", batch_axis=0, index=k)
        if self.has_grads:
            q.update(_grad_quantities(self.layout, prefix="", suffix=".grad"))
            for k, s in enumerate(self.state_names):
                q[f"{s}_0.grad"] = Quantity(f"{s}_0.grad", "dstate", batch_axis=0, index=k)
        return q

    def final_state_names(self) -> tuple:
        return tuple(f"{s}_T" for s in self.state_names)

    def initial_grad_names(self):
        return tuple(f"{s}_0.grad" for s in self.state_names) if self.has_grads else None

    def _outputs(self, out, p: Problem):
        """(T*B, V) -> (T, B, V), so a difference is told by time step; any other shape
        (the outputs stacked, (T, B, V), instead of concatenated) is a Misfit that every
        comparison reports."""
        T, B, V = p.X.shape
        try:
            out = f64(out)
        except (TypeError, ValueError) as exc:
            return Misfit(f"is not an array of numbers ({type(out).__name__}: {one_line(exc)})")
        if out.shape == (T * B, V):
            return out.reshape(T, B, V)
        return Misfit(f"has shape {out.shape}; d2l's functions return the steps' outputs "
                      f"concatenated, torch.cat(outputs, dim=0) of shape (T*B, V) = {(T * B, V)}")

    def _unpack_result(self, res, p):
        out, state = self.unpack(self.name, res, ("outputs", "state"))
        if not isinstance(state, (tuple, list)) or len(state) != len(self.state_names):
            raise SubjectRaised(f"{self.name} returned a state of {type(state).__name__}"
                                f"{'' if not isinstance(state, (tuple, list)) else f' with {len(state)} arrays'}, "
                                f"expected a tuple ({', '.join(self.state_names)})")
        return out, list(state)

    def observe(self, p: Problem, grads: bool) -> dict:
        dt = np.dtype(self.dtype)
        W = cv.to_subject(self.layout, p.params)
        params = [W[n].astype(dt) for n in self.order]
        state = tuple(s.astype(dt) for s in p.state0)
        res = self.call(self.name, self.fn, p.X.astype(dt), state, params)
        out, st = self._unpack_result(res, p)
        obs = {"outputs": self._outputs(out, p)}
        for s, v in zip(self.state_names, st):
            obs[f"{s}_T"] = f64(v)
        self.last_raw = [out, *st]
        return obs

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"outputs": res.Y}
        for k, s in enumerate(self.state_names):
            e[f"{s}_T"] = res.state[k]
        if grads and self.has_grads:
            e.update({f"{k}.grad": v for k, v in cv.grads_to_subject(self.layout, res.grads).items()})
            for k, s in enumerate(self.state_names):
                e[f"{s}_0.grad"] = res.dstate0[k]
        return e



def find_d2l(module, cell, only, source) -> tuple:
    """The d2l functions in a module: NAME, or any of rnn / lstm / gru (filtered by cell)."""
    label = source.name if source is not None else getattr(module, "__name__", "the module")
    if only is not None:
        fn = getattr(module, only, None)
        if not callable(fn):
            raise SubjectError(f"{label} has no function {only!r} (d2l convention: "
                               f"{only}(inputs, state, params))")
        c = cell or next((c for c in ("lstm", "gru", "rnn") if c in only.lower()), None)
        if c is None:
            raise SubjectError(f"cannot tell whether {only} is an rnn, lstm or gru: give --cell")
        pairs = [(only, fn, c)]
    else:
        names = [c for c in ("rnn", "lstm", "gru") if cell in (None, c)]
        pairs = [(n, getattr(module, n), n) for n in names if callable(getattr(module, n, None))]
        if not pairs:
            what = f"no function {names[0]}" if len(names) == 1 else \
                f"none of the functions {', '.join(names)}"
            hint = f"; name yours with {label}:NAME" if source is not None else ""
            raise SubjectError(f"{label} has {what} (d2l convention: {names[0]}(inputs, state, "
                               f"params), as d2l names them){hint}")
    for n, fn, _ in pairs:
        _check_signature(fn, D2L_ARGS, n, "d2l")
    return pairs


# ----------------------------------------------------------------- min-char-rnn

MIN_CHAR_GLOBALS = ("Wxh", "Whh", "Why", "bh", "by")
MIN_CHAR_RETURNS = ("loss", "dWxh", "dWhh", "dWhy", "dbh", "dby", "hs[len(inputs)-1]")
CLIP = 5.0  # min-char-rnn clips every gradient to [-5, 5] inside lossFun


class MinCharUnit(Unit):
    """Karpathy's min-char-rnn: ``lossFun(inputs, targets, hprev)`` reads the globals Wxh
    (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1) (column vectors), takes lists of
    token ids, sums the softmax cross-entropy over the steps, and returns
    ``loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs)-1]``. It clips the gradients to
    [-5, 5] in place: an entry the spec puts beyond ±5 passes clipped or not."""

    convention = "min-char-rnn"

    def __init__(self, module, fn, name: str = "lossFun", source=None):
        cons = Constraints("rnn", B=(1, 1), one_hot=True, head="softmax",
                           state_in=(True,), state_upstream=(False,))
        super().__init__(name, cons, cv.min_char_layout(), source)
        self.module, self.fn = module, fn

    def quantities(self) -> dict:
        q = {"loss": Quantity("loss", "loss"),
             "hs[len(inputs)-1]": Quantity("hs[len(inputs)-1]", "state", batch_axis=1)}
        q.update(_grad_quantities(self.layout, clip=CLIP))
        return q

    def final_state_names(self) -> tuple:
        return ("hs[len(inputs)-1]",)

    def _as_state(self, a) -> np.ndarray:
        return f64(a).reshape(-1, 1).T  # (H, 1) -> (1, H)

    def _set(self, W: dict, V: int, H: int) -> None:
        for n in MIN_CHAR_GLOBALS:
            setattr(self.module, n, W[n])
        self.module.vocab_size, self.module.hidden_size = V, H

    def _call(self, p: Problem, W: dict):
        self._set({k: np.array(v) for k, v in W.items()}, p.X.shape[2], p.state0[0].shape[1])
        inputs = [int(i) for i in p.ids[:, 0]]
        targets = [int(i) for i in p.targets[:, 0]]
        hprev = np.array(p.state0[0].T)  # (H, 1)
        res = self.call(self.name, self.fn, inputs, targets, hprev)
        return self.unpack(self.name, res, MIN_CHAR_RETURNS)

    def observe(self, p: Problem, grads: bool) -> dict:
        vals = self._call(p, cv.to_subject(self.layout, p.params))
        self.last_raw = list(vals[1:])
        obs = {n: f64(v) for n, v in zip(MIN_CHAR_RETURNS, vals)}
        if not grads:
            obs = {k: v for k, v in obs.items() if k in ("loss", MIN_CHAR_RETURNS[-1])}
        return obs

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"loss": np.float64(res.loss), "hs[len(inputs)-1]": res.state[0].T}
        if grads:
            e.update({f"d{k}": v for k, v in cv.grads_to_subject(self.layout, res.grads).items()})
        return e

    def fd_setup(self, p: Problem):
        W = {k: np.array(v) for k, v in cv.to_subject(self.layout, p.params).items()}

        def loss() -> float:
            return float(f64(self._call(p, W)[0]))

        qs = self.quantities()
        return {f"d{n}": (W[n], qs[f"d{n}"]) for n in MIN_CHAR_GLOBALS}, loss


# --------------------------------------------------------------------- protocol


@dataclass
class Protocol:
    """Any other implementation (JAX, CuPy, a C extension...): give rnnlab callables.

    ``forward(params, X, state) -> (Hs, state_T)``: ``params`` a dict of your arrays
    (named and laid out as ``layout`` says; by default rnnlab's per-gate names W_xi, W_hi,
    b_i, ...), X (T, B, D) time-major, ``state`` a tuple of (B, H) arrays ((H,) or (H, C));
    Hs (T, B, H) the hidden state of every step, ``state_T`` the final state tuple.

    ``backward(params, X, state, dHs, dstate_T) -> (grads, dX, dstate_0)`` (optional): the
    gradients of L = Σ Hs ⊙ dHs + Σ state_T ⊙ dstate_T, a dict keyed like ``params``,
    dX (T, B, D) and a tuple like ``state``.

    ``layout``: {your name: conventions.Block}, e.g.
    ``{"Wx": fused("W_x", "ifgo", "lstm"), ...}``; ``from_numpy`` turns the NumPy arrays
    rnnlab makes into yours (``jnp.asarray``); whatever you return goes through
    ``np.asarray``. ``dtype`` is the dtype your code computes in when that is not the
    returned arrays' (set "float32" for a float32 kernel that returns float64).
    """

    cell: str
    forward: Callable
    backward: Callable | None = None
    layout: dict | None = None
    gru_form: str = "d2l"
    name: str = "subject"
    from_numpy: Callable = field(default=lambda a: a)
    dtype: str | None = None


class ProtocolUnit(Unit):
    convention = "protocol"

    def __init__(self, proto: Protocol, source=None):
        if proto.cell not in ("rnn", "lstm", "gru"):
            raise SubjectError(f"Protocol.cell is {proto.cell!r}; expected rnn, lstm or gru")
        if proto.gru_form not in ("d2l", "torch"):
            raise SubjectError(f"Protocol.gru_form is {proto.gru_form!r}; expected d2l or torch")
        layout = proto.layout or cv.rnnlab_layout(proto.cell, proto.gru_form)
        cons = Constraints(proto.cell, gru_form=proto.gru_form)
        super().__init__(proto.name, cons, layout, source)
        self.proto = proto
        self.kind = "handwritten" if proto.backward is not None else "forward-only"
        self.state_names = ("H", "C")[: cons.n_state]
        if proto.backward is None:
            self.notes.append("no backward given: gradients are not checked")

    def quantities(self) -> dict:
        q = {"Hs": Quantity("Hs", "output", time_axis=0, batch_axis=1)}
        for k, s in enumerate(self.state_names):
            q[f"{s}_T"] = Quantity(f"{s}_T", "state", batch_axis=0, index=k)
        if self.has_grads:
            q.update(_grad_quantities(self.layout))
            q["dX"] = Quantity("dX", "dinput", time_axis=0, batch_axis=1)
            for k, s in enumerate(self.state_names):
                q[f"d{s}_0"] = Quantity(f"d{s}_0", "dstate", batch_axis=0, index=k)
        return q

    def final_state_names(self) -> tuple:
        return tuple(f"{s}_T" for s in self.state_names)

    def initial_grad_names(self):
        return tuple(f"d{s}_0" for s in self.state_names) if self.has_grads else None

    def _args(self, p: Problem, W: dict | None = None):
        conv = self.proto.from_numpy
        W = cv.to_subject(self.layout, p.params) if W is None else W
        return ({k: conv(np.array(v)) for k, v in W.items()}, conv(np.array(p.X)),
                tuple(conv(np.array(s)) for s in p.state0))

    def _forward(self, args):
        res = self.call("forward", self.proto.forward, *args)
        Hs, st = self.unpack("forward", res, ("Hs", "state_T"))
        if not isinstance(st, (tuple, list)) or len(st) != len(self.state_names):
            raise SubjectRaised(f"forward returned a state of {type(st).__name__}, expected a "
                                f"tuple ({', '.join(self.state_names)})")
        return Hs, list(st)

    def observe(self, p: Problem, grads: bool) -> dict:
        args = self._args(p)
        Hs, st = self._forward(args)
        obs = {"Hs": f64(Hs)}
        self.last_raw = [np.asarray(Hs), *[np.asarray(s) for s in st]]
        for s, v in zip(self.state_names, st):
            obs[f"{s}_T"] = f64(v)
        if grads and self.has_grads:
            conv = self.proto.from_numpy
            res = self.call("backward", self.proto.backward, *self._args(p), conv(np.array(p.dOut)),
                            tuple(conv(np.array(d)) for d in p.dState))
            g, dX, ds = self.unpack("backward", res, ("grads", "dX", "dstate_0"))
            if not isinstance(g, dict):
                raise SubjectRaised(f"backward returned grads as a {type(g).__name__}, expected a "
                                    f"dict keyed like params ({', '.join(self.layout)})")
            for n in self.layout:
                if n not in g:
                    raise SubjectRaised(f"backward returned no gradient for {n!r}")
                obs[f"d{n}"] = f64(g[n])
            obs["dX"] = f64(dX)
            for s, v in zip(self.state_names, ds):
                obs[f"d{s}_0"] = f64(v)
        return obs

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"Hs": res.Hs}
        for k, s in enumerate(self.state_names):
            e[f"{s}_T"] = res.state[k]
        if grads and self.has_grads:
            e.update({f"d{k}": v for k, v in cv.grads_to_subject(self.layout, res.grads).items()})
            e["dX"] = res.dX
            for k, s in enumerate(self.state_names):
                e[f"d{s}_0"] = res.dstate0[k]
        return e

    def fd_setup(self, p: Problem):
        if not self.has_grads:
            return None
        W = {k: np.array(v) for k, v in cv.to_subject(self.layout, p.params).items()}
        X = np.array(p.X)
        state = [np.array(s) for s in p.state0]

        def loss() -> float:
            conv = self.proto.from_numpy
            args = ({k: conv(v.copy()) for k, v in W.items()}, conv(X.copy()),
                    tuple(conv(s.copy()) for s in state))
            Hs, st = self._forward(args)
            return float((f64(Hs) * p.dOut).sum() + sum((f64(a) * d).sum() for a, d in zip(st, p.dState)))

        qs = self.quantities()
        arrays = {f"d{n}": (W[n], qs[f"d{n}"]) for n in W}
        arrays["dX"] = (X, qs["dX"])
        for k, s in enumerate(self.state_names):
            arrays[f"d{s}_0"] = (state[k], qs[f"d{s}_0"])
        return arrays, loss

    def probe(self) -> None:
        super().probe()
        if self.proto.dtype is not None:
            self.dtype = np.dtype(self.proto.dtype).name
