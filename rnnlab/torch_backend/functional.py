"""The loss, global-norm clipping and SGD in torch, with numpy_backend.functional's semantics.

Gradients come from autograd, so there is no hand-written backward here; each function
computes the same numbers as its NumPy twin (``softmax_cross_entropy``, ``global_norm``,
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


def global_norm(grads: dict) -> float:
    """sqrt(Σ_p ||g_p||²) without overflow: every array is divided by the largest |g| first.

    Squares are summed in float64, as NumPy's ``global_norm`` does; a float32 gradient of
    1e20 would otherwise square to inf. NaN or inf anywhere gives NaN or inf.
    """
    # a fixed order, so the float sum does not depend on the dict's (a resumed run's
    # parameters come back from a checkpoint in another order)
    gs = [grads[k].detach() for k in sorted(grads) if grads[k].numel()]
    if not gs:
        return 0.0
    scale = float(torch.stack([g.abs().max().double() for g in gs]).max())  # one sync
    if not math.isfinite(scale):
        return scale
    if scale == 0.0:
        return 0.0
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
        with torch.no_grad():
            for g in grads.values():
                # the test NumPy makes: the scale rounded to g's dtype is still normal
                if float(torch.tensor(scale, dtype=g.dtype)) >= torch.finfo(g.dtype).tiny:
                    g.mul_(scale)  # the scale is rounded to g's dtype, as NumPy's g *= dtype(scale)
                else:  # θ/||g|| underflows the dtype: two normal factors, as NumPy does
                    r = math.sqrt(theta) / math.sqrt(norm)  # θ/||g|| may underflow float64 too
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
