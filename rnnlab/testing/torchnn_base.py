"""The ``torch.nn`` convention's arrays and names, without torch: what rnnlab's process needs
of a torch.nn subject that runs in a child process (isolation.py), where
``torch_units.TorchNNUnit`` adds building and calling the module."""

from __future__ import annotations

import numpy as np

from . import conventions as cv
from .adapters import Unit, f64
from .compare import Quantity
from .spec import SpecResult
from .strategies import Constraints, Problem


class TorchNNBase(Unit):
    """An ``nn.Module`` class (or factory) with ``torch.nn.RNN/LSTM/GRU``'s constructor
    ``(input_size, hidden_size)``, parameters ``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0`` (gate order i, f, g, o; r, z, n), input (T, B, D) and
    ``module(x, hx)`` returning ``(output, h_n)`` or ``(output, (h_n, c_n))``: the arrays it
    returns, by name, and the spec's in its layout."""

    convention = "torch.nn"
    kind = "autograd"
    batch_first = False  # a module built batch-first: input and output (B, T, ·), as torch.nn's
    form_guessed = False  # per-gate GRU layers whose form neither the source says nor the
    #                       outputs reproduce: read in the closer one (the diagnosis says so)

    def __init__(self, cell: str, name: str, source=None):
        cons = Constraints(cell, gru_form="torch", bias_split=True)
        super().__init__(name, cons, cv.torch_nn_layout(cell), source)
        self.names: dict = {}  # canonical torch name -> the module's own parameter name
        self.state_names = ("h", "c")[: cons.n_state]

    def quantities(self) -> dict:
        t, b = (1, 0) if self.batch_first else (0, 1)  # the time and batch axes of x and output
        q = {"output": Quantity("output", "output", time_axis=t, batch_axis=b)}
        for k, s in enumerate(self.state_names):
            q[f"{s}_n"] = Quantity(f"{s}_n", "state", batch_axis=1, index=k)
        for canon, block in self.layout.items():
            n = self.names.get(canon, canon)
            q[f"{n}.grad"] = Quantity(f"{n}.grad", "grad", block=block)
        q["input.grad"] = Quantity("input.grad", "dinput", time_axis=t, batch_axis=b)
        for k, s in enumerate(self.state_names):
            q[f"{s}_0.grad"] = Quantity(f"{s}_0.grad", "dstate", batch_axis=1, index=k)
        return q

    def final_state_names(self) -> tuple:
        return tuple(f"{s}_n" for s in self.state_names)

    def initial_grad_names(self):
        return tuple(f"{s}_0.grad" for s in self.state_names)

    def _as_state(self, a) -> np.ndarray:
        a = f64(a)
        return a[0] if a.ndim == 3 else a  # (1, B, H) -> (B, H)

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"output": res.Hs.transpose(1, 0, 2) if self.batch_first else res.Hs}  # (T, B, H)
        for k, s in enumerate(self.state_names):
            e[f"{s}_n"] = res.state[k][None]
        if grads:
            for canon, v in cv.grads_to_subject(self.layout, res.grads).items():
                e[f"{self.names.get(canon, canon)}.grad"] = v
            e["input.grad"] = res.dX.transpose(1, 0, 2) if self.batch_first else res.dX  # as x
            for k, s in enumerate(self.state_names):
                e[f"{s}_0.grad"] = res.dstate0[k][None]
        return e
