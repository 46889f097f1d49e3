"""The backend protocol and ``get_backend``: one interface, two implementations.

Training, prediction and the CLI are written against :class:`Backend` only, so
``get_backend("numpy")`` and ``get_backend("torch", device="cuda")`` swap freely.
The registry sits above both backends and neither imports it. The numpy backend is
imported with this module; the torch backend only when it is asked for, so
``import rnnlab`` never imports torch.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

from .checks import refuse
from .errors import TORCH_INSTALL, BackendError, ConfigError
from .numpy_backend import NumpyBackend

BACKENDS = ("numpy", "torch")


@runtime_checkable
class Backend(Protocol):
    name: str  # "numpy" | "torch"
    dtype: Any  # the backend's float dtype (float32 by default)

    def from_numpy(self, params: dict) -> dict: ...  # NumPy arrays -> backend arrays (copies)

    def to_numpy(self, params: dict) -> dict: ...  # backend arrays -> NumPy arrays (copies)

    def tokens(self, X) -> Any: ...  # (B, T) ids -> the backend's integer array

    def begin_state(self, cell, batch_size: int, num_hiddens: int | None = None) -> tuple: ...

    def forward(self, cell, params: dict, X, state: tuple) -> tuple: ...  # (logits, state)

    def loss_and_grads(self, cell, params: dict, X, Y, state: tuple, weights=None,
                       state_grads: bool = False, dropout_masks=None) -> tuple: ...
    # (loss, grads, state[, dstate0]); dropout_masks: rnnlab.dropout.dropout_masks(...) or
    # None (no dropout); forward never applies dropout. The numpy and torch backends also
    # take truncate=k: each step's gradient stops k steps back (None: full BPTT)

    def clip_grads(self, grads: dict, theta: float) -> float: ...  # pre-clip global norm

    def sgd(self, params: dict, grads: dict, lr: float) -> None: ...

    def make_optimizer(self, name: str, params: dict, lr: float) -> Any: ...
    # .lr: the learning rate of the next steps, assignable (a schedule sets it per epoch)
    # "sgd" | "adam" | "adagrad" | "adagrad-minchar": .step(grads),
    # .state_dict() -> {"step", "arrays"}, .load_state_dict(state); arrays convert with to_numpy / from_numpy

    def state_to_numpy(self, state: tuple) -> tuple: ...

    def state_from_numpy(self, state: tuple) -> tuple: ...


# the keyword options each backend's constructor takes
BACKEND_OPTIONS = {"numpy": ("dtype", "device"), "torch": ("dtype", "device", "impl")}


def get_backend(name: str = "numpy", **options) -> Backend:
    """``get_backend("numpy", dtype="float64")``, ``get_backend("torch", device="cuda")``."""
    if not isinstance(name, str):
        raise BackendError(f"backend name must be 'numpy' or 'torch', got {type(name).__name__}")
    unknown = sorted(set(options) - set(BACKEND_OPTIONS.get(name, options)))
    if unknown:  # a keyword the backend would not take: named, before torch is imported
        torch_only = [k for k in unknown if k in BACKEND_OPTIONS["torch"]]
        why = (f"; {', '.join(torch_only)} is an option of the torch backend (the numpy "
               "backend has one implementation, its hand-written BPTT)" if torch_only else "")
        raise ConfigError(f"get_backend({name!r}) has no option(s) {', '.join(unknown)}; its "
                          f"options are {', '.join(BACKEND_OPTIONS[name])}{why}")
    if name == "numpy":
        return NumpyBackend(**options)
    if name == "torch":
        try:  # lazy: torch is optional and heavy, and only this branch needs it
            from .torch_backend import TorchBackend
        except ImportError as exc:  # torch itself missing
            raise BackendError(
                f"the torch backend needs PyTorch ({exc}); install its CPU build with "
                f"`{TORCH_INSTALL}` (for a GPU: the command pytorch.org gives)"
            ) from exc
        return TorchBackend(**options)
    raise BackendError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")


def check_backend(backend, name: str = "backend"):
    """An rnnlab backend: what ``rnnlab.get_backend`` returns (anything with its methods)."""
    if isinstance(backend, Backend):
        return backend
    raise refuse(name, backend, "an rnnlab backend, rnnlab.get_backend('numpy') or "
                 "rnnlab.get_backend('torch')")


def _backend(name: str, value):  # check_backend as a declared check: (name, value)
    return check_backend(value, name)


AnyBackend = Annotated[Backend, _backend]  # an argument that must be an rnnlab backend
