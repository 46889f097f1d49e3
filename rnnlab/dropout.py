"""Dropout between stacked layers, with masks drawn outside the backends.

torch.nn.LSTM(dropout=p) and char-rnn drop the *outputs* of every layer but the last,
in training only, with inverted scaling so evaluation needs no change::

    input of layer k+1 = M_k ⊙ outputs of layer k,   M_k ∈ {0, 1/(1-p)}  (T, B, H*D)

(the state handed on to the next window, H_T and C_T, is taken before the mask, as in
torch.nn). rnnlab draws the masks here, with NumPy, from an explicit Generator, and both
backends take them as an argument (``loss_and_grads(..., dropout_masks=masks)``): the
same masks give the same numbers on NumPy and PyTorch, and the backward through a mask
is just ``dX = M ⊙ dY``. No masks (``None``) means no dropout: evaluation, prediction.
"""

from __future__ import annotations

import numpy as np

from .checks import check_fits, check_instance, check_int, check_number
from .config import ModelConfig
from .errors import ConfigError, NonFiniteParamError, ShapeError


def dropout_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The masks' randomness for batch ``batch`` of epoch ``epoch``: derived, never carried,
    so a resumed run draws the same masks (the trailing 1 keeps it apart from the
    partition's ``default_rng([seed, epoch])``)."""
    return np.random.default_rng([seed, epoch, batch, 1])


def dropout_masks(cfg: ModelConfig, num_steps: int, batch_size: int,
                  rng: np.random.Generator, p: float | None = None) -> tuple:
    """One (T, B, H*D) float64 mask of {0, 1/(1-p)} per layer boundary (num_layers - 1).

    ``p`` defaults to ``cfg.dropout``; at p = 0 every mask is all ones (the identity).
    Each unit is kept with probability 1 - p, independently (``u >= p``, u ~ U[0, 1)).
    """
    check_instance("cfg", cfg, ModelConfig)
    num_steps = check_int("num_steps", num_steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                          f"got {type(rng).__name__}")
    p = cfg.dropout if p is None else check_number("dropout", p, 0, 1, hi_open=True)
    shape = (num_steps, batch_size, cfg.num_hiddens * cfg.num_directions)
    check_fits(8 * num_steps * batch_size * shape[2] * max(cfg.num_layers - 1, 0),
               f"dropout masks of num_steps={num_steps}, batch_size={batch_size}",
               "use a smaller num_steps or batch_size")
    scale = 1.0 / (1.0 - p)  # inverted dropout: E[M] = 1, so evaluation uses no mask
    return tuple(np.where(rng.random(shape) >= p, scale, 0.0)  # (T, B, H*D)
                 for _ in range(cfg.num_layers - 1))


def check_dropout_masks(cfg: ModelConfig, masks, num_steps: int, batch_size: int) -> tuple:
    """A tuple of num_layers - 1 real arrays (or tensors) of shape (T, B, H*D), or None;
    named on error. Their values are not read here: a NaN or infinite mask makes the
    loss non-finite, and only then does :func:`check_finite_masks` name it (so the
    common path makes no pass over them, and no device sync on a GPU)."""
    if masks is None:
        return None
    if not isinstance(masks, (tuple, list)):
        raise ShapeError(f"dropout_masks must be a tuple of (T, B, H*D) arrays or None, "
                         f"got {type(masks).__name__}")
    if len(masks) != cfg.num_layers - 1:
        raise ShapeError(f"dropout_masks: a {cfg.num_layers}-layer model has "
                         f"{cfg.num_layers - 1} layer boundaries, got {len(masks)} masks")
    expected = (num_steps, batch_size, cfg.num_hiddens * cfg.num_directions)
    for k, m in enumerate(masks):
        if not (isinstance(m, np.ndarray) or hasattr(m, "detach")):  # an array or a tensor
            raise ShapeError(f"dropout_masks[{k}] must be an array of shape {expected}, got "
                             f"{type(m).__name__}")
        if tuple(m.shape) != expected:
            raise ShapeError(f"dropout_masks[{k}] has shape {tuple(m.shape)}, expected "
                             f"{expected} (steps, batch, hidden * directions)")
        if m.dtype.is_complex if hasattr(m, "detach") else m.dtype.kind not in "biuf":
            raise ShapeError(f"dropout_masks[{k}] must hold real numbers, got dtype {m.dtype}")
    return tuple(masks)


def check_finite_masks(masks, to_numpy=None) -> None:
    """After a non-finite loss: name the dropout mask holding NaN or inf, if one does."""
    for k, m in enumerate(masks or ()):
        arr = np.asarray(to_numpy(m) if to_numpy is not None and hasattr(m, "detach") else m)
        bad = arr.size - int(np.isfinite(arr).sum())
        if bad:
            raise NonFiniteParamError(f"dropout_masks[{k}] holds {bad} NaN or infinite "
                                      "value(s)")
