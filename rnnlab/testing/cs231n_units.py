"""The CS231n convention: assignment 3's forward/backward pairs (``rnn_step_forward`` /
``rnn_step_backward``, ``rnn_forward`` / ``rnn_backward``, and the same for ``lstm``).

``cs231n_units`` finds the pairs a module offers, each a :class:`CS231nUnit`; a forward
function without its backward is checked forward only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SubjectError
from . import conventions as cv
from .adapters import Unit, _check_signature, _grad_quantities, f64
from .compare import Quantity
from .spec import SpecResult
from .strategies import Constraints, Problem

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
        res = self.call(self.fwd_name, self.forward, *[args[a] for a in self.fargs],
                        watch={a: args[a] for a in self.fargs})
        return self.unpack(self.fwd_name, res, self.fret, rest=True)

    def observe(self, p: Problem, grads: bool) -> dict:
        args = self._inputs(p)
        outs, cache = self._run_forward(args)
        raw = dict(zip(self.fret, outs))
        if grads and self.has_grads:
            up = self._upstream(p)
            res = self.call(self.bwd_name, self.backward, *up, cache,
                            watch=dict(zip(self.bargs, up)))
            raw.update(zip(self.bret, self.unpack(self.bwd_name, res, self.bret)))
        self.last_raw = dict(raw)  # by name: probe's dtype note names them
        return {k: f64(v, k) for k, v in raw.items()}

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
    if cell not in (None, "rnn", "lstm"):
        raise SubjectError(f"CS231n's assignment has rnn and lstm functions only; --cell {cell} "
                           "does not apply (cs231n convention)")
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
