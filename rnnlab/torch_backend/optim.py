"""SGD, Adam and Adagrad for the torch backend: ``torch.optim`` behind the backend's interface.

``step(grads)`` takes the gradient dict that ``loss_and_grads`` returns and updates the
parameter tensors in place; ``state_dict()`` / ``load_state_dict()`` use the NumPy
optimisers' format (``{"step": t, "arrays": {"m.<name>": ..., "v.<name>": ...}}`` for
Adam, ``"sum.<name>"`` for Adagrad), so a checkpoint moves between backends. The NumPy
optimisers in ``numpy_backend/optim.py`` are written to take the same steps as these.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..numpy_backend.optim import _get  # the shared "missing / misshaped" CheckpointError

# torch.optim state key -> the NumPy optimisers' array prefix
STATE_KEYS = {"sgd": {}, "adam": {"exp_avg": "m", "exp_avg_sq": "v"}, "adagrad": {"sum": "sum"}}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}


class TorchOptimizer:
    """A ``torch.optim`` optimiser over a dict of rnnlab tensors, stepped with a grads dict.

    The gradients are lent to ``p.grad`` for the step and taken back after it, so no
    ``.grad`` stays on the parameters (as ``loss_and_grads`` leaves none either).
    """

    def __init__(self, name: str, params: dict, lr: float):
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
        if not (lr > 0):
            raise ConfigError(f"learning rate must be positive, got {lr!r}")
        self.name, self.params, self.lr = name, params, float(lr)
        self.optimizer = OPTIMIZERS[name](list(params.values()), lr=self.lr)

    def step(self, grads: dict) -> None:
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
    from ..numpy_backend.optim import SGD

    SGD({}, 1.0).load_state_dict(state)  # the same refusal as the NumPy SGD


def make_optimizer(name: str, params: dict, lr: float) -> TorchOptimizer:
    return TorchOptimizer(name, params, lr)
