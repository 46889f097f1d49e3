"""Input checks shared by both backends: token ids, targets, weights and states.

A bad array is refused here with a ShapeError that names the argument, the shape or
value found and what was expected, instead of a traceback from deep inside NumPy.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .errors import ShapeError


def check_tokens(X, vocab_size: int, name: str = "X") -> np.ndarray:
    """(B, T) integer ids in [0, V). Returns them as an int64 NumPy array."""
    if hasattr(X, "detach"):  # a torch tensor: check its values on the host
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be a (batch, steps) array of token ids, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError(f"{name} has an empty dimension: shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ShapeError(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size})")
    return arr.astype(np.int64, copy=False)


def check_weights(weights, n: int):
    if weights is None:
        return None
    w = np.asarray(weights.detach().cpu().numpy() if hasattr(weights, "detach") else weights)
    if w.shape != (n,):
        raise ShapeError(f"weights must have shape ({n},) (one per token, time-major), got {w.shape}")
    return w


def state_shapes(cfg: ModelConfig, batch_size: int) -> list[tuple[int, int]]:
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    return [(batch_size, cfg.num_hiddens)] * n


def check_state(cfg: ModelConfig, state, batch_size: int) -> None:
    """The state must be a tuple with one (B, H) array per layer, direction and kind."""
    expected = state_shapes(cfg, batch_size)
    if not isinstance(state, (tuple, list)):
        raise ShapeError(f"state must be a tuple of (B, H) arrays, got {type(state).__name__}")
    if len(state) != len(expected):
        kinds = "(H, C)" if cfg.cell == "lstm" else "(H,)"
        raise ShapeError(
            f"state for {cfg.cell} with {cfg.num_layers} layer(s) x {cfg.num_directions} "
            f"direction(s) needs {len(expected)} arrays ({kinds} per unit), got {len(state)}"
        )
    for i, (s, shape) in enumerate(zip(state, expected)):
        if tuple(s.shape) != shape:
            raise ShapeError(f"state[{i}] has shape {tuple(s.shape)}, expected {shape} (batch, hidden)")
