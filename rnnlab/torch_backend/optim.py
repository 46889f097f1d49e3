"""The torch backend's optimisers: ``torch.optim``'s SGD, Adam and Adagrad behind the
backend's interface, and min-char-rnn's Adagrad (which torch does not have) in torch ops.

``step(grads)`` takes the gradient dict that ``loss_and_grads`` returns and updates the
parameter tensors in place; ``state_dict()`` / ``load_state_dict()`` use the NumPy
optimisers' format (``{"step": t, "arrays": {"m.<name>": ..., "v.<name>": ...}}`` for
Adam, ``"sum.<name>"`` for Adagrad, ``"mem.<name>"`` for min-char-rnn's), so a checkpoint
moves between backends. The NumPy optimisers in ``numpy_backend/optim.py`` take the same
steps as these.
"""

from __future__ import annotations

import torch

from ..arrays import check_grads_fit
from ..errors import ConfigError, ParamError
from ..numpy_backend.optim import (  # the shared "missing / misshaped" CheckpointError
    SGD,
    _get,
)

# torch.optim state key -> the NumPy optimisers' array prefix
STATE_KEYS = {"sgd": {}, "adam": {"exp_avg": "m", "exp_avg_sq": "v"}, "adagrad": {"sum": "sum"}}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}


def check_tensor_grads(grads) -> dict:
    """A dict of float tensors (``arrays.check_grads`` is the NumPy twin)."""
    if not isinstance(grads, dict):
        raise ParamError(f"grads must be a dict of tensors, got {type(grads).__name__}")
    for name, g in grads.items():
        if not isinstance(g, torch.Tensor) or not g.dtype.is_floating_point:
            what = f"dtype {g.dtype}" if isinstance(g, torch.Tensor) else type(g).__name__
            raise ParamError(f"gradient {name!r} must be a float torch tensor, got {what}")
    return grads


def check_step_grads(grads, params: dict) -> dict:
    """A dict of float tensors named and shaped as ``params`` (ParamError otherwise)."""
    return check_grads_fit(check_tensor_grads(grads), params)


class TorchOptimizer:
    """A ``torch.optim`` optimiser over a dict of rnnlab tensors, stepped with a grads dict.

    The gradients are lent to ``p.grad`` for the step and taken back after it, so no
    ``.grad`` stays on the parameters (as ``loss_and_grads`` leaves none either).
    """

    def __init__(self, name: str, params: dict, lr: float):
        if name not in OPTIMIZERS:
            names = [*OPTIMIZERS, TorchAdagradMinChar.name]
            raise ConfigError(f"unknown optimizer {name!r}; expected one of {', '.join(names)}")
        _check_lr(lr)
        self.name, self.params, self.lr = name, params, float(lr)
        self.optimizer = OPTIMIZERS[name](list(params.values()), lr=self.lr)

    @property
    def lr(self) -> float:
        """The learning rate of the next steps; a schedule assigns it (rnnlab.schedule)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = float(value)
        if hasattr(self, "optimizer"):  # torch.optim reads it from its parameter groups
            for group in self.optimizer.param_groups:
                group["lr"] = self._lr

    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        if self.name == "sgd":
            # torch.optim.SGD's update, p.add_(g, alpha=-lr) for every tensor, as one
            # multi-tensor call: without the optimiser's per-call machinery (about 0.2 ms,
            # 3% of a step of d2l's LSTM through cuDNN / oneDNN)
            with torch.no_grad():
                torch._foreach_add_(list(self.params.values()), [grads[k] for k in self.params],
                                    alpha=-self.lr)
            return
        for k, p in self.params.items():
            p.grad = grads[k]
        try:
            self.optimizer.step()  # runs under no_grad
        finally:
            for p in self.params.values():
                p.grad = None

    def state_dict(self) -> dict:
        """``{"step": t, "arrays": {...}}`` with tensors (``to_numpy`` converts them)."""
        step, arrays = 0, {}
        for k, p in self.params.items():
            st = self.optimizer.state.get(p, {})
            if "step" in st:
                step = int(st["step"])
            for key, prefix in STATE_KEYS[self.name].items():
                arrays[f"{prefix}.{k}"] = st[key] if key in st else torch.zeros_like(p)
        return {"step": step, "arrays": arrays}

    def load_state_dict(self, state: dict) -> None:
        """Restore from the NumPy format; a missing or misshaped array is a CheckpointError."""
        if self.name == "sgd":
            _sgd_check(state)
            return
        for k, p in self.params.items():
            st = self.optimizer.state[p]
            for key, prefix in STATE_KEYS[self.name].items():
                arr = _get(state, f"{prefix}.{k}", tuple(p.shape))
                st[key] = torch.as_tensor(arr).to(device=p.device, dtype=p.dtype).clone()
            # torch.optim keeps the step count as a CPU scalar tensor per parameter
            old = st.get("step")
            st["step"] = torch.tensor(float(state["step"]),
                                      dtype=old.dtype if old is not None else _scalar_dtype())


def _scalar_dtype() -> torch.dtype:
    # torch.optim's own choice for the step counter (optimizer._get_scalar_dtype)
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _sgd_check(state: dict) -> None:
    SGD({}, 1.0).load_state_dict(state)  # the same refusal as the NumPy SGD


class TorchAdagradMinChar:
    """min-char-rnn's Adagrad in torch ops, the NumPy ``AdagradMinChar`` line for line:
    g ← clip(g, -5, 5);  m ← m + g²;  θ ← θ - lr · g / sqrt(m + 1e-8)."""

    name = "adagrad-minchar"
    clip = 5.0  # min-char-rnn clips every gradient entry to [-5, 5]

    def __init__(self, params: dict, lr: float, eps: float = 1e-8):
        _check_lr(lr)
        self.params, self.lr, self.eps = params, float(lr), float(eps)
        self.t = 0
        self.mem = {k: torch.zeros_like(p) for k, p in params.items()}  # m = Σ clip(g)²

    @torch.no_grad()
    def step(self, grads: dict) -> None:
        grads = check_step_grads(grads, self.params)
        self.t += 1
        for k, p in self.params.items():
            g = grads[k].clamp(-self.clip, self.clip)  # same shape as p; the caller's g untouched
            self.mem[k] += g * g
            p -= self.lr * (g / torch.sqrt(self.mem[k] + self.eps))

    def state_dict(self) -> dict:
        return {"step": self.t, "arrays": {f"mem.{k}": v for k, v in self.mem.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["step"])
        for k, p in self.params.items():
            arr = _get(state, f"mem.{k}", tuple(p.shape))
            self.mem[k] = torch.as_tensor(arr).to(device=p.device, dtype=p.dtype).clone()


def _check_lr(lr) -> None:
    if not (lr > 0):
        raise ConfigError(f"learning rate must be positive, got {lr!r}")


OPTIMIZER_NAMES = (*OPTIMIZERS, "adagrad-minchar")


def make_optimizer(name: str, params: dict, lr: float):
    if name == TorchAdagradMinChar.name:
        return TorchAdagradMinChar(params, lr)
    return TorchOptimizer(name, params, lr)
