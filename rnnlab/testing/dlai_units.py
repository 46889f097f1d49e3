"""The deeplearning.ai convention: Sequence Models, week 1, "Building your Recurrent Neural
Network - Step by Step".

Column vectors, batch in the middle: ``x`` is (n_x, m, T_x), the hidden states ``a`` are
(n_a, m, T_x), and the weights sit in a ``parameters`` dict. In rnnlab's notation (row
vectors, X_t (B, D), H_t (B, H)) that is a = Hᵀ and::

    rnn   Wax = W_xhᵀ (n_a, n_x)   Waa = W_hhᵀ (n_a, n_a)   ba = b_hᵀ (n_a, 1)
          a⟨t⟩ = tanh(Waa a⟨t-1⟩ + Wax x⟨t⟩ + ba)
    lstm  Wf = [W_hfᵀ | W_xfᵀ] (n_a, n_a + n_x), bf = b_fᵀ (n_a, 1); the same for Wi, Wc
          (the candidate c̃), Wo: every gate reads concat = [a⟨t-1⟩; x⟨t⟩]
    both  ŷ⟨t⟩ = softmax(Wya a⟨t⟩ + by), Wya (n_y, n_a), by (n_y, 1); the assignment's
          lstm functions read Wya as ``parameters["Wy"]``, so an lstm is given both keys

``rnn_cell_forward(xt, a_prev, parameters) -> a_next, yt_pred, cache`` and
``rnn_forward(x, a0, parameters) -> a, y_pred, caches``; ``rnn_cell_backward(da_next, cache)``
and ``rnn_backward(da, caches)`` return a dict of gradients (``dxt``/``dx``, ``da_prev``/
``da0``, ``dWax``, ``dWaa``, ``dba``); the ``lstm_*`` functions likewise, ``lstm_forward``
starting from c⟨0⟩ = 0 and returning ``a, y, c, caches``. The backward takes the gradient
of every hidden state, ``da`` (the output layer's gradient is not part of the exercise), so
rnnlab's upstream gradient of the final state is added to da⟨T_x⟩.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SubjectError
from .adapters import SubjectRaised, Unit, _check_signature, f64
from .compare import Quantity
from .conventions import single
from .spec import SpecResult, predictions
from .strategies import Constraints, Problem

GATES = {"rnn": (), "lstm": ("f", "i", "c", "o")}  # the assignment's order; c is the candidate
DLAI = {  # unit: (forward, backward, forward args, forward returns, backward args)
    "rnn_cell": ("rnn_cell_forward", "rnn_cell_backward", ("xt", "a_prev", "parameters"),
                 ("a_next", "yt_pred"), ("da_next", "cache")),
    "rnn": ("rnn_forward", "rnn_backward", ("x", "a0", "parameters"), ("a", "y_pred"),
            ("da", "caches")),
    "lstm_cell": ("lstm_cell_forward", "lstm_cell_backward",
                  ("xt", "a_prev", "c_prev", "parameters"), ("a_next", "c_next", "yt_pred"),
                  ("da_next", "dc_next", "cache")),
    "lstm": ("lstm_forward", "lstm_backward", ("x", "a0", "parameters"), ("a", "y", "c"),
             ("da", "caches")),
}
DLAI_NAMES = tuple(n for v in DLAI.values() for n in v[:2])
OUTPUT_SIZE = 3  # n_y of the output layer rnnlab draws (Wya, by): checked in the forward only


def weight_names(cell: str) -> tuple:
    if cell == "rnn":
        return ("Wax", "Waa", "ba")
    return tuple(n for g in GATES["lstm"] for n in (f"W{g}", f"b{g}"))


def to_parameters(cell: str, params: dict) -> dict:
    """rnnlab's per-gate arrays -> the assignment's parameter dict (without Wya, by)."""
    if cell == "rnn":
        return {"Wax": params["W_xh"].T.copy(), "Waa": params["W_hh"].T.copy(),
                "ba": params["b_h"][:, None].copy()}
    out = {}
    for g in GATES["lstm"]:
        out[f"W{g}"] = np.concatenate([params[f"W_h{g}"].T, params[f"W_x{g}"].T], axis=1)
        out[f"b{g}"] = params[f"b_{g}"][:, None].copy()
    return out


def output_layer(p: Problem, n_a: int) -> tuple:
    """Wya (n_y, n_a) and by (n_y, 1), drawn from the example's seed (not part of the spec)."""
    rng = np.random.default_rng([p.example.seed, 7])
    return rng.standard_normal((OUTPUT_SIZE, n_a)) * 0.5, rng.standard_normal((OUTPUT_SIZE, 1))


class DLAIUnit(Unit):
    """One forward/backward pair of the assignment."""

    convention = "deeplearning.ai"

    def __init__(self, unit: str, forward, backward, source: Path | None = None):
        self.key = unit
        self.fwd_name, self.bwd_name, self.fargs, self.fret, self.bargs = DLAI[unit]
        cell = unit.split("_")[0]
        step = unit.endswith("_cell")
        lstm = cell == "lstm"
        cons = Constraints(cell, T=(1, 1) if step else (1, 6),
                           state_in=(True, step) if lstm else (True,),
                           state_upstream=(not step, step) if lstm else (not step,), predicts=True)
        name = self.fwd_name + (f" / {self.bwd_name}" if backward is not None else "")
        super().__init__(name, cons, {n: single(n) for n in weight_names(cell)}, source)
        self.forward, self.backward = forward, backward
        self.step = step
        self.kind = "handwritten" if backward is not None else "forward-only"
        if backward is None:
            self.notes.append(f"{self.bwd_name} not found: gradients are not checked")
        if lstm and not step:
            self.notes.append("lstm_forward starts from c⟨0⟩ = 0 (the assignment's), so a "
                              "sequence cannot be continued from a given cell state")

    def gate_order(self):
        return None  # each gate its own array: the array names say which

    # ---- names
    def _grad_names(self) -> dict:
        """{the subject's gradient key: role} in the assignment's names."""
        x, a = ("dxt", "da_prev") if self.step else ("dx", "da0")
        names = {x: "dinput", a: "dstate"}
        if self.step and self.cell == "lstm":
            names["dc_prev"] = "dstate"
        names.update({f"d{n}": "grad" for n in weight_names(self.cell)})
        return names

    def quantities(self) -> dict:
        col = dict(batch_axis=1) if self.step else dict(time_axis=2, batch_axis=1)
        q = {}
        for n in self.fret:
            role = "state" if n in ("c_next",) else "output"
            q[n] = Quantity(n, role, index=1 if n == "c_next" else 0, **col)
        if self.has_grads:
            k = 0
            for n, role in self._grad_names().items():
                if role == "dinput":
                    q[n] = Quantity(n, role, **col)
                elif role == "dstate":
                    q[n] = Quantity(n, role, batch_axis=1, index=k)
                    k += 1
                else:
                    q[n] = Quantity(n, role)
        return q

    def final_state_names(self) -> tuple:
        return ("a_next", "c_next")[: self.cons.n_state] if self.step else ("a",)

    def final_state(self, obs: dict) -> tuple:
        if self.step:
            return tuple(f64(obs[n]).T for n in self.final_state_names())
        return (f64(obs["a"])[:, :, -1].T,)

    def _as_state(self, a) -> np.ndarray:
        return f64(a).T  # (n_a, m) -> (B, H)

    def initial_grad_names(self):
        if not self.has_grads:
            return None
        return ("da_prev", "dc_prev")[: self.cons.n_state] if self.step else ("da0",)

    def initial_grad(self, obs: dict) -> tuple:
        return tuple(f64(obs[n]).T for n in self.initial_grad_names())

    # ---- calling the subject
    def _inputs(self, p: Problem) -> dict:
        n_a = p.state0[0].shape[1]
        parameters = to_parameters(self.cell, p.params)
        parameters["Wya"], parameters["by"] = output_layer(p, n_a)
        if self.cell == "lstm":  # the assignment's lstm_cell_forward reads parameters["Wy"]
            parameters["Wy"] = parameters["Wya"]
        if self.step:
            args = {"xt": p.X[0].T, "a_prev": p.state0[0].T}  # (n_x, m), (n_a, m)
            if self.cell == "lstm":
                args["c_prev"] = p.state0[1].T
        else:
            args = {"x": p.X.transpose(2, 1, 0), "a0": p.state0[0].T}  # (n_x, m, T_x)
        args = {k: np.array(v) for k, v in args.items()}  # copies: the subject may write
        args["parameters"] = {k: np.array(v) for k, v in parameters.items()}
        return args

    def _upstream(self, p: Problem) -> list:
        if self.step:
            up = [(p.dOut[0] + p.dState[0]).T]  # da_next (n_a, m)
            if self.cell == "lstm":
                up.append(p.dState[1].T)  # dc_next
            return [np.array(u) for u in up]
        da = p.dOut.transpose(2, 1, 0).copy()  # (n_a, m, T_x)
        da[:, :, -1] += p.dState[0].T  # a⟨T_x⟩ is the final state
        return [da]

    def _run_forward(self, args: dict):
        res = self.call(self.fwd_name, self.forward, *[args[a] for a in self.fargs])
        return self.unpack(self.fwd_name, res, self.fret, rest=True)

    def observe(self, p: Problem, grads: bool) -> dict:
        args = self._inputs(p)
        outs, cache = self._run_forward(args)
        raw = dict(zip(self.fret, outs))
        if grads and self.has_grads:
            res = self.call(self.bwd_name, self.backward, *self._upstream(p), cache)
            if not isinstance(res, dict):
                res = self.unpack(self.bwd_name, res, ("gradients",))[0]
            if not isinstance(res, dict):
                raise SubjectRaised(f"{self.bwd_name} returned {type(res).__name__}, expected the "
                                    "gradients dict")
            for n in self._grad_names():
                if n in res:
                    raw[n] = res[n]
        self.last_raw = dict(raw)  # by name: probe's dtype note names them
        return {k: f64(v) for k, v in raw.items()}

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        n_a = p.state0[0].shape[1]
        Wya, by = output_layer(p, n_a)
        Hs = res.Hs  # (T, B, H): what the loop collects (a)
        Y = predictions(res, Wya, by[:, 0])  # (T, B, n_y): what each cell predicts from a_next
        if self.step:
            e = {"a_next": Hs[0].T, self.fret[-1]: Y[0].T}
            if self.cell == "lstm":
                e["c_next"] = res.state[1].T
        else:
            e = {"a": Hs.transpose(2, 1, 0), self.fret[1]: Y.transpose(2, 1, 0)}
            if self.cell == "lstm":
                e["c"] = res.Cs.transpose(2, 1, 0)  # (n_a, m, T_x)
        if grads and self.has_grads:
            x, a = ("dxt", "da_prev") if self.step else ("dx", "da0")
            e[x] = res.dX[0].T if self.step else res.dX.transpose(2, 1, 0)
            e[a] = res.dstate0[0].T
            if self.step and self.cell == "lstm":
                e["dc_prev"] = res.dstate0[1].T
            e.update({f"d{k}": v for k, v in to_parameters(self.cell, res.grads).items()})
        return e

    def fd_setup(self, p: Problem):
        if not self.has_grads:
            return None
        args = self._inputs(p)
        up = self._upstream(p)
        outputs = [n for n in self.fret if n in ("a_next", "c_next", "a")]

        def loss() -> float:
            fresh = {k: (v.copy() if isinstance(v, np.ndarray) else {n: w.copy() for n, w in v.items()})
                     for k, v in args.items()}
            outs, _ = self._run_forward(fresh)
            got = dict(zip(self.fret, outs))
            return float(sum((f64(got[n]) * u).sum() for n, u in zip(outputs, up)))

        qs = self.quantities()
        x, a = ("xt", "a_prev") if self.step else ("x", "a0")
        arrays = {f"d{x}": (args[x], qs[f"d{x}"]), f"d{a}": (args[a], qs[f"d{a}"])}
        if self.step and self.cell == "lstm":
            arrays["dc_prev"] = (args["c_prev"], qs["dc_prev"])
        for n in weight_names(self.cell):
            arrays[f"d{n}"] = (args["parameters"][n], qs[f"d{n}"])
        return arrays, loss


def dlai_units(module, cell: str | None, only: str | None, source: Path | None) -> tuple:
    """The assignment's units a module offers: ([Unit], [found names])."""
    if cell not in (None, "rnn", "lstm"):
        raise SubjectError(f"the deeplearning.ai assignment has rnn and lstm functions only; "
                           f"--cell {cell} does not apply (deeplearning.ai convention)")
    found = [n for n in DLAI_NAMES if callable(getattr(module, n, None))]
    label = source.name if source is not None else getattr(module, "__name__", "the module")
    if not found:
        raise SubjectError(f"{label} has none of {', '.join(DLAI_NAMES)} (deeplearning.ai "
                           "convention)")
    units = []
    for key, (fwd, bwd, fargs, _, bargs) in DLAI.items():
        if cell is not None and key.split("_")[0] != cell:
            continue
        if only is not None and only not in (fwd, bwd):
            continue
        f, b = getattr(module, fwd, None), getattr(module, bwd, None)
        if not callable(f):
            continue
        _check_signature(f, fargs, fwd, "deeplearning.ai")
        if callable(b):
            _check_signature(b, bargs, bwd, "deeplearning.ai")
        units.append(DLAIUnit(key, f, b if callable(b) else None, source))
    if not units:
        what = only or f"{cell + ' ' if cell else ''}forward function"
        raise SubjectError(f"{label} has no {what} to check (deeplearning.ai convention); found "
                           f"{', '.join(found)}")
    return units, found
