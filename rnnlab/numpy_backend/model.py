"""The whole model in NumPy: layers of cells, the output layer, the loss, and its BPTT.

``model_forward(cfg, params, X, state) -> (logits, state_T, cache)`` and
``model_backward(dlogits, dstate_T, cache) -> (grads, dstate_0)``, then
``loss_and_grads`` that composes them with the softmax cross-entropy.

Tokens X are (B, T) ids. Layer 0 reads them as one-hot rows without building the
one-hot matrix: ``one_hot(X) @ W_x == W_x[X]``, a row gather, and its backward is the
matching scatter-add ``dW_x[x] += dZ``. A model with ``input_size`` set reads real
inputs X (B, T, In) instead, through one matmul, as a stacked layer reads the one below. Logits are time-major, (T*B, V), row t*B + b,
as d2l's ``Y.T.reshape(-1)``.

The state is a flat tuple of (B, H) arrays, per layer and direction: ``(H,)`` per unit
for rnn and gru, ``(H, C)`` for lstm. A one-layer model has d2l's ``(H,)`` / ``(H, C)``.

Stacking, bidirectional layers and dropout are composed here, out of the one-direction
cells: a reverse direction is the cell run on the time-reversed window, and dropout is
a mask passed in (docs/recurrent_family.md has the equations and names).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..config import ModelConfig
from ..params import fuse, has_hidden_bias, suffix, unfuse
from . import gru  # noqa: F401  (registers CELLS["gru"])
from .cells import CELLS
from .functional import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    squared_error,
    squared_error_backward,
)


class LayerCache(NamedTuple):
    inputs: np.ndarray  # (B, T) token ids for layer 0, else (T, B, In) dense inputs
    tokens: bool  # True: inputs are ids read by a row gather
    W_x: np.ndarray  # (In, G*H)
    cell: tuple  # the cell's own cache


def layer_forward(cell, W_x, W_h, b, inputs, state, tokens, extra=()):
    """Project the inputs of every step at once, then run the recurrence.

    XW = W_x[Xᵀ] + b  (token ids: one_hot(x) @ W_x is row x of W_x)
    XW = inputs @ W_x + b  (dense (T, B, In) inputs of a stacked layer)

    ``extra`` holds a cell's recurrent parameters beyond W_h (the torch-form GRU's b_hn).
    """
    if tokens:
        # one_hot(x) @ W_x + b is row x of (W_x + b): the bias joins the V-row table once,
        # instead of a pass over all T*B gathered rows
        XW = (W_x + b)[inputs.T]  # (T, B, G*H): gather, no one-hot matrix
    else:
        XW = inputs @ W_x  # (T, B, G*H)
        XW += b
    forward, _ = CELLS[cell]
    Hs, state_T, cell_cache = forward(XW, W_h, state, *extra)
    return Hs, state_T, LayerCache(inputs, tokens, W_x, cell_cache)


def scatter_add_rows(ids: np.ndarray, rows: np.ndarray, num_rows: int) -> np.ndarray:
    """out[v] = Σ_{n: ids[n] = v} rows[n], i.e. ``one_hot(ids)ᵀ @ rows``, without the one-hot.

    The same sums as ``np.add.at(out, ids, rows)``, added in the same order (the sort is
    stable), so the same numbers; but np.add.at handles one row at a time (~7 ms for
    T*B = 1120 rows of 4H = 1024), while here each run of equal ids is summed as one
    contiguous block (~0.3 ms). A token that appears twice adds twice, as it must.
    """
    order = np.argsort(ids, kind="stable")  # (N,): row order grouped by id
    sorted_ids = ids[order]  # (N,)
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # (U,) first row per id
    ends = np.r_[starts[1:], len(ids)]  # (U,)
    grouped = rows[order]  # (N, G): the rows of each id contiguous
    out = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)  # (num_rows, G)
    for start, end in zip(starts.tolist(), ends.tolist()):
        grouped[start:end].sum(axis=0, out=out[sorted_ids[start]])
    return out


def layer_backward(cell, dHs, dstate, cache: LayerCache):
    """dW_x = Σ_t X_tᵀ dZ_t (a scatter-add for tokens), db = Σ_t Σ_b dZ, dX_t = dZ_t W_xᵀ.

    Returns ``(dW_x, dW_h, db, dinputs, dstate0, dextra)``, dextra one gradient per extra.
    """
    _, backward = CELLS[cell]
    dZ, dW_h, dstate0, *dextra = backward(dHs, dstate, cache.cell)
    G = dZ.shape[-1]
    dZ2 = dZ.reshape(-1, G)  # (T*B, G*H), row t*B + b
    if cache.tokens:
        V = cache.W_x.shape[0]
        dW_x = scatter_add_rows(cache.inputs.T.reshape(-1), dZ2, V)  # (V, G*H): one_hot(x)ᵀ dZ
        # every row of dZ went into exactly one row of dW_x, so its V rows hold the whole
        # sum: V rows to add instead of T*B
        db = dW_x.sum(axis=0)  # (G*H,)
        dinputs = None  # token ids have no gradient
    else:
        In = cache.inputs.shape[-1]
        dW_x = cache.inputs.reshape(-1, In).T @ dZ2  # (In, G*H)
        db = dZ2.sum(axis=0)  # (G*H,)
        dinputs = dZ @ cache.W_x.T  # (T, B, In)
    return dW_x, dW_h, db, dinputs, dstate0, tuple(dextra)


class ModelCache(NamedTuple):
    cfg: ModelConfig
    layers: list  # LayerCache per (layer, direction), in units(cfg) order
    T: int  # steps in the window
    masks: tuple | None  # dropout mask per layer boundary, (T, B, H*D) each, or None
    Hs: np.ndarray  # (T*B, H*D): last layer outputs, time-major rows
    W_hq: np.ndarray  # (H*D, V)


def kernel_extra(cfg: ModelConfig, params: dict, layer: int, direction: int) -> tuple:
    """Recurrent parameters a cell takes beyond W_h: the torch-form GRU's b_hn."""
    return (params[f"b_hn{suffix(layer, direction)}"],) if has_hidden_bias(cfg) else ()


def reverse_time(inputs: np.ndarray, tokens: bool) -> np.ndarray:
    """The window read backwards: (B, T) ids reverse along axis 1, (T, B, In) along axis 0."""
    return inputs[:, ::-1] if tokens else inputs[::-1]


def model_forward(cfg: ModelConfig, params: dict, X: np.ndarray, state: tuple,
                  dropout_masks: tuple | None = None):
    """Embed-by-gather, L recurrent layers, then logits = H_t W_hq + b_q for every t.

    Layer k, direction 0 runs the cell forward in time. Direction 1 (bidirectional) runs
    the same kind of cell on the time-reversed inputs, from its own initial state, and
    its outputs are reversed back, so row t of both is position t; the layer's output is
    [H_fwd | H_rev] (T, B, 2H), as torch.nn. Between layers (not after the last), the
    outputs are multiplied by the dropout mask of that boundary when masks are given.
    """
    S, D, L = cfg.num_states, cfg.num_directions, cfg.num_layers
    if cfg.input_size is None:
        inputs, tokens = X, True  # (B, T) ids, read by a row gather
    else:
        inputs, tokens = np.ascontiguousarray(X.transpose(1, 0, 2)), False  # (T, B, In) reals
    state_T, caches = [], []
    for layer in range(L):
        outputs = []
        for direction in range(D):
            i = layer * D + direction
            W_x, W_h, b = fuse(cfg, params, layer, direction)
            x = inputs if direction == 0 else reverse_time(inputs, tokens)
            Hs, st, cache = layer_forward(cfg.cell, W_x, W_h, b, x, state[i * S:(i + 1) * S],
                                          tokens, kernel_extra(cfg, params, layer, direction))
            outputs.append(Hs if direction == 0 else Hs[::-1])  # (T, B, H): position order
            state_T.extend(st)
            caches.append(cache)
        out = outputs[0] if D == 1 else np.concatenate(outputs, axis=-1)  # (T, B, H*D)
        if dropout_masks is not None and layer < L - 1:
            out = out * dropout_masks[layer]  # (T, B, H*D): inverted dropout, training only
        inputs, tokens = out, False  # layer k+1 reads layer k's hidden states
    T, B, HD = inputs.shape
    Hs = inputs.reshape(T * B, HD)  # (T*B, H*D): row t*B + b, time-major as d2l
    logits = Hs @ params["W_hq"] + params["b_q"]  # (T*B, V)
    return logits, tuple(state_T), ModelCache(cfg, caches, T, dropout_masks, Hs, params["W_hq"])


def model_backward(dlogits: np.ndarray, dstate: tuple, cache: ModelCache):
    """The forward read upwards: output layer, then each layer from the top down.

    A mask's backward is the mask (Y = M ⊙ X: dX = M ⊙ dY). A reverse direction's
    backward reverses its output gradient into its own time order, runs the cell's BPTT,
    and reverses the input gradient back; both directions read the same inputs, so their
    input gradients add.
    """
    cfg = cache.cfg
    S, D, H = cfg.num_states, cfg.num_directions, cfg.num_hiddens
    grads = {
        "W_hq": cache.Hs.T @ dlogits,  # (H*D, V): Σ_n H_nᵀ dlogits_n
        "b_q": dlogits.sum(axis=0),  # (V,)
    }
    dout = (dlogits @ cache.W_hq.T).reshape(cache.T, -1, H * D)  # (T, B, H*D)
    dstate0 = [None] * len(dstate)
    for layer in reversed(range(cfg.num_layers)):
        if cache.masks is not None and layer < cfg.num_layers - 1:
            dout = dout * cache.masks[layer]  # (T, B, H*D): through the dropout mask
        dinputs = None
        for direction in range(D):
            i = layer * D + direction
            dHs = dout[..., direction * H:(direction + 1) * H]  # (T, B, H), position order
            if direction == 1:
                dHs = dHs[::-1]  # into the reverse pass's own time order
            dW_x, dW_h, db, dx, dst, dextra = layer_backward(
                cfg.cell, dHs, dstate[i * S:(i + 1) * S], cache.layers[i])
            dstate0[i * S:(i + 1) * S] = dst
            grads.update(unfuse(cfg, layer, direction, dW_x, dW_h, db))
            if has_hidden_bias(cfg):
                (grads[f"b_hn{suffix(layer, direction)}"],) = dextra
            if dx is not None:  # dense inputs (layer > 0): both directions read them
                dx = dx if direction == 0 else dx[::-1]  # (T, B, In): position order
                dinputs = dx if dinputs is None else dinputs + dx
        dout = dinputs  # into the outputs of the layer below
    return grads, tuple(dstate0)


# ------------------------------------------------------------------------ truncation

# cell cache fields indexed by state (T+1 entries: the state before step 0 .. after T-1)
# and by step (T entries); the others (weights) hold for every step
STATE_FIELDS, STEP_FIELDS = ("Hs", "Cs"), ("gates", "tanh_C", "RH", "HW_n")


def cell_cache_steps(cell_cache: tuple, a: int, b: int) -> tuple:
    """The cache of steps a .. b-1 alone, as views: what the cell's forward would have
    cached run on that window from the state it had before step a."""
    return cell_cache._replace(**{
        f: getattr(cell_cache, f)[a:b + 1] if f in STATE_FIELDS else getattr(cell_cache, f)[a:b]
        for f in cell_cache._fields
        if (f in STATE_FIELDS or f in STEP_FIELDS) and getattr(cell_cache, f) is not None})


def model_cache_steps(cache: ModelCache, a: int, b: int) -> ModelCache:
    """:func:`cell_cache_steps` for the whole model: every layer's cache, the dropout
    masks and the last layer's outputs restricted to steps a .. b-1 (one direction)."""
    B = cache.Hs.shape[0] // cache.T
    layers = [lc._replace(inputs=lc.inputs[:, a:b] if lc.tokens else lc.inputs[a:b],
                          cell=cell_cache_steps(lc.cell, a, b)) for lc in cache.layers]
    masks = None if cache.masks is None else tuple(m[a:b] for m in cache.masks)
    return cache._replace(layers=layers, T=b - a, masks=masks, Hs=cache.Hs[a * B:b * B])


def truncated_backward(dlogits: np.ndarray, dstate_zeros: tuple, cache: ModelCache, k: int):
    """BPTT truncated k steps back (d2l 8.7): the loss at step t sends its gradient to
    steps t-k+1 .. t only, as if the state before step t-k+1 were a constant.

        ∂L/∂θ ≈ Σ_t Σ_{s = max(0, t-k+1)}^{t} ∂L_t/∂θ_s        (θ_s: θ's use at step s)

    The gradient is linear in dlogits, so this is one ordinary BPTT per step whose loss
    has a gradient, over the k-step window that ends there; each window's cache is a
    slice of the whole pass's, so nothing is recomputed. Only windows that start at step
    0 reach the initial state. With a loss read at a few steps (a task's), a few windows.
    """
    T = cache.T
    d = dlogits.reshape(T, -1, dlogits.shape[-1])  # (T, B, V)
    grads, dstate0 = {}, [np.zeros_like(z) for z in dstate_zeros]
    for t in np.flatnonzero(d.any(axis=(1, 2))).tolist():  # steps whose loss has a gradient
        lo = max(0, t - k + 1)  # the window lo .. t: k steps, or fewer near the start
        dwindow = np.zeros((t + 1 - lo,) + d.shape[1:], dtype=d.dtype)  # (t+1-lo, B, V)
        dwindow[-1] = d[t]  # only L_t's gradient enters this window
        g, ds = model_backward(dwindow.reshape(-1, d.shape[-1]), dstate_zeros,
                               model_cache_steps(cache, lo, t + 1))
        for name, v in g.items():
            grads[name] = grads[name] + v if name in grads else np.array(v)  # dW += ...
        if lo == 0:  # this window began at the initial state
            dstate0 = [a + b for a, b in zip(dstate0, ds)]
    if not grads:  # no step has a gradient: every gradient is zero
        grads, _ = model_backward(np.zeros_like(dlogits), dstate_zeros, cache)
    return grads, tuple(dstate0)


def loss_and_grads(cfg: ModelConfig, params: dict, X, Y, state, weights=None,
                   dropout_masks: tuple | None = None, truncate: int | None = None):
    """Mean cross-entropy over the T*B tokens (or, with ``head="mse"``, the mean squared
    error against the reals Y (B, T)) and its gradient by hand-written BPTT.

    Returns ``(loss, grads, state_T, dstate_0)``: ``grads`` has the keys and shapes of
    ``params``; ``state_T`` is a fresh array (nothing flows back through it: the next
    window's BPTT is truncated there); ``dstate_0`` is dL/d(initial state).
    ``weights`` (T*B,) weights each token's loss, time-major like the logits.
    ``dropout_masks`` (see rnnlab.dropout) applies dropout between layers; None: none.
    ``truncate`` k stops each step's gradient k steps back (:func:`truncated_backward`);
    None, or k >= T, is full BPTT over the window.
    """
    logits, state_T, cache = model_forward(cfg, params, X, state, dropout_masks)
    targets = Y.T.reshape(-1)  # (T*B,): time-major, matching the logits' rows
    if cfg.head == "softmax":
        loss, ce_cache = softmax_cross_entropy(logits, targets, weights)
        dlogits = softmax_cross_entropy_backward(ce_cache)  # (T*B, V)
    else:
        loss, se_cache = squared_error(logits, targets, weights)
        dlogits = squared_error_backward(se_cache)  # (T*B, 1)
    zeros = tuple(np.zeros_like(s) for s in state_T)  # nothing beyond the window
    if truncate is None or truncate >= cache.T:
        grads, dstate0 = model_backward(dlogits, zeros, cache)
    else:
        grads, dstate0 = truncated_backward(dlogits, zeros, cache, truncate)
    grads = {name: np.ascontiguousarray(grads[name]) for name in params}  # params' order
    return loss, grads, state_T, dstate0
