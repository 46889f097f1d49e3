"""Optimisers written out by hand: SGD (d2l's ``sgd``), Adam and Adagrad (``torch.optim``'s
rules), and min-char-rnn's Adagrad.

``SGD``, ``Adam`` and ``Adagrad`` update NumPy parameters in place with the same
arithmetic, in the same order, as ``torch.optim.SGD / Adam / Adagrad``, so the two
backends take the same steps. ``AdagradMinChar`` is the update of Karpathy's
``min-char-rnn.py``, which differs from torch's Adagrad in two ways: ε sits inside the
square root (``g / sqrt(s + 1e-8)``, not ``g / (sqrt(s) + 1e-10)``), and every gradient
entry is first clipped to [-5, 5]. Each keeps its state in plain named arrays that
``state_dict`` hands to a checkpoint.
"""

from __future__ import annotations

import numpy as np

from ..arrays import check_grads, check_grads_fit
from ..errors import CheckpointError, ConfigError


def check_step_grads(grads, params: dict) -> dict:
    """A dict of float arrays named and shaped as ``params`` (ParamError otherwise)."""
    return check_grads_fit(check_grads(grads), params)


class SGD:
    """θ ← θ - lr · g (d2l's ``sgd``; the loss is already a mean, so no division by B)."""

    name = "sgd"

    def __init__(self, params: dict, lr: float):
        self.params, self.lr = params, float(lr)

    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        for k, p in self.params.items():
            p -= p.dtype.type(self.lr) * grads[k]

    def state_dict(self) -> dict:
        return {"step": 0, "arrays": {}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("arrays"):
            raise CheckpointError("SGD has no per-parameter state, but the checkpoint holds some")


class Adam:
    """m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;
    θ ← θ - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + ε)   (torch.optim.Adam's form)."""

    name = "adam"

    def __init__(self, params: dict, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, float(lr), betas, float(eps)
        self.t = 0  # steps taken: the bias correction needs it, and a checkpoint keeps it
        self.m = {k: np.zeros_like(p) for k, p in params.items()}  # first moments
        self.v = {k: np.zeros_like(p) for k, p in params.items()}  # second moments

    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        b1, b2 = self.betas
        self.t += 1
        step_size = self.lr / (1 - b1 ** self.t)
        bias2_sqrt = np.sqrt(1 - b2 ** self.t)
        for k, p in self.params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v) / p.dtype.type(bias2_sqrt) + p.dtype.type(self.eps)  # same shape as p
            p -= p.dtype.type(step_size) * (m / denom)

    def state_dict(self) -> dict:
        arrays = {f"m.{k}": v for k, v in self.m.items()}
        arrays.update({f"v.{k}": v for k, v in self.v.items()})
        return {"step": self.t, "arrays": arrays}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["step"])
        for k in self.params:
            self.m[k][...] = _get(state, f"m.{k}", self.m[k].shape)
            self.v[k][...] = _get(state, f"v.{k}", self.v[k].shape)


class Adagrad:
    """s ← s + g²;  θ ← θ - lr · g / (sqrt(s) + ε),  ε = 1e-10   (torch.optim.Adagrad, no decay)."""

    name = "adagrad"

    def __init__(self, params: dict, lr: float, eps: float = 1e-10):
        self.params, self.lr, self.eps = params, float(lr), float(eps)
        self.t = 0
        self.sum = {k: np.zeros_like(p) for k, p in params.items()}  # s = Σ g², torch's "sum"

    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        self.t += 1
        for k, p in self.params.items():
            g = grads[k]
            self.sum[k] += g * g
            p -= p.dtype.type(self.lr) * (g / (np.sqrt(self.sum[k]) + p.dtype.type(self.eps)))

    def state_dict(self) -> dict:
        return {"step": self.t, "arrays": {f"sum.{k}": v for k, v in self.sum.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["step"])
        for k in self.params:
            self.sum[k][...] = _get(state, f"sum.{k}", self.sum[k].shape)


class AdagradMinChar:
    """min-char-rnn's Adagrad, its two lines after its clip:

        np.clip(dparam, -5, 5, out=dparam)             # in lossFun, "to mitigate exploding gradients"
        mem += dparam * dparam
        param += -learning_rate * dparam / np.sqrt(mem + 1e-8)

    i.e. g ← clip(g, -5, 5);  m ← m + g²;  θ ← θ - lr · g / sqrt(m + 1e-8). The state is
    min-char-rnn's ``mem`` (``mWxh`` ...), saved as ``mem.<name>``. The clip comes after
    rnnlab's global-norm clipping (``--clip``), which min-char-rnn does not have.
    """

    name = "adagrad-minchar"
    clip = 5.0  # min-char-rnn clips every gradient entry to [-5, 5]

    def __init__(self, params: dict, lr: float, eps: float = 1e-8):
        self.params, self.lr, self.eps = params, float(lr), float(eps)
        self.t = 0
        self.mem = {k: np.zeros_like(p) for k, p in params.items()}  # m = Σ clip(g)²

    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        self.t += 1
        for k, p in self.params.items():
            g = np.clip(grads[k], -self.clip, self.clip)  # same shape as p; the caller's g untouched
            self.mem[k] += g * g
            p -= p.dtype.type(self.lr) * (g / np.sqrt(self.mem[k] + p.dtype.type(self.eps)))

    def state_dict(self) -> dict:
        return {"step": self.t, "arrays": {f"mem.{k}": v for k, v in self.mem.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["step"])
        for k in self.params:
            self.mem[k][...] = _get(state, f"mem.{k}", self.mem[k].shape)


def _get(state: dict, key: str, shape) -> np.ndarray:
    arrays = state.get("arrays", {})
    if key not in arrays:
        raise CheckpointError(f"optimiser state has no {key!r}")
    arr = np.asarray(arrays[key])
    if arr.shape != tuple(shape):
        raise CheckpointError(f"optimiser state {key!r} has shape {arr.shape}, expected {tuple(shape)}")
    return arr


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad, "adagrad-minchar": AdagradMinChar}


def make_optimizer(name: str, params: dict, lr: float):
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    if not (lr > 0):
        raise ConfigError(f"learning rate must be positive, got {lr!r}")
    return OPTIMIZERS[name](params, lr)
