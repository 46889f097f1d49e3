"""Elementwise nonlinearities, the two losses (softmax cross-entropy, squared error),
clipping and SGD, in NumPy.

Each backward sits directly below its forward and takes what the forward returned.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}) computed as ``(tanh(x/2) + 1) / 2``.

    The two are equal for every x, but this form never evaluates ``exp`` of a large
    number, so it cannot overflow: at |x| = 1e4 it returns exactly 0 or 1 where
    ``1 / (1 + np.exp(-x))`` warns and goes through inf. One transcendental instead of
    an exp and a division also makes it the cheapest stable form in NumPy. Its absolute
    error is about one ulp of 1 (2.2e-16 in float64, 1.2e-7 in float32): gates are
    accurate on the [0, 1] scale they are used on, though a tiny σ(-30) ≈ 1e-13 is not
    accurate relative to itself.
    """
    out = np.multiply(x, 0.5, out=out)  # same shape as x
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_backward(dY: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """dσ/dx = σ(x) (1 - σ(x)), written with the forward's output Y = σ(x)."""
    return dY * Y * (1 - Y)  # same shape as Y


def tanh_backward(dY: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """d tanh/dx = 1 - tanh(x)², written with the forward's output Y = tanh(x)."""
    return dY * (1 - Y * Y)  # same shape as Y


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (N, V) softmax of the logits
    targets: np.ndarray  # (N,) int target ids
    weights: np.ndarray | None  # (N,) per-token weights, None for all ones


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray,
                          weights: np.ndarray | None = None):
    """L = (1/N) Σ_n w_n (logsumexp(z_n) - z_n[y_n]), stable by subtracting max_v z_n.

    ``weights`` (default all ones) lets tests weight every token's loss differently, so
    a gradient check cannot pass by symmetry. Returns ``(loss, cache)``.
    """
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, V): max entry is 0, exp ≤ 1
    exp = np.exp(shifted)  # (N, V)
    sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1) ≥ 1, so its log is finite
    nll = np.log(sum_exp[:, 0]) - shifted[np.arange(N), targets]  # (N,) -log softmax_y
    if weights is not None:
        nll = nll * weights  # (N,)
    loss = float(nll.sum() / N)
    return loss, CrossEntropyCache(exp / sum_exp, targets, weights)


def softmax_cross_entropy_backward(cache: CrossEntropyCache) -> np.ndarray:
    """dL/dz_n = w_n (softmax(z_n) - onehot(y_n)) / N."""
    probs, targets, weights = cache
    N = probs.shape[0]
    dlogits = probs.copy()  # (N, V)
    dlogits[np.arange(N), targets] -= 1
    if weights is not None:
        dlogits *= weights[:, None]
    dlogits /= N
    return dlogits


class SquaredErrorCache(NamedTuple):
    residuals: np.ndarray  # (N,) z_n - y_n
    weights: np.ndarray | None  # (N,) per-step weights, None for all ones


def squared_error(outputs: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None):
    """L = (1/N) Σ_n w_n (z_n - y_n)², the regression head's loss (``head="mse"``).

    ``outputs`` (N, 1) are the logits of width 1, ``targets`` (N,) reals, time-major like
    the cross-entropy's. The weights read the loss at chosen steps only (0 elsewhere): the
    adding problem weighs its last step by T, so L is the mean squared error of the
    answers, the number its baseline (≈ 0.167) is stated in. Returns ``(loss, cache)``.
    """
    N = outputs.shape[0]
    residuals = outputs[:, 0] - targets  # (N,)
    se = residuals * residuals  # (N,)
    if weights is not None:
        se = se * weights  # (N,)
    return float(se.sum() / N), SquaredErrorCache(residuals, weights)


def squared_error_backward(cache: SquaredErrorCache) -> np.ndarray:
    """dL/dz_n = 2 w_n (z_n - y_n) / N, as an (N, 1) column like the outputs."""
    residuals, weights = cache
    N = residuals.shape[0]
    d = residuals * (2.0 / N)  # (N,)
    if weights is not None:
        d = d * weights  # (N,)
    return d[:, None]  # (N, 1)


def global_norm(grads: dict) -> float:
    """sqrt(Σ_p ||g_p||²), accurate and without overflow.

    Each array's squares are summed in float64 (NumPy's pairwise summation; a float32
    square is rounded to float32 first, a relative error below 1e-7 in the norm). Where
    a square could overflow or underflow its dtype (a norm outside 1e-12 .. 1e15: a
    float32 gradient of 1e20 squares to inf), the norm is recomputed exactly with every
    array divided by the largest |g| first, so every square is ≤ 1.
    """
    names = [name for name in sorted(grads) if grads[name].size]  # a fixed order: a
    # resumed run's dict order may differ, the float sum must not
    with np.errstate(over="ignore", under="ignore"):  # out-of-range squares: handled below
        total = sum(float(np.sum(np.square(grads[name]), dtype=np.float64)) for name in names)
    norm = math.sqrt(total)
    if 1e-12 < norm < 1e15 or not names or np.isnan(norm):
        return norm if names else 0.0
    scale = max(float(np.max(np.abs(grads[name]))) for name in names)
    if not np.isfinite(scale) or scale == 0.0:
        return float(scale)  # inf (a gradient holds inf) or 0 (all zeros)
    total = 0.0
    for name in names:
        r = grads[name].astype(np.float64, copy=False) / scale  # same shape, |r| ≤ 1
        total += float(np.vdot(r, r))
    return scale * float(np.sqrt(total))


def clip_grads(grads: dict, theta: float) -> float:
    """Global-norm clipping, in place: g ← g · min(1, θ / ||g||). Returns ||g|| before.

    d2l's ``grad_clipping``. A zero, tiny or huge norm stays finite: the scale is only
    applied when ||g|| > θ, and ||g|| itself is computed without overflow. A non-finite
    norm leaves the gradients untouched so the caller can see and report it.
    """
    norm = global_norm(grads)
    if np.isfinite(norm) and norm > theta:
        scale = theta / norm
        for g in grads.values():
            s = g.dtype.type(scale)
            if s >= np.finfo(g.dtype).tiny:
                g *= s
            else:  # θ/||g|| underflows the dtype (θ = 1e-20, ||g|| = 1e30 in float32):
                r = g.dtype.type(math.sqrt(theta) / math.sqrt(norm))  # g · r · r, r normal
                g *= r
                g *= r
    return norm


def sgd(params: dict, grads: dict, lr: float) -> None:
    """θ ← θ - lr · g, in place (d2l's ``sgd`` with batch_size 1: the loss is a mean)."""
    for name, p in params.items():
        p -= p.dtype.type(lr) * grads[name]
