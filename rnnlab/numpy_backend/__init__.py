"""The NumPy backend: the executable specification, gradients by hand-written BPTT."""

from __future__ import annotations

import numpy as np

from ..arguments import Flag, checked
from ..arrays import (
    LearningRate,
    Theta,
    check_arrays_of,
    check_finite_inputs,
    check_grads,
    check_inputs,
    check_numpy_params,
    check_optimizer_args,
    check_param_values,
    check_real_targets,
    check_state,
    check_states_of,
    check_tokens,
    check_truncate,
    check_weights,
    zero_state_shape,
)
from ..config import ModelConfig
from ..dropout import check_dropout_masks, check_finite_masks
from ..errors import ConfigError, ShapeError
from ..params import check_dtype, validate_params
from .functional import clip_grads, sgd, sigmoid, softmax_cross_entropy
from .model import loss_and_grads, model_backward, model_forward
from .optim import OPTIMIZERS, check_step_grads, make_optimizer

_FROM_NUMPY = "; make the parameters with backend.from_numpy(params)"

__all__ = ["NumpyBackend", "model_forward", "model_backward", "loss_and_grads",
           "sigmoid", "softmax_cross_entropy", "clip_grads", "sgd"]


class NumpyBackend:
    """Backend protocol over ``numpy_backend.model``. Arrays are plain NumPy arrays."""

    name = "numpy"

    def __init__(self, dtype="float32", device: str | None = None):
        if device not in (None, "cpu"):
            raise ConfigError(f"the numpy backend runs on the CPU only, not device {device!r}")
        self.dtype = check_dtype(dtype)
        self.device = "cpu"

    def __repr__(self) -> str:
        return f"NumpyBackend(dtype={self.dtype.name})"

    # -- arrays -------------------------------------------------------------------
    def from_numpy(self, params: dict) -> dict:
        """Copies in the backend's dtype. A value that is not a finite real array, or (for
        a parameter dict) a missing, extra or misshaped array, is a ParamError naming it."""
        return {k: np.array(v, dtype=self.dtype) for k, v in check_param_values(params).items()}

    def to_numpy(self, params: dict) -> dict:
        return {k: np.array(v) for k, v in check_arrays_of("params", params, np.ndarray, "").items()}

    def tokens(self, X) -> np.ndarray:
        """(B, T) int64 ids; a float, negative, ragged or non-2-D X is a ShapeError (the
        vocabulary bound is checked where it is known, in forward / loss_and_grads)."""
        return check_tokens(X, None)

    def state_to_numpy(self, state: tuple) -> tuple:
        return tuple(np.array(s) for s in check_states_of("state", state, np.ndarray))

    def state_from_numpy(self, state: tuple) -> tuple:
        return tuple(np.array(s, dtype=self.dtype) for s in check_states_of("state", state, None))

    # -- model --------------------------------------------------------------------
    def _config(self, cell, params) -> ModelConfig:
        # names, shapes and dtype on every call: no pass over the values, so cheap
        return check_numpy_params(cell, params)

    def begin_state(self, cell, batch_size: int, num_hiddens: int | None = None) -> tuple:
        """Zeros, one (B, H) array per layer, direction and kind of state (d2l's init_state)."""
        n, B, H = zero_state_shape(cell, batch_size, num_hiddens)
        return tuple(np.zeros((B, H), dtype=self.dtype) for _ in range(n))

    def _check(self, cell, params, X, state):
        cfg = self._config(cell, params)
        if cfg.input_size is None:
            X = check_tokens(X, cfg.vocab_size)  # (B, T) ids
        else:  # (B, T, In) reals, in the parameters' dtype
            X = np.asarray(check_inputs(X, cfg.input_size), dtype=params["b_q"].dtype)
        check_state(cfg, state, X.shape[0], finite=True, array_type=np.ndarray)
        return cfg, X

    @staticmethod
    def _targets(cfg: ModelConfig, Y, X: np.ndarray, dtype) -> np.ndarray:
        """(B, T) target ids for the softmax head, reals for the squared-error head."""
        if cfg.head == "mse":
            return np.asarray(check_real_targets(Y, X.shape[:2]), dtype=dtype)
        Y = check_tokens(Y, cfg.vocab_size, name="Y")
        if Y.shape != X.shape[:2]:
            raise ShapeError(f"Y has shape {Y.shape}, expected X's shape {X.shape[:2]}")
        return Y

    def forward(self, cell, params: dict, X, state: tuple):
        """Logits (T*B, V), time-major, and the state after the last step."""
        cfg, X = self._check(cell, params, X, state)
        logits, state_T, _ = model_forward(cfg, params, X, tuple(state))
        if not np.isfinite(logits).all():  # O(T*B*V), far below the forward's own cost
            check_finite_inputs(params, state)  # a NaN / inf parameter is named
        return logits, state_T

    @checked
    def loss_and_grads(self, cell, params: dict, X, Y, state: tuple, weights=None,
                       state_grads: Flag = False, dropout_masks=None, truncate=None):
        """Mean cross-entropy (``head="mse"``: mean squared error against real targets Y
        (B, T)), its gradients by BPTT, the final state (a fresh array). X is (B, T) ids,
        or (B, T, In) reals for a model with ``input_size``; ``weights`` (T*B,),
        time-major, weights each step's loss (0 leaves it out: a loss mask).

        With ``state_grads=True`` a fourth value is returned: dL/d(initial state).
        ``dropout_masks`` (``rnnlab.dropout.dropout_masks``): dropout between layers, for
        training; None (the default) is no dropout. ``truncate`` k: each step's loss sends
        its gradient k steps back at most (d2l 8.7's truncated BPTT inside the window);
        None (the default): full BPTT.
        """
        cfg, X = self._check(cell, params, X, state)
        truncate = check_truncate(cfg, truncate)
        Y = self._targets(cfg, Y, X, params["b_q"].dtype)
        weights = check_weights(weights, Y.size)
        masks = check_dropout_masks(cfg, dropout_masks, X.shape[1], X.shape[0])
        if masks is not None:
            masks = tuple(np.asarray(m, dtype=params["b_q"].dtype) for m in masks)
        loss, grads, state_T, dstate0 = loss_and_grads(cfg, params, X, Y, tuple(state), weights,
                                                       masks, truncate)
        if not np.isfinite(loss):  # only now look for the cause among the inputs
            check_finite_inputs(params, state)
            check_finite_masks(masks)
        return (loss, grads, state_T, dstate0) if state_grads else (loss, grads, state_T)

    @checked
    def clip_grads(self, grads: dict, theta: Theta) -> float:
        return clip_grads(check_grads(grads), theta)

    @checked
    def sgd(self, params: dict, grads: dict, lr: LearningRate) -> None:
        check_arrays_of("params", params, np.ndarray, _FROM_NUMPY)
        check_step_grads(grads, params)
        sgd(params, grads, lr)

    def make_optimizer(self, name: str, params: dict, lr: float):
        """``sgd`` | ``adam`` | ``adagrad`` | ``adagrad-minchar``, hand-written; ``step(grads)`` updates in place."""
        lr = check_optimizer_args(name, params, lr, tuple(OPTIMIZERS), np.ndarray, _FROM_NUMPY)
        return make_optimizer(name, params, lr)

    def validate(self, cell, params: dict) -> ModelConfig:
        return validate_params(cell, params)
