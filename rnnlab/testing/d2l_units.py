"""The d2l convention on NumPy arrays: ``rnn|lstm|gru(inputs, state, params)``, forward only.

``find_d2l`` finds the functions a module offers. :class:`D2LUnit` runs them; its torch
subclass, which checks gradients by the subject's own autograd, is in ``torch_units.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import SubjectError
from . import conventions as cv
from .adapters import (
    SubjectRaised,
    Unit,
    _check_signature,
    _grad_quantities,
    f64,
    one_line,
)
from .compare import Misfit, Quantity
from .spec import SpecResult
from .strategies import Constraints, Problem

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
            out = f64(out, "outputs")
        except (TypeError, ValueError) as exc:
            return Misfit(f"is not an array of numbers ({type(out).__name__}: {one_line(exc)})")
        if out.shape == (T * B, V):
            return out.reshape(T, B, V)
        return Misfit(f"has shape {out.shape}; d2l's functions return the steps' outputs "
                      f"concatenated, torch.cat(outputs, dim=0) of shape (T*B, V) = {(T * B, V)}",
                      value=out, layout="outputs-stacked" if out.shape == (T, B, V) else "")

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
        inputs = p.X.astype(dt)  # (T, B, V)
        res = self.call(self.name, self.fn, inputs, state, params,
                        # the state may be updated in place (H += ...), as the torch form allows
                        watch={"inputs": inputs, **dict(zip(self.order, params))})
        out, st = self._unpack_result(res, p)
        obs = {"outputs": self._outputs(out, p)}
        for s, v in zip(self.state_names, st):
            obs[f"{s}_T"] = f64(v, f"the final state's {s}")
        self.last_raw = {"outputs": out, **{f"{s}_T": v for s, v in zip(self.state_names, st)}}
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
