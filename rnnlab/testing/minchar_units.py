"""The min-char-rnn convention: Karpathy's ``lossFun(inputs, targets, hprev)``, which reads
its weights from the module's globals and clips its gradients to [-5, 5] (``CLIP``)."""

from __future__ import annotations

import ast
import inspect

import numpy as np

from ..errors import SubjectError

from . import conventions as cv
from .adapters import Unit, _grad_quantities, f64
from .compare import Quantity
from .spec import SpecResult
from .strategies import Constraints, Problem

MIN_CHAR_GLOBALS = ("Wxh", "Whh", "Why", "bh", "by")
MIN_CHAR_RETURNS = ("loss", "dWxh", "dWhh", "dWhy", "dbh", "dby", "hs[len(inputs)-1]")
# the sizes each weight is made with, in order: Wxh = np.random.randn(hidden_size, vocab_size)
SHAPES = {"Wxh": ("H", "V"), "Whh": ("H", "H"), "Why": ("V", "H"), "bh": ("H",), "by": ("V",)}
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
        self.weights_as = weights_passing(fn, name)
        self.sizes = size_names(_source_text(module, source)) if self.weights_as is None else {}
        if self.weights_as == "arguments":
            self.notes.append(f"{name} takes the weights as arguments (Wxh, Whh, Why, bh, by), "
                              "not as globals")
        elif self.weights_as is not None:
            self.notes.append(f"{name} takes the weights as one dict, {self.weights_as}, keyed "
                              "Wxh, Whh, Why, bh, by")

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
        for n, size in self.sizes.items():  # the script's own names for them (V = len(chars))
            setattr(self.module, n, V if size == "V" else H)

    def _call(self, p: Problem, W: dict):
        W = {k: np.array(v) for k, v in W.items()}
        self._set(W, p.X.shape[2], p.state0[0].shape[1])
        inputs = [int(i) for i in p.ids[:, 0]]
        targets = [int(i) for i in p.targets[:, 0]]
        hprev = np.array(p.state0[0].T)  # (H, 1)
        watch = {"hprev": hprev, **W}
        if self.weights_as == "arguments":  # lossFun(inputs, targets, hprev, Wxh, ..., by)
            res = self.call(self.name, lambda *a: self.fn(*a, **W), inputs, targets, hprev,
                            watch=watch)
        elif self.weights_as is not None:  # lossFun(inputs, targets, hprev, params)
            res = self.call(self.name, self.fn, inputs, targets, hprev, dict(W), watch=watch)
        else:
            res = self.call(self.name, self.fn, inputs, targets, hprev, watch=watch)
        return self.unpack(self.name, res, MIN_CHAR_RETURNS)

    def observe(self, p: Problem, grads: bool) -> dict:
        vals = self._call(p, cv.to_subject(self.layout, p.params))
        self.last_raw = dict(zip(MIN_CHAR_RETURNS[1:], vals[1:]))  # by name, for probe
        obs = {n: f64(v, n) for n, v in zip(MIN_CHAR_RETURNS, vals)}
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


def weights_passing(fn, name: str) -> str | None:
    """How ``lossFun`` gets its weights: None (Karpathy's globals), ``"arguments"``
    (``lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by)``, by name, in any order), or
    the name of one more argument that takes them as a dict
    (``lossFun(inputs, targets, hprev, params)``)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    extra = [p for p in params[3:] if p.default is inspect.Parameter.empty
             and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not extra:
        return None
    names = [p.name for p in extra]
    if set(names) == set(MIN_CHAR_GLOBALS):
        return "arguments"
    if len(extra) == 1 and extra[0].kind is not inspect.Parameter.KEYWORD_ONLY:
        return names[0]
    raise SubjectError(f"{name}{inspect.signature(fn)}: after (inputs, targets, hprev), "
                       "min-char-rnn's weights are globals, or the arguments Wxh, Whh, Why, bh, "
                       f"by, or one dict of them; {name} also needs {', '.join(names)}")


def _source_text(module, source) -> str:
    try:
        return source.read_text() if source is not None else inspect.getsource(module)
    except (OSError, TypeError, UnicodeDecodeError):
        return ""


def size_names(text: str) -> dict:
    """{a global's name: "V" or "H"}: the names the script makes its weights with at the top
    level, ``Wxh = np.random.randn(H, V) * 0.01``, ``bh = np.zeros((H, 1))``. rnnlab sets
    vocab_size and hidden_size (Karpathy's names); a script that calls them otherwise (and
    reads them in lossFun) gets its own names set too, to the example's sizes, as its
    vocabulary size could not be read from input.txt."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    seen: dict = {}  # name -> the sizes it is used for
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id in SHAPES):
            continue
        call = next((c for c in ast.walk(stmt.value) if isinstance(c, ast.Call) and c.args), None)
        if call is None:
            continue
        args = call.args[0].elts if isinstance(call.args[0], ast.Tuple) else call.args
        for arg, size in zip(args, SHAPES[stmt.targets[0].id]):
            if isinstance(arg, ast.Name) and arg.id not in MIN_CHAR_GLOBALS:
                seen.setdefault(arg.id, set()).add(size)
    return {n: sizes.pop() for n, sizes in seen.items() if len(sizes) == 1}  # one size each
