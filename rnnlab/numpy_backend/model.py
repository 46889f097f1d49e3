"""The whole model in NumPy: layers of cells, the output layer, the loss, and its BPTT.

``model_forward(cfg, params, X, state) -> (logits, state_T, cache)`` and
``model_backward(dlogits, dstate_T, cache) -> (grads, dstate_0)``, then
``loss_and_grads`` that composes them with the softmax cross-entropy.

Tokens X are (B, T) ids. Layer 0 reads them as one-hot rows without building the
one-hot matrix: ``one_hot(X) @ W_x == W_x[X]``, a row gather, and its backward is the
matching scatter-add ``dW_x[x] += dZ``. Logits are time-major, (T*B, V), row t*B + b,
as d2l's ``Y.T.reshape(-1)``.

The state is a flat tuple of (B, H) arrays, per layer and direction: ``(H,)`` per unit
for rnn and gru, ``(H, C)`` for lstm. A one-layer model has d2l's ``(H,)`` / ``(H, C)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..config import ModelConfig
from ..params import GATES, fuse, units, unfuse
from .cells import CELLS
from .functional import softmax_cross_entropy, softmax_cross_entropy_backward


class LayerCache(NamedTuple):
    inputs: np.ndarray  # (B, T) token ids for layer 0, else (T, B, In) dense inputs
    tokens: bool  # True: inputs are ids read by a row gather
    W_x: np.ndarray  # (In, G*H)
    cell: tuple  # the cell's own cache


def layer_forward(cell, W_x, W_h, b, inputs, state, tokens):
    """Project the inputs of every step at once, then run the recurrence.

    XW = W_x[Xᵀ] + b  (token ids: one_hot(x) @ W_x is row x of W_x)
    XW = inputs @ W_x + b  (dense (T, B, In) inputs of a stacked layer)
    """
    if tokens:
        XW = W_x[inputs.T]  # (T, B, G*H): gather, no one-hot matrix
    else:
        XW = inputs @ W_x  # (T, B, G*H)
    XW += b
    forward, _ = CELLS[cell]
    Hs, state_T, cell_cache = forward(XW, W_h, state)
    return Hs, state_T, LayerCache(inputs, tokens, W_x, cell_cache)


def layer_backward(cell, dHs, dstate, cache: LayerCache):
    """dW_x = Σ_t X_tᵀ dZ_t (a scatter-add for tokens), db = Σ_t Σ_b dZ, dX_t = dZ_t W_xᵀ."""
    _, backward = CELLS[cell]
    dZ, dW_h, dstate0 = backward(dHs, dstate, cache.cell)
    G = dZ.shape[-1]
    dZ2 = dZ.reshape(-1, G)  # (T*B, G*H), row t*B + b
    db = dZ2.sum(axis=0)  # (G*H,)
    if cache.tokens:
        dW_x = np.zeros(cache.W_x.shape, dtype=dZ.dtype)  # (V, G*H)
        np.add.at(dW_x, cache.inputs.T.reshape(-1), dZ2)  # dW_x[x] += dZ: one_hot(x)ᵀ dZ
        dinputs = None  # token ids have no gradient
    else:
        In = cache.inputs.shape[-1]
        dW_x = cache.inputs.reshape(-1, In).T @ dZ2  # (In, G*H)
        dinputs = dZ @ cache.W_x.T  # (T, B, In)
    return dW_x, dW_h, db, dinputs, dstate0


class ModelCache(NamedTuple):
    cfg: ModelConfig
    layers: list  # LayerCache per (layer, direction)
    fused: list  # (W_x, W_h, b) per (layer, direction)
    Hs: np.ndarray  # (T*B, H): last layer outputs, time-major rows
    W_hq: np.ndarray  # (H, V)


def model_forward(cfg: ModelConfig, params: dict, X: np.ndarray, state: tuple):
    """Embed-by-gather, L recurrent layers, then logits = H_t W_hq + b_q for every t."""
    S = cfg.num_states
    inputs, tokens = X, True
    state_T, caches, fused = [], [], []
    for i, (layer, direction) in enumerate(units(cfg)):
        W_x, W_h, b = fuse(cfg, params, layer, direction)
        Hs, st, cache = layer_forward(cfg.cell, W_x, W_h, b, inputs, state[i * S:(i + 1) * S],
                                      tokens)
        state_T.extend(st)
        caches.append(cache)
        fused.append((W_x, W_h, b))
        inputs, tokens = Hs, False  # layer k+1 reads layer k's hidden states
    T, B, H = inputs.shape
    Hs = inputs.reshape(T * B, H)  # (T*B, H): row t*B + b, time-major as d2l
    logits = Hs @ params["W_hq"] + params["b_q"]  # (T*B, V)
    return logits, tuple(state_T), ModelCache(cfg, caches, fused, Hs, params["W_hq"])


def model_backward(dlogits: np.ndarray, dstate: tuple, cache: ModelCache):
    """The forward read upwards: output layer, then each layer from the top down."""
    cfg = cache.cfg
    S = cfg.num_states
    grads = {
        "W_hq": cache.Hs.T @ dlogits,  # (H, V): Σ_n H_nᵀ dlogits_n
        "b_q": dlogits.sum(axis=0),  # (V,)
    }
    last = cache.layers[-1]
    T = last.inputs.shape[1] if last.tokens else last.inputs.shape[0]
    dinputs = (dlogits @ cache.W_hq.T).reshape(T, -1, cfg.num_hiddens)  # (T, B, H)
    dstate0 = [None] * len(dstate)
    for i in reversed(range(len(cache.layers))):
        layer, direction = list(units(cfg))[i]
        dW_x, dW_h, db, dinputs, dst = layer_backward(
            cfg.cell, dinputs, dstate[i * S:(i + 1) * S], cache.layers[i])
        dstate0[i * S:(i + 1) * S] = dst
        grads.update(unfuse(cfg, layer, direction, dW_x, dW_h, db))
    return grads, tuple(dstate0)


def loss_and_grads(cfg: ModelConfig, params: dict, X, Y, state, weights=None):
    """Mean cross-entropy over the T*B tokens and its gradient by hand-written BPTT.

    Returns ``(loss, grads, state_T, dstate_0)``: ``grads`` has the keys and shapes of
    ``params``; ``state_T`` is a fresh array (nothing flows back through it: the next
    window's BPTT is truncated there); ``dstate_0`` is dL/d(initial state).
    ``weights`` (T*B,) weights each token's loss, time-major like the logits.
    """
    logits, state_T, cache = model_forward(cfg, params, X, state)
    targets = Y.T.reshape(-1)  # (T*B,): time-major, matching the logits' rows
    loss, ce_cache = softmax_cross_entropy(logits, targets, weights)
    dlogits = softmax_cross_entropy_backward(ce_cache)  # (T*B, V)
    zeros = tuple(np.zeros_like(s) for s in state_T)  # nothing beyond the window
    grads, dstate0 = model_backward(dlogits, zeros, cache)
    grads = {name: np.ascontiguousarray(grads[name]) for name in params}  # params' order
    return loss, grads, state_T, dstate0
