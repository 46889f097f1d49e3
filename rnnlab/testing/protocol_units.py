"""The protocol convention: any other implementation (JAX, CuPy, a C extension...) given
to rnnlab as a :class:`Protocol` of callables, public as ``rnnlab.testing.Protocol``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..checks import shown
from ..errors import SubjectError
from . import conventions as cv
from .adapters import SubjectRaised, Unit, _grad_quantities, f64
from .compare import Quantity
from .rules import GATES
from .spec import SpecResult
from .strategies import Constraints, Problem


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

    def __post_init__(self) -> None:
        """Refuse, when it is made, a Protocol verify could not use, naming the field."""
        def bad(field_name, value, expected):
            return SubjectError(f"Protocol.{field_name} must be {expected}, got {shown(value)}")

        if self.cell not in GATES:
            raise SubjectError(f"Protocol.cell is {self.cell!r}; expected rnn, irnn, lstm or gru")
        if self.gru_form not in ("d2l", "torch"):
            raise SubjectError(f"Protocol.gru_form is {self.gru_form!r}; expected d2l or torch")
        for name in ("forward", "from_numpy"):
            if not callable(getattr(self, name)):
                raise bad(name, getattr(self, name), "a function")
        if self.backward is not None and not callable(self.backward):
            raise bad("backward", self.backward, "a function or None")
        if self.layout is not None and not (isinstance(self.layout, dict) and self.layout and all(
                isinstance(k, str) and isinstance(v, cv.Block) for k, v in self.layout.items())):
            raise bad("layout", self.layout, "None or a dict of {your array's name: "
                      "rnnlab.testing.fused(...) or single(...)}")
        if not (isinstance(self.name, str) and self.name):
            raise bad("name", self.name, "a non-empty string")
        if self.dtype is not None and self.dtype not in ("float32", "float64"):
            raise bad("dtype", self.dtype, "None, 'float32' or 'float64'")


class ProtocolUnit(Unit):
    convention = "protocol"

    def __init__(self, proto: Protocol, source=None):
        if proto.cell not in GATES:
            raise SubjectError(f"Protocol.cell is {proto.cell!r}; expected rnn, irnn, lstm or gru")
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

    @staticmethod
    def _watch(args) -> dict:
        """The arrays of (params, X, state) by name, to see which the subject changes."""
        params, X, state = args
        return {**{f"params[{k!r}]": v for k, v in params.items()}, "X": X,
                **{f"state[{k}]": s for k, s in enumerate(state)}}

    def _forward(self, args):
        res = self.call("forward", self.proto.forward, *args, watch=self._watch(args))
        Hs, st = self.unpack("forward", res, ("Hs", "state_T"))
        if not isinstance(st, (tuple, list)) or len(st) != len(self.state_names):
            raise SubjectRaised(f"forward returned a state of {type(st).__name__}, expected a "
                                f"tuple ({', '.join(self.state_names)})")
        return Hs, list(st)

    def observe(self, p: Problem, grads: bool) -> dict:
        args = self._args(p)
        Hs, st = self._forward(args)
        obs = {"Hs": f64(Hs, "Hs")}
        self.last_raw = [np.asarray(Hs), *[np.asarray(s) for s in st]]
        for s, v in zip(self.state_names, st):
            obs[f"{s}_T"] = f64(v, f"state_T's {s}")
        if grads and self.has_grads:
            conv = self.proto.from_numpy
            bargs = (*self._args(p), conv(np.array(p.dOut)), tuple(conv(np.array(d)) for d in p.dState))
            res = self.call("backward", self.proto.backward, *bargs,
                            watch={**self._watch(bargs[:3]), "dHs": bargs[3],
                                   **{f"dstate_T[{k}]": d for k, d in enumerate(bargs[4])}})
            g, dX, ds = self.unpack("backward", res, ("grads", "dX", "dstate_0"))
            if not isinstance(g, dict):
                raise SubjectRaised(f"backward returned grads as a {type(g).__name__}, expected a "
                                    f"dict keyed like params ({', '.join(self.layout)})")
            for n in self.layout:
                if n not in g:
                    raise SubjectRaised(f"backward returned no gradient for {n!r}")
                obs[f"d{n}"] = f64(g[n], f"grads[{n!r}]")
            obs["dX"] = f64(dX, "dX")
            for s, v in zip(self.state_names, ds):
                obs[f"d{s}_0"] = f64(v, f"dstate_0's {s}")
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
