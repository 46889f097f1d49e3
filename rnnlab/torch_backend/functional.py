"""The losses, global-norm clipping and SGD in torch, with numpy_backend.functional's semantics.

Gradients come from autograd, so there is no hand-written backward here; each function
computes the same numbers as its NumPy twin (``softmax_cross_entropy``, ``squared_error``, ``global_norm``,
``clip_grads``, ``sgd``) and is tested against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """L = (1/N) Σ_n w_n (logsumexp(z_n) - z_n[y_n]), a 0-d tensor (autograd-ready).

    ``F.cross_entropy`` subtracts the row max inside its log-softmax, so it is stable for
    any finite logits, as the NumPy version is.
    """
    N = logits.shape[0]
    nll = F.cross_entropy(logits, targets, reduction="none")  # (N,) -log softmax_y
    if weights is not None:
        nll = nll * weights  # (N,)
    return nll.sum() / N


def squared_error(outputs: torch.Tensor, targets: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """L = (1/N) Σ_n w_n (z_n - y_n)², the regression head (``head="mse"``): outputs (N, 1)."""
    N = outputs.shape[0]
    se = (outputs[:, 0] - targets).square()  # (N,)
    if weights is not None:
        se = se * weights  # (N,)
    return se.sum() / N


def head_loss(cfg, logits: torch.Tensor, targets: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of the config's head: cross-entropy (``softmax``) or squared error (``mse``)."""
    if cfg.head == "softmax":
        return cross_entropy(logits, targets, weights)
    return squared_error(logits, targets, weights)


def global_norm(grads: dict) -> float:
    """sqrt(Σ_p ||g_p||²): NumPy's ``global_norm`` up to float rounding, never overflowing.

    Each array's squares are summed in its own dtype by torch's cascade (pairwise)
    summation, whose relative error for float32 stays near 1e-8 even over millions of
    entries (tests hold it below 1e-7), and the per-array sums are added in float64.
    Where a square or a sum could overflow or underflow the dtype (a norm outside
    1e-12 .. 1e15), the norm is recomputed with every array divided by the largest |g|
    first, as NumPy does, so a float32 gradient of 1e20 still gives its exact norm. NaN
    or inf anywhere gives NaN or inf.
    """
    # a fixed order, so the float sum does not depend on the dict's (a resumed run's
    # parameters come back from a checkpoint in another order)
    gs = [grads[k].detach() for k in sorted(grads) if grads[k].numel()]
    if not gs:
        return 0.0
    squares = torch.stack([torch.sum(g * g) for g in gs])  # (P,): Σ g² per array
    norm = math.sqrt(float(squares.double().sum()))  # one sync
    if 1e-12 < norm < 1e15 or math.isnan(norm):
        return norm
    scale = float(torch.stack([g.abs().max().double() for g in gs]).max())
    if not math.isfinite(scale) or scale == 0.0:
        return scale  # inf (a gradient holds inf) or 0 (all zeros)
    total = torch.stack([(g.double() / scale).square().sum() for g in gs]).sum()  # |r| ≤ 1
    return scale * math.sqrt(float(total))


def clip_grads(grads: dict, theta: float) -> float:
    """Global-norm clipping, in place: g ← g · min(1, θ / ||g||). Returns ||g|| before.

    d2l's ``grad_clipping``. Scaled only when ||g|| > θ; a non-finite norm leaves the
    gradients untouched so the caller can see and report it.
    """
    norm = global_norm(grads)
    if math.isfinite(norm) and norm > theta:
        scale = theta / norm
        normal, tiny, is_normal = [], [], {}
        for g in grads.values():
            if g.dtype not in is_normal:  # the test NumPy makes: the scale rounded to g's
                rounded = float(torch.tensor(scale, dtype=g.dtype))  # dtype is still normal
                is_normal[g.dtype] = rounded >= torch.finfo(g.dtype).tiny
            (normal if is_normal[g.dtype] else tiny).append(g)
        with torch.no_grad():
            if normal:  # the scale is rounded to g's dtype, as NumPy's g *= dtype(scale)
                torch._foreach_mul_(normal, scale)
            r = math.sqrt(theta) / math.sqrt(norm)  # θ/||g|| may underflow float64 too
            for g in tiny:  # θ/||g|| underflows the dtype: two normal factors, as NumPy does
                g.mul_(r).mul_(r)
    return norm


def sgd(params: dict, grads: dict, lr: float) -> None:
    """θ ← θ - lr · g, in place and outside autograd (d2l's ``sgd``; the loss is a mean).

    ``p -= g * lr`` rather than ``p.add_(g, alpha=-lr)``: the product is rounded to p's
    dtype before the subtraction, exactly as NumPy's ``p -= dtype(lr) * g``.
    """
    with torch.no_grad():
        for name, p in params.items():
            p.sub_(grads[name] * lr)
