"""PyTorch's char-RNN tutorial module, built and called with torch (see tutorial_base.py for
the convention): its layers found by their shapes, its two forms told apart by an
``nn.RNN`` inside or an ``i2h`` layer on ``cat(input, hidden)``; gradients by its autograd."""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ..checks import shown
from ..errors import SubjectError
from .adapters import SubjectRaised, f64
from .strategies import Example, Problem, make_problem
from .torch_units import _grad, _leaf, _np, is_module_class
from .tutorial_base import TutorialBase, tutorial_constraints

SHAPE = ("RNN(input_size, hidden_size, output_size): i2h = nn.Linear(input_size + hidden_size, "
         "hidden_size) and i2o = nn.Linear(input_size + hidden_size, output_size) (or h2o = "
         "nn.Linear(hidden_size, output_size)), forward(input, hidden); or rnn = nn.RNN(input_size, "
         "hidden_size) and h2o = nn.Linear(hidden_size, output_size), forward(line_tensor)")


def read_layers(m: torch.nn.Module, name: str, D: int, H: int) -> tuple[str, dict, str]:
    """(form, {role: layer name}, what the output layer reads) of a module built for
    input_size D, hidden_size H and output_size V = D (D != H, H + D != D)."""
    V = D
    lin = {n: mod for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear)}
    rnns = [(n, mod) for n, mod in m.named_modules() if isinstance(mod, torch.nn.RNNBase)]
    has = ", ".join([f"{n} = nn.Linear({mod.in_features}, {mod.out_features})" for n, mod in lin.items()]
                    + [f"{n} = nn.{type(mod).__name__}" for n, mod in rnns])
    fail = SubjectError(f"{name}({D}, {H}, {V}) is not the tutorial's module (torch-tutorial "
                        f"convention: {SHAPE}); it has {has or 'no layers'}")
    outs = [n for n, mod in lin.items() if mod.out_features == V and mod.in_features in (H, D + H)]
    if len(outs) != 1 or lin[outs[0]].bias is None:
        raise fail
    out = outs[0]
    if rnns:
        (n, rnn), *more = rnns
        if more or type(rnn) is not torch.nn.RNN or lin[out].in_features != H:
            raise fail
        if rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias or rnn.nonlinearity != "tanh":
            raise SubjectError(f"{name}'s {n} is nn.RNN(num_layers={rnn.num_layers}, "
                               f"bidirectional={rnn.bidirectional}, bias={rnn.bias}, "
                               f"nonlinearity={rnn.nonlinearity!r}); rnnlab's spec is one layer, "
                               "forwards, with biases and tanh")
        return "sequence", {"rnn": n, "out": out}, "hidden"
    i2h = [n for n, mod in lin.items() if mod.in_features == D + H and mod.out_features == H]
    if len(i2h) != 1 or lin[i2h[0]].bias is None:
        raise fail
    reads = "combined" if lin[out].in_features == D + H else "hidden"
    return "step", {"i2h": i2h[0], "out": out}, reads


class TutorialUnit(TutorialBase):
    """:class:`TutorialBase` that builds the module with torch and calls it."""

    GHOST = TutorialBase  # what rnnlab's process rebuilds of it (isolation.py): no torch

    def __init__(self, factory, name: str, source=None):
        super().__init__(name, "step", {"i2h": "i2h", "out": "i2o"}, "combined", source)
        self.factory = factory
        self.modules: dict = {}
        self.torch_dtype = torch.float32
        try:
            m = self.call(f"{name}(3, 2, 3)", factory, 3, 2, 3)
        except SubjectRaised as exc:
            raise SubjectError(f"cannot construct {exc.line} (torch-tutorial convention: "
                               f"{name}(input_size, hidden_size, output_size))") from None
        if not isinstance(m, torch.nn.Module):
            raise SubjectError(f"{name}(3, 2, 3) returned {shown(m, 40)} ({type(m).__name__}), "
                               "expected an nn.Module (torch-tutorial convention)")
        self.form, self.names, self.out_reads = read_layers(m, name, 3, 2)
        self.cons = tutorial_constraints(self.form)
        self.layout = self._layout()
        self.modules[(3, 2)] = m

    def module(self, D: int, H: int):
        if (D, H) not in self.modules:
            m = self.call(f"{self.name}({D}, {H}, {D})", self.factory, D, H, D)
            have = dict(m.named_parameters())
            lost = [n for n in self.layout if n not in have]
            if lost:
                raise SubjectError(f"{self.name}({D}, {H}, {D}) has no parameter {', '.join(lost)}, "
                                   f"which {self.name}'s first module had (torch-tutorial convention)")
            self.modules[(D, H)] = m
        return self.modules[(D, H)]

    def observe(self, p: Problem, grads: bool) -> dict:
        T, _, D = p.X.shape
        H = p.state0[0].shape[1]
        m = self.module(D, H)
        params = dict(m.named_parameters())
        dt = next(iter(params.values())).dtype
        with torch.no_grad():
            for n, v in self.to_module(p).items():
                t = params[n]
                if tuple(t.shape) != v.shape:
                    raise SubjectRaised(f"{n} has shape {tuple(t.shape)} in {self.name}({D}, {H}, "
                                        f"{D}); the tutorial's is {v.shape}")
                t.copy_(torch.from_numpy(np.ascontiguousarray(v)))
                t.grad = None
        x = _leaf(p.X, dt)  # (T, B, D)
        h0 = _leaf(p.state0[0], dt)  # (B, H)
        watch = {"input": x, **{n: params[n] for n in self.layout}}
        with torch.enable_grad() if grads else torch.no_grad():
            if self.form == "step":  # one call per step, the hidden state handed on
                h, outs = h0.clone(), []
                for t in range(T):
                    res = self.call(f"{self.name}.forward", m, x[t], h, watch=watch)
                    out_t, h = self.unpack(f"{self.name}.forward", res, ("output", "hidden"))
                    outs.append(out_t)
                if not all(isinstance(o, torch.Tensor) and o.shape == outs[0].shape for o in outs):
                    raise SubjectRaised(f"{self.name}.forward returned outputs that are not "
                                        "tensors of one shape (B, output_size)")
                out = torch.stack(outs)  # (T, B, V)
            else:
                out = self.call(f"{self.name}.forward", m, x, watch=watch)
                h = None
            obs = {"output": f64(_np(out), "output")}
            if h is not None:
                obs["hidden"] = f64(_np(h), "hidden")
            self.last_raw = [out] + ([h] if h is not None else [])
            if grads:
                loss = 0
                dOut = p.dOut if self.form == "step" else p.dOut[-1]  # (T, B, V) or (B, V)
                if isinstance(out, torch.Tensor) and out.requires_grad and tuple(out.shape) == dOut.shape:
                    loss = (out * torch.tensor(dOut, dtype=out.dtype)).sum()
                if isinstance(h, torch.Tensor) and h.requires_grad and tuple(h.shape) == p.dState[0].shape:
                    loss = loss + (h * torch.tensor(p.dState[0], dtype=h.dtype)).sum()
                if isinstance(loss, torch.Tensor):
                    self.call(f"backward through {self.name}", loss.backward)
                for n in self.layout:
                    obs[f"{n}.grad"] = _grad(params[n])
                obs["input.grad"] = _grad(x)
                if self.form == "step":
                    obs["hidden_0.grad"] = _grad(h0)
        return obs

    def probe(self) -> None:
        m = self.module(3, 2)
        params = list(m.parameters())
        dt = params[0].dtype if params else torch.float32
        self.dtype = "float32" if dt in (torch.float32, torch.float16, torch.bfloat16) else "float64"
        self.notes.append(self._note())
        try:
            self.observe(make_problem(self.cons, Example(2, 3, 3, 2, 0)), grads=True)
        except SubjectRaised as exc:
            if " returned " in exc.line and " raised " not in exc.line:
                raise SubjectError(f"{exc.line} (torch-tutorial convention)") from None

    def _note(self) -> str:
        out = self.names["out"]
        if self.form == "sequence":
            return (f"the tutorial's newer form: {self.names['rnn']} (nn.RNN) starts from a "
                    f"zero state it is not given, {out} reads its last hidden state, log-softmax "
                    "outputs; only the last step's output is returned and checked")
        reads = ("cat(input, hidden), its input columns held at zero (the spec has no "
                 "input-to-output weight)" if self.out_reads == "combined" else "the hidden state")
        return (f"the tutorial's first form, one step per call: {self.names['i2h']} on "
                f"cat(input, hidden) is [W_xh; W_hh], {out} reads {reads}; log-softmax outputs")


def find_tutorial(module, name: str | None, label: str) -> tuple[str, object]:
    """(name, class) of the tutorial module a file defines: NAME, or its one nn.Module class
    built as (input_size, hidden_size, output_size)."""
    if name is not None:
        obj = getattr(module, name, None)
        if not callable(obj):
            raise SubjectError(f"{label} has no class {name!r} (torch-tutorial convention: {SHAPE})")
        return name, obj
    found = [n for n, v in vars(module).items() if is_module_class(v) and v.__module__ == module.__name__
             and _three_sizes(v)]
    if len(found) != 1:
        what = "no nn.Module class" if not found else f"several nn.Module classes ({', '.join(found)})"
        raise SubjectError(f"{label} defines {what} built as (input_size, hidden_size, "
                           "output_size): name the one to check, FILE:NAME (torch-tutorial convention)")
    return found[0], getattr(module, found[0])


def _three_sizes(cls) -> bool:
    try:
        return len(list(inspect.signature(cls).parameters)) >= 3
    except (TypeError, ValueError):
        return False
