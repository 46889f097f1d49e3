"""d2l's 2nd edition: ``RNNScratch``, ``LSTMScratch``, ``GRUScratch`` as ``nn.Module`` classes.

The book's chapters 9.5 (RNN), 10.1 (LSTM) and 10.2 (GRU) build each cell as a class::

    class RNNScratch(d2l.Module):
        def __init__(self, num_inputs, num_hiddens, sigma=0.01):
            self.W_xh = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
            self.W_hh = ...; self.b_h = nn.Parameter(torch.zeros(num_hiddens))
        def forward(self, inputs, state=None):      # inputs (T, B, D), time-major
            ...
            return outputs, state                   # a list of T (B, H) tensors, the last state

with rnnlab's own parameter names (``W_xi, W_hi, b_i, ...``, ``W_xz, ...``) as attributes.
The state goes in and comes out as the book's cell has it: the RNN takes ``(H,)`` and returns
``H``, the GRU takes and returns ``H``, the LSTM takes and returns ``(H, C)``; which form a
subject takes is found by trying (a tuple first where the book uses one). ``forward(inputs)``
without a state must start from zeros, as the book's do: the ``default-state`` property checks
it. Gradients come from the subject's autograd, as for the other torch conventions.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ..checks import shown
from ..errors import SubjectError
from . import conventions as cv
from .adapters import SubjectRaised, Unit, _grad_quantities, f64
from .compare import Quantity
from .spec import SpecResult
from .strategies import Constraints, Example, Problem, make_problem
from .torch_units import takes_default_state

SCRATCH_CLASSES = {"RNNScratch": "rnn", "LSTMScratch": "lstm", "GRUScratch": "gru"}


def _grad(t: torch.Tensor) -> np.ndarray:
    return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().cpu().double().numpy()


def infer_class_cell(cls, name: str, cell: str | None) -> str | None:
    """--cell, else the book's class name, else the class name (…LSTM…, …GRU…, …RNN…)."""
    if cell is not None:
        return cell
    if name in SCRATCH_CLASSES:
        return SCRATCH_CLASSES[name]
    lower = name.lower()
    return next((c for c in ("lstm", "gru", "rnn") if c in lower), None)


def find_classes(module, cell: str | None, only: str | None) -> list:
    """(name, class, cell) of the d2l 2nd-edition cell classes a module defines: NAME, or
    every class built as (num_inputs, num_hiddens) whose cell is known (filtered by cell)."""
    if only is not None:
        obj = getattr(module, only, None)
        candidates = [(only, obj)] if isinstance(obj, type) else []
    else:
        candidates = [(n, v) for n, v in vars(module).items()
                      if is_scratch_class(v) and v.__module__ == module.__name__]
    out = []
    for n, cls in candidates:
        c = infer_class_cell(cls, n, cell)
        if c is None:
            raise SubjectError(f"cannot tell whether {n} is an rnn, lstm or gru: give --cell")
        if cell in (None, c):
            out.append((n, cls, c))
    return out


def is_scratch_class(obj) -> bool:
    """An ``nn.Module`` class whose constructor reads ``(num_inputs, num_hiddens, ...)`` and
    that has a forward of its own (a base class holding the gates' parameters for the
    cells built on it is not one: ``nn.Module``'s forward is no forward)."""
    if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
        return False
    if obj.forward is torch.nn.Module.forward:
        return False
    try:
        params = list(inspect.signature(obj.__init__).parameters)
    except (TypeError, ValueError):
        return False
    return params[1:3] == ["num_inputs", "num_hiddens"]


class D2LClassUnit(Unit):
    """A d2l 2nd-edition cell class, built as ``cls(num_inputs, num_hiddens)``."""

    convention = "d2l"
    kind = "autograd"
    has_default_state = False  # set by probe(): forward(inputs, state=None), as the book's

    def __init__(self, factory, cell: str, name: str, source=None):
        cons = Constraints(cell)
        super().__init__(name, cons, cv.rnnlab_layout(cell), source)
        self.factory = factory
        self.modules: dict = {}
        self.torch_dtype = torch.float64
        self.state_names = ("H", "C")[: cons.n_state]
        self.state_form = "tuple" if cell in ("rnn", "lstm") else "tensor"  # the book's

    # ---- the subject
    def module(self, D: int, H: int):
        if (D, H) not in self.modules:
            m = self.call(f"{self.name}({D}, {H})", self.factory, D, H)
            if not isinstance(m, torch.nn.Module):
                raise SubjectError(f"{self.name}({D}, {H}) returned {shown(m, 40)} "
                                   f"({type(m).__name__}), expected an nn.Module (d2l convention)")
            missing = [n for n in self.layout if not isinstance(getattr(m, n, None), torch.Tensor)]
            if missing:
                raise SubjectError(
                    f"{self.name}({D}, {H}) has no attribute{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (d2l convention: the book's names, "
                    f"{', '.join(self.layout)})")
            self.modules[(D, H)] = m
        return self.modules[(D, H)]

    def _load_weights(self, m, p: Problem) -> list:
        """The problem's weights into the module's own parameters, in the unit's dtype."""
        W = cv.to_subject(self.layout, p.params)
        leaves = []
        with torch.no_grad():
            for n, v in W.items():
                t = getattr(m, n)
                if tuple(t.shape) != v.shape:
                    raise SubjectRaised(f"{n} has shape {tuple(t.shape)} in {self.name}"
                                        f"{tuple(p.X.shape[2:])[:1] + (v.shape[-1],)}; d2l's is "
                                        f"{v.shape}")
                t.data = torch.tensor(v, dtype=self.torch_dtype)
                t.grad = None
                leaves.append(t)
        return leaves

    def _state_arg(self, state: list):
        if self.state_form == "tensor":
            return state[0]
        return tuple(state)

    def _run(self, m, x, state_arg, what: str):
        res = (self.call(what, m, x) if state_arg is None else self.call(what, m, x, state_arg))
        out, st = self.unpack(what, res, ("outputs", "state"))
        if isinstance(out, (list, tuple)) and out and all(isinstance(o, torch.Tensor) for o in out):
            out = torch.stack(list(out))  # T tensors (B, H) -> (T, B, H)
        if not isinstance(out, torch.Tensor):
            raise SubjectRaised(f"{what} returned outputs {shown(out, 40)}, expected a list of T "
                                "(B, H) tensors (d2l convention)")
        st = list(st) if isinstance(st, (tuple, list)) else [st]
        if len(st) != len(self.state_names):
            want = "(H, C)" if self.cell == "lstm" else "H"
            raise SubjectRaised(f"{what} returned a state of {len(st)} tensor(s), expected {want}")
        return out, st

    def observe(self, p: Problem, grads: bool) -> dict:
        T, B, D = p.X.shape
        H = p.state0[0].shape[1]
        m = self.module(D, H)
        leaves = self._load_weights(m, p)
        x = torch.tensor(p.X, dtype=self.torch_dtype, requires_grad=True)
        state0 = [torch.tensor(s, dtype=self.torch_dtype, requires_grad=True) for s in p.state0]
        arg = None if p.use_default_state else self._state_arg([s.clone() for s in state0])
        default = torch.get_default_dtype()
        try:
            if arg is None:  # the book makes its zeros in torch's default dtype: the unit's
                torch.set_default_dtype(self.torch_dtype)
            with torch.enable_grad() if grads else torch.no_grad():
                out, st = self._run(m, x, arg, f"{self.name}.forward")
        finally:
            torch.set_default_dtype(default)
        with torch.enable_grad() if grads else torch.no_grad():
            self.last_raw = [out, *st]
            obs = {"outputs": f64(out.detach().cpu().numpy())}
            for s, v in zip(self.state_names, st):
                obs[f"{s}_T"] = f64(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v)
            if grads:
                loss = 0
                if out.requires_grad and tuple(out.shape) == p.dOut.shape:
                    loss = (out * torch.tensor(p.dOut, dtype=out.dtype)).sum()
                for v, d in zip(st, p.dState):
                    if isinstance(v, torch.Tensor) and v.requires_grad and tuple(v.shape) == d.shape:
                        loss = loss + (v * torch.tensor(d, dtype=v.dtype)).sum()
                if isinstance(loss, torch.Tensor):
                    self.call(f"backward through {self.name}", loss.backward)
                for n, t in zip(self.layout, leaves):
                    obs[f"{n}.grad"] = _grad(t)
                obs["inputs.grad"] = _grad(x)
                for s, t in zip(self.state_names, state0):
                    obs[f"{s}_0.grad"] = _grad(t)
        return obs

    # ---- what rnnlab compares
    def quantities(self) -> dict:
        q = {"outputs": Quantity("outputs", "output", time_axis=0, batch_axis=1)}
        for k, s in enumerate(self.state_names):
            q[f"{s}_T"] = Quantity(f"{s}_T", "state", batch_axis=0, index=k)
        q.update(_grad_quantities(self.layout, prefix="", suffix=".grad"))
        q["inputs.grad"] = Quantity("inputs.grad", "dinput", time_axis=0, batch_axis=1)
        for k, s in enumerate(self.state_names):
            q[f"{s}_0.grad"] = Quantity(f"{s}_0.grad", "dstate", batch_axis=0, index=k)
        return q

    def final_state_names(self) -> tuple:
        return tuple(f"{s}_T" for s in self.state_names)

    def initial_grad_names(self):
        return tuple(f"{s}_0.grad" for s in self.state_names)

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"outputs": res.Hs}
        for k, s in enumerate(self.state_names):
            e[f"{s}_T"] = res.state[k]
        if grads:
            e.update({f"{k}.grad": v for k, v in cv.grads_to_subject(self.layout, res.grads).items()})
            e["inputs.grad"] = res.dX
            for k, s in enumerate(self.state_names):
                e[f"{s}_0.grad"] = res.dstate0[k]
        return e

    def probe(self) -> None:
        """Construct the class, then find the state form and the dtype it runs with: float64
        where it can (tighter tolerances), else float32, the book's own."""
        try:
            self.module(3, 2)
        except SubjectRaised as exc:
            raise SubjectError(f"cannot construct {exc.line} (d2l convention: "
                               f"{self.name}(num_inputs, num_hiddens))") from None
        self.has_default_state = takes_default_state(self.module(3, 2))
        p = make_problem(self.cons, Example(2, 3, 3, 2, 0))
        forms = {"rnn": ("tuple", "tensor"), "gru": ("tensor", "tuple"), "lstm": ("tuple",)}[self.cell]
        first = None
        for dt in (torch.float64, torch.float32):
            for form in forms:
                self.torch_dtype, self.state_form = dt, form
                try:
                    self.observe(p, grads=True)
                except SubjectRaised as exc:
                    first = first or exc
                    continue
                self.dtype = "float64" if dt == torch.float64 else "float32"
                if form != forms[0]:
                    self.notes.append(f"{self.name}.forward takes its state as "
                                      f"{'a tensor H' if form == 'tensor' else 'a tuple'}")
                return
        self.torch_dtype, self.state_form = torch.float64, forms[0]  # the properties report it
        if first is not None and " returned " in first.line and " raised " not in first.line:
            raise SubjectError(f"{first.line} (d2l convention)")
