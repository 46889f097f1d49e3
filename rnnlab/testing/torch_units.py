"""The torch conventions: d2l's functions on tensors, and ``torch.nn`` module classes.

Gradients come from the subject's own autograd: ``L = Σ outputs ⊙ dOut + Σ state_T ⊙ dState``
with random upstream arrays, ``L.backward()``, then ``.grad`` of every parameter, of the
input and of the initial state. A subject computes in the dtype of its parameters:
torch.nn modules keep theirs (float32 by default); d2l functions get float64 tensors, or
float32 ones where float64 makes them raise (a tensor made inside in float32).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ..checks import shown
from ..errors import SubjectError
from . import conventions as cv
from .adapters import SubjectRaised, f64, one_line
from .d2l_units import D2LUnit
from .module_args import built, missing_hint
from .spec import run
from .strategies import Constraints, Example, Problem, make_problem
from .torch_gates import form_in_source, gate_linears, gate_parameters, linear_layers
from .torchnn_base import TorchNNBase

TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _grad(t: torch.Tensor) -> np.ndarray:
    """A leaf's gradient; None (the graph never reached it) is zero."""
    return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().cpu().double().numpy()


def _leaf(a: np.ndarray, dtype) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True)


class D2LTorchUnit(D2LUnit):
    """d2l's ``rnn|lstm|gru(inputs, state, params)`` on tensors, gradients by its autograd."""

    kind = "autograd"
    GHOST = D2LUnit  # what rnnlab's process rebuilds of it (isolation.py): no torch; kind is sent

    def __init__(self, fn, cell: str, name: str, source=None):
        super().__init__(fn, cell, name, source)
        self.torch_dtype = torch.float64

    def observe(self, p: Problem, grads: bool) -> dict:
        dt = self.torch_dtype
        W = cv.to_subject(self.layout, p.params)
        params = [_leaf(W[n], dt) for n in self.order]
        state0 = [_leaf(s, dt) for s in p.state0]
        # the state handed in is a copy of the leaf, so a subject that updates it in place
        # (H += ...) still works; gradients reach the leaf through the copy
        state = tuple(s.clone() for s in state0)
        inputs = torch.tensor(p.X, dtype=dt)
        with torch.enable_grad() if grads else torch.no_grad():
            res = self.call(self.name, self.fn, inputs, state, params,
                            watch={"inputs": inputs, **dict(zip(self.order, params))})
            out, st = self._unpack_result(res, p)
            self.last_raw = [out, *st]
            obs = {"outputs": self._outputs(_np(out), p)}
            for s, v in zip(self.state_names, st):
                obs[f"{s}_T"] = f64(_np(v), f"the final state's {s}")
            if grads:
                T, B, V = p.X.shape
                loss = 0
                if isinstance(out, torch.Tensor) and out.numel() == T * B * V and out.requires_grad:
                    loss = (out.reshape(T, B, V) * torch.tensor(p.dOut, dtype=out.dtype)).sum()
                for v, d in zip(st, p.dState):
                    if isinstance(v, torch.Tensor) and v.requires_grad and v.shape == d.shape:
                        loss = loss + (v * torch.tensor(d, dtype=v.dtype)).sum()
                if isinstance(loss, torch.Tensor):
                    self.call(f"backward through {self.name}", loss.backward)
                for n, t in zip(self.order, params):
                    obs[f"{n}.grad"] = _grad(t)
                for s, t in zip(self.state_names, state0):
                    obs[f"{s}_0.grad"] = _grad(t)
        return obs

    def probe(self) -> None:
        """float64 if the subject runs with it; float32 (d2l's own) if float64 makes it raise."""
        cons = self.cons
        p = make_problem(cons, Example(2, 3, 3, 2, 0, True))
        for dt in (torch.float64, torch.float32):
            self.torch_dtype = dt
            try:
                self.observe(p, grads=True)
            except SubjectRaised as exc:
                if " returned " in exc.line and " raised " not in exc.line:
                    raise SubjectError(f"{exc.line} (d2l convention)") from None
                continue
            self.dtype = "float32" if dt == torch.float32 else _lowest(self.last_raw)
            return
        self.torch_dtype, self.dtype = torch.float64, "float64"  # the properties report the error


def _lowest(tensors) -> str:
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.dtype in (torch.float32, torch.float16, torch.bfloat16):
            return "float32"
    return "float64"


class TorchNNUnit(TorchNNBase):
    """:class:`TorchNNBase` that builds the module with torch and calls it: gradients by
    the subject's own autograd."""

    has_default_state = False  # set by probe(): forward(x, hx=None) takes a default state
    GHOST = TorchNNBase  # what rnnlab's process rebuilds of it (isolation.py): no torch

    def __init__(self, factory, cell: str, name: str, source=None, options=None):
        super().__init__(cell, name, source)
        self.factory = factory
        self.options = dict(options or {})  # the constructor's other arguments (module_args.py)
        self.batch_first = False  # set by probe(): x is (B, T, D), the output (B, T, H)
        self.modules: dict = {}
        self.torch_dtype = torch.float32
        self.gates = None  # GateLinears: one nn.Linear per gate and source (torch_gates.py)
        self.gate_note = ""

    def read_form(self, form: str, D: int, H: int) -> None:
        """Per-gate nn.Linear layers: their layout, in GRU ``form`` ("torch": b_hn inside
        the reset product; "d2l": the reset gate before the matmul)."""
        self.layout = self.gates.layout(form)
        split = tuple(sorted({part for block in self.layout.values() if block.shared
                              for part, shared in zip(block.parts, block.shared) if shared}))
        self.cons = Constraints(self.cell, gru_form=form, bias_split=True, split_biases=split)
        self.names = {k: k for k in self.layout}
        self.gate_note = self.gates.note(D, H, form)

    def module(self, D: int, H: int):
        """The subject built for (input_size=D, hidden_size=H), once per size."""
        if (D, H) not in self.modules:
            m = self.call(built(self.name, self.options, D, H),
                          lambda: self.factory(D, H, **self.options))
            if not isinstance(m, torch.nn.Module):
                raise SubjectError(f"{built(self.name, self.options, D, H)} returned {shown(m, 40)} "
                                   f"({type(m).__name__}), expected an nn.Module (torch.nn "
                                   "convention)")
            if not self.names:  # read once, off the first module built (D != H)
                self.names, note, self.gates = find_parameters(m, self.name, D, H)
                if self.gates is not None:
                    self.read_form(self.gates.forms()[0], D, H)
                elif note:
                    self.notes.append(note)
            have = dict(m.named_parameters())
            lost = [n for n in self.names.values() if n not in have]
            if lost:
                raise SubjectError(f"{self.name}({D}, {H}) has no parameter {', '.join(lost)}, which "
                                   f"{self.name}'s first module had (torch.nn convention)")
            self.modules[(D, H)] = m
        return self.modules[(D, H)]

    def observe(self, p: Problem, grads: bool) -> dict:
        T, B, D = p.X.shape
        H = p.state0[0].shape[1]
        m = self.module(D, H)
        params = dict(m.named_parameters())
        dt = next(iter(params.values())).dtype
        W = cv.to_subject(self.layout, p.params, p.split)
        with torch.no_grad():
            for canon, v in W.items():
                t = params[self.names[canon]]
                if tuple(t.shape) != v.shape:
                    raise SubjectRaised(f"{self.names[canon]} has shape {tuple(t.shape)} in "
                                        f"{self.name}({D}, {H}); torch.nn's is {v.shape}")
                t.copy_(torch.from_numpy(v))
                t.grad = None
        # batch_first: x (B, T, D), the output (B, T, H); h_n stays (1, B, H), as torch.nn's
        x = _leaf(p.X.transpose(1, 0, 2) if self.batch_first else p.X, dt)  # (T, B, D) or (B, T, D)
        hx0 = [_leaf(s[None], dt) for s in p.state0]  # (1, B, H) each
        hx = hx0[0].clone() if self.cell != "lstm" else (hx0[0].clone(), hx0[1].clone())
        with torch.enable_grad() if grads else torch.no_grad():
            watch = {"input": x, **{n: params[n] for n in self.names.values()}}
            res = (self.call(f"{self.name}.forward", m, x, watch=watch) if p.use_default_state
                   else self.call(f"{self.name}.forward", m, x, hx, watch=watch))
            out, hn = self.unpack(f"{self.name}.forward", res, ("output", "h_n"))
            st = list(hn) if self.cell == "lstm" and isinstance(hn, (tuple, list)) else [hn]
            if len(st) != len(self.state_names):
                raise SubjectRaised(f"{self.name}.forward returned a state of {len(st)} tensor(s), "
                                    f"expected {'(h_n, c_n)' if self.cell == 'lstm' else 'h_n'}")
            self.last_raw = [out, *st]
            obs = {"output": f64(_np(out), "output")}
            dOut = p.dOut.transpose(1, 0, 2) if self.batch_first else p.dOut  # as the output
            for s, v in zip(self.state_names, st):
                obs[f"{s}_n"] = f64(_np(v), f"{s}_n")
            if grads:
                loss = 0
                if isinstance(out, torch.Tensor) and out.requires_grad and tuple(out.shape) == dOut.shape:
                    loss = (out * torch.tensor(dOut, dtype=out.dtype)).sum()
                for v, d in zip(st, p.dState):
                    if isinstance(v, torch.Tensor) and v.requires_grad and v.numel() == d.size:
                        loss = loss + (v.reshape(d.shape) * torch.tensor(d, dtype=v.dtype)).sum()
                if isinstance(loss, torch.Tensor):
                    self.call(f"backward through {self.name}", loss.backward)
                for canon in self.layout:
                    n = self.names[canon]
                    obs[f"{n}.grad"] = _grad(params[n])
                obs["input.grad"] = _grad(x)
                for s, t in zip(self.state_names, hx0):
                    obs[f"{s}_0.grad"] = _grad(t)
        return obs

    def probe(self) -> None:
        try:
            m = self.module(3, 2)
        except SubjectRaised as exc:
            raise SubjectError(f"cannot construct {exc.line} (torch.nn convention: "
                               f"{self.name}(input_size, hidden_size)"
                               f"{missing_hint(self.factory, self.name, self.options)})") from None
        if self.options:
            self.notes.append(f"built as {built(self.name, self.options, 'input_size', 'hidden_size')}")
        self.batch_first, where = batch_first(m, self.options, self.factory)
        if self.batch_first:
            self.notes.append(f"{self.name} is batch-first ({where}): it is called with x of "
                              "shape (B, T, D) and its output read as (B, T, H); h_n stays "
                              "(1, B, H), as torch.nn's")
        self.has_default_state = takes_default_state(m)
        params = list(m.parameters())
        dt = params[0].dtype if params else torch.float32
        self.dtype = "float32" if dt in (torch.float32, torch.float16, torch.bfloat16) else "float64"
        if self.gates is not None:
            self._choose_form()
            self.notes.append(self.gate_note)
        try:
            self.observe(make_problem(self.cons, Example(2, 3, 3, 2, 0)), grads=True)
        except SubjectRaised as exc:
            if " returned " in exc.line and " raised " not in exc.line:
                raise SubjectError(f"{exc.line} (torch.nn convention)") from None


    def _choose_form(self) -> None:
        """A GRU of per-gate layers is either published form: torch.nn's (tanh(x2n(x) + r *
        h2n(h)), b_hn inside) or d2l's (tanh(x2n(x) + h2n(r * h))). The form read is the
        one its forward is written in (``form_in_source``): a wrong gate elsewhere must not
        decide it. Where the source does not say, the one whose spec forward the module's
        reproduces on a probe, else the closer one."""
        forms = self.gates.forms()
        if len(forms) == 1:
            return
        written = form_in_source(self.module(3, 2), self.gates)
        if written in forms:
            self.read_form(written, 3, 2)
            return
        errors = {}
        for form in forms:
            self.read_form(form, 3, 2)
            p = make_problem(self.cons, Example(2, 4, 3, 2, 1))
            try:
                got = self.observe(p, grads=False)["output"]
            except SubjectRaised:
                errors[form] = np.inf
                continue
            want = run(self.cell, p.params, p.X, p.state0, dOut=np.zeros(p.X.shape[:2] + (2,))).Hs
            errors[form] = (float(np.abs(got - want).max()) if np.shape(got) == want.shape
                            else np.inf)
        best = min(forms, key=lambda f: (errors[f], forms.index(f)))
        self.read_form(best, 3, 2)
        if errors[best] > 1e-6:  # neither form reproduces it: the closer one, said so
            self.form_guessed = True
            self.gate_note += ("; its source does not say which form, and neither gives its "
                               "outputs: this one is the closer")


def batch_first(m, options: dict, factory=None) -> tuple[bool, str]:
    """Whether a module takes (B, T, D) inputs, and what says so: its own ``batch_first``
    attribute, else that of the nn.RNN/LSTM/GRU inside it, else the option it was built
    with, given or its constructor's default."""
    own = getattr(m, "batch_first", None)
    if isinstance(own, bool):
        return own, f"its batch_first is {own}"
    inner = [(n, mod) for n, mod in m.named_modules() if isinstance(mod, torch.nn.RNNBase)]
    if inner:
        n, mod = inner[0]
        return bool(mod.batch_first), f"its {n} has batch_first={mod.batch_first}"
    if "batch_first" in options:
        return options["batch_first"] is True, "it was built with batch_first=True"
    try:
        default = inspect.signature(factory).parameters["batch_first"].default
    except (TypeError, ValueError, KeyError):
        return False, ""
    return default is True, "its constructor's batch_first defaults to True"


def takes_default_state(module) -> bool:
    """Whether ``module(x)`` may leave the state out: ``forward``'s second argument has a
    default (``hx=None``, as torch.nn's modules and d2l's classes have it)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[1].default is not inspect.Parameter.empty


def find_parameters(m, name: str, D: int, H: int) -> tuple[dict, str | None, object]:
    """({weight_ih_l0: the module's name for it, ...}, a note or None, None) for a module built
    as ``name(D, H)``: torch.nn's names (``weight_ih_l0``), a cell's in a submodule
    (``cell.weight_ih``), or else two ``nn.Linear`` layers with biases, one reading the
    input (in_features D) and one the hidden state (in_features H), as tutorials build an
    LSTM: ``ih.weight`` is then weight_ih_l0, ``ih.bias`` bias_ih_l0, and so on; or else
    ({}, None, GateLinears) for one nn.Linear per gate and source (torch_gates.py)."""
    have = [n for n, _ in m.named_parameters()]
    out, missing = {}, []
    for base in TORCH_NAMES:
        cands = [n for n in have if n.split(".")[-1] in (f"{base}_l0", base)]
        if len(cands) != 1:
            missing.append(f"{base}_l0")
        else:
            out[f"{base}_l0"] = cands[0]
    if not missing:
        return out, None, None
    pair = _linear_pair(m, D, H)
    if pair is not None:
        return (*pair, None)
    gates = gate_linears(m, D, H)
    if gates is None:
        gates = gate_parameters(m, D, H)
    if gates is not None:
        return {}, None, gates
    layers = linear_layers(m)
    raise SubjectError(f"{name} has no parameter{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} (torch.nn convention: weight_ih_l0, weight_hh_l0, "
                       f"bias_ih_l0, bias_hh_l0, or two nn.Linear layers with biases, one for the "
                       f"input and one for the hidden state, or one nn.Linear per gate and "
                       f"source named by its gate, x2r/h2r, x2z/h2z, x2n/h2n, or one "
                       f"nn.Parameter (hidden_size, input_size) per gate and source, W_ir/W_hr "
                       f"with b_ir/b_hr, as torch.nn's documentation writes them); it has "
                       f"{', '.join(have) or 'none'}" + (f" (its layers: {layers})" if layers else ""))


def _linear_pair(m, D: int, H: int):
    """The two nn.Linear layers of a module read as torch.nn's weights, or None: exactly one
    with in_features D and one with in_features H (D != H), both with a bias and the same
    out_features, a multiple 1, 3 or 4 of H (rnn, gru, lstm)."""
    if D == H:
        return None
    lin = [(n, mod) for n, mod in m.named_modules()
           if isinstance(mod, torch.nn.Linear) and mod.bias is not None]
    ih = [(n, mod) for n, mod in lin if mod.in_features == D]
    hh = [(n, mod) for n, mod in lin if mod.in_features == H]
    if len(ih) != 1 or len(hh) != 1:
        return None
    (a, la), (b, lb) = ih[0], hh[0]
    if la.out_features != lb.out_features or la.out_features not in (H, 3 * H, 4 * H):
        return None
    names = {"weight_ih_l0": f"{a}.weight", "weight_hh_l0": f"{b}.weight",
             "bias_ih_l0": f"{a}.bias", "bias_hh_l0": f"{b}.bias"}
    note = (f"{a} (nn.Linear({la.in_features}, {la.out_features}) when input_size is {D}) is read "
            f"as weight_ih_l0 and bias_ih_l0, {b} (nn.Linear({lb.in_features}, {lb.out_features}) "
            f"when hidden_size is {H}) as weight_hh_l0 and bias_hh_l0")
    return names, note


def infer_cell(factory, name: str, cell: str | None, unit_call) -> str:
    """--cell, else the class name (…LSTM…, …GRU…, …RNN…), else weight_ih's rows / H."""
    if cell is not None:
        return cell
    lower = name.lower()
    for c in ("lstm", "gru", "rnn"):
        if c in lower:
            return c
    m = unit_call(factory, 3, 2)
    if not isinstance(m, torch.nn.Module):  # read like the module it should be: say what it is
        raise SubjectError(f"{name}(3, 2) returned {shown(m, 40)} ({type(m).__name__}), "
                           "expected an nn.Module (torch.nn convention)")
    w = dict(m.named_parameters())
    names, _, gates = find_parameters(m, name, 3, 2)
    if gates is not None:
        return gates.cell
    G = w[names["weight_ih_l0"]].shape[0] // 2
    cells = {1: "rnn", 3: "gru", 4: "lstm"}
    if G not in cells:
        raise SubjectError(f"cannot tell the cell of {name}: weight_ih_l0 has {2 * G} rows for "
                           "hidden_size 2; give --cell")
    return cells[G]


def is_module_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


__all__ = ["D2LTorchUnit", "TorchNNUnit", "find_parameters", "infer_cell", "is_module_class", "one_line"]
