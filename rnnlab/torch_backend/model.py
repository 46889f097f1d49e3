"""The whole model in torch, two ways that compute the same function.

* :func:`model_forward` (``impl="scratch"``): d2l's forward in torch ops with fused
  gates, layer by layer as ``numpy_backend/model.py`` does: the input projection of every
  step at once (a row gather ``(W_x + b)[Xᵀ]`` for tokens, one matmul for the dense
  inputs of a stacked layer), then the cell's recurrence from :data:`cells.CELLS`.
* :func:`nn_forward` (``impl="nn"``): torch's own recurrent kernel (cuDNN on a GPU),
  the call ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` make (the GRU in its torch form only),
  fed weights built from rnnlab's tensors by :func:`nn_map.nn_weights` (to train, the
  backend makes them leaves with :func:`nn_leaves` and renames their gradients with
  :func:`nn_map.nn_views`).

Both take ``(cfg, params, X, state)`` with X (B, T) int64 ids and state the flat tuple of
(B, H) tensors, one per (layer, direction) unit, ``(H,)`` or ``(H, C)``, and return
``(logits (T*B, V) time-major, state_T)``. The output layer is rnnlab's
``logits = H_t W_hq + b_q`` in both.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F
from torch import _VF

from ..config import ModelConfig
from ..params import GATES, has_hidden_bias, suffix
from .cells import CELLS, GATE_SCALES
from .functional import head_loss
from .nn_map import fused_weights, hidden_biases, nn_weights


def fuse_weights(cfg: ModelConfig, params: dict, layer: int, direction: int):
    """``W_x`` (In, G*H), ``W_h`` (H, G*H), ``b`` (G*H,): ``params.fuse``'s matrices, with
    two differences that only change how fast the same numbers are made:

    * ``W_h`` is laid out as torch.nn keeps ``weight_hh``, gate rows (G*H, H), and used
      through its transposed view: H_{t-1} @ W_h runs about 20% faster on a CPU (MKL)
      with W_h's columns contiguous;
    * a gate in :data:`cells.GATE_SCALES` has its three blocks multiplied by its factor
      here (the LSTM's candidate by 2, so one sigmoid makes all four gates).
    """
    s, gates = suffix(layer, direction), GATES[cfg.cell]
    factors = GATE_SCALES.get(cfg.cell, {})

    def block(name: str, g: str):
        w = params[f"{name}{g}{s}"]
        return w * factors[g] if g in factors else w  # same shape as w

    W_x = torch.cat([block("W_x", g) for g in gates], 1)  # (In, G*H)
    W_h = torch.cat([block("W_h", g).T for g in gates]).T  # (H, G*H), columns contiguous
    b = torch.cat([block("b_", g) for g in gates])  # (G*H,)
    return W_x, W_h, b


def layer_forward(cell: str, W_x, W_h, b, inputs, state, tokens: bool, extra=()):
    """XW = (W_x + b)[Xᵀ] (token ids: one_hot(x) @ W_x + b is row x of W_x + b), or
    inputs @ W_x + b, then the cell's recurrence over the window.

    ``extra``: recurrent parameters beyond W_h (the torch-form GRU's b_hn).
    """
    if tokens:
        XW = F.embedding(inputs.T, W_x + b)  # (T, B, G*H): a gather; the bias joins the V rows once
    else:
        XW = torch.addmm(b, inputs.reshape(-1, inputs.shape[-1]), W_x).reshape(
            inputs.shape[0], inputs.shape[1], -1)  # (T, B, G*H)
    return CELLS[cell](XW, W_h, state, *extra)


def model_forward(cfg: ModelConfig, params: dict, X: torch.Tensor, state: tuple,
                  dropout_masks: tuple | None = None):
    """Embed-by-gather, L recurrent layers, then logits = H_t W_hq + b_q for every t.

    As ``numpy_backend.model_forward``: a reverse direction runs the cell on the
    time-reversed window and its outputs are flipped back, the layer's output is
    [H_fwd | H_rev] (T, B, H*D), and between layers it is multiplied by the dropout mask.
    """
    S, D, L = cfg.num_states, cfg.num_directions, cfg.num_layers
    # (B, T) ids are gathered; real inputs (B, T, In) are read time-major, (T, B, In)
    inputs, tokens = (X, True) if cfg.input_size is None else (X.transpose(0, 1), False)
    state_T = []
    for layer in range(L):
        outputs = []
        for direction in range(D):
            i = layer * D + direction
            W_x, W_h, b = fuse_weights(cfg, params, layer, direction)  # (In, G*H) (H, G*H) (G*H,)
            extra = (params[f"b_hn{suffix(layer, direction)}"],) if has_hidden_bias(cfg) else ()
            x = inputs if direction == 0 else torch.flip(inputs, dims=(1 if tokens else 0,))
            Hs, st = layer_forward(cfg.cell, W_x, W_h, b, x, state[i * S:(i + 1) * S], tokens,
                                   extra)  # (T, B, H)
            outputs.append(Hs if direction == 0 else torch.flip(Hs, dims=(0,)))
            state_T.extend(st)
        inputs = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (T, B, H*D)
        if dropout_masks is not None and layer < L - 1:
            inputs = inputs * dropout_masks[layer]  # (T, B, H*D): inverted dropout
        tokens = False  # layer k+1 reads layer k's hidden states
    T, B, HD = inputs.shape
    logits = torch.addmm(params["b_q"], inputs.reshape(T * B, HD), params["W_hq"])  # (T*B, V)
    return logits, tuple(state_T)


# -------------------------------------------------------------------------- truncation


def _window(masks: tuple | None, a: int, b: int) -> tuple | None:
    return None if masks is None else tuple(m[a:b] for m in masks)  # (b-a, B, H*D) each


def truncated_loss(forward, cfg: ModelConfig, params: dict, X: torch.Tensor, Y: torch.Tensor,
                   state0: tuple, weights, masks, k: int):
    """The loss, as a function whose autograd gradient is BPTT truncated k steps back.

    The loss at step t is computed by running the model over steps t-k+1 .. t only,
    from the state it had before them *detached*, so autograd sends L_t's gradient k
    steps back and no further (d2l 8.7); a window that starts at step 0 starts from
    ``state0`` itself and reaches it. The states are those of one pass without autograd.
    Only steps with a non-zero weight are computed. Returns ``(loss, state_T)``: the same
    loss as the whole window's, and its final state (detached).
    """
    B, T = X.shape[0], X.shape[1]
    w = None if weights is None else weights.reshape(T, B)  # (T, B): time-major
    steps = list(range(T)) if w is None else torch.nonzero(w.ne(0).any(dim=1)).flatten().tolist()
    starts = sorted({max(0, t - k + 1) for t in steps})
    with torch.no_grad():  # the state before every window, and after the last step
        state, done, before = tuple(s.detach() for s in state0), 0, {}
        for a in starts + [T]:
            if a > done:
                _, state = forward(params, X[:, done:a], state, _window(masks, done, a))
                done = a
            before[a] = state
    loss = sum((p.sum() * 0 for p in params.values()))  # a graph even with nothing to read
    for t in steps:
        lo = max(0, t - k + 1)  # the window lo .. t
        logits, _ = forward(params, X[:, lo:t + 1], state0 if lo == 0 else before[lo],
                            _window(masks, lo, t + 1))  # (k*B, V)
        # head_loss is a mean over the B rows of step t; the whole loss, over T*B rows
        loss = loss + head_loss(cfg, logits[-B:], Y[:, t], None if w is None else w[t]) / T
    return loss, before[T]


# ---------------------------------------------------------------------------------- nn


def stack_state(cfg: ModelConfig, state: tuple):
    """Flat tuple -> torch.nn's hidden: h (L*D, B, H), or (h, c) for lstm."""
    S = cfg.num_states
    hs = [torch.stack(state[k::S]) for k in range(S)]  # (L*D, B, H) each
    return tuple(hs) if S == 2 else hs[0]


def unstack_state(cfg: ModelConfig, hidden) -> tuple:
    """torch.nn's h (L*D, B, H) (or (h, c)) -> the flat tuple (H_0, C_0, H_1, C_1, ...)."""
    kinds = hidden if cfg.num_states == 2 else (hidden,)
    return tuple(s for unit in zip(*(h.unbind(0) for h in kinds)) for s in unit)


@contextlib.contextmanager
def _quiet_cudnn_copy():
    """cuDNN warns that the weights are not one flat buffer: by design here, see below."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single")
        yield


_KERNELS = {"rnn": _VF.rnn_tanh, "lstm": _VF.lstm, "gru": _VF.gru, "irnn": _VF.rnn_relu}


def _nn_kernel(cfg: ModelConfig, inputs, hidden, flat: list, num_layers: int, train: bool):
    """One call of torch's fused kernel over ``num_layers`` layers (both directions)."""
    args = (flat, True, num_layers, 0.0, train, cfg.bidirectional, False)
    if cfg.cell == "lstm":
        out, h_T, c_T = _VF.lstm(inputs, hidden, *args)  # out (T, B, H*D)
        return out, (h_T, c_T)
    return _KERNELS[cfg.cell](inputs, hidden, *args)  # rnn_tanh / rnn_relu / gru: (out, h_T)


def nn_flat(cfg: ModelConfig, params: dict, weight_names: list) -> list:
    """torch.nn's flat weights (``weight_names`` order) holding rnnlab's tensors' values.

    Where the parameters lie in torch.nn's weights already (``nn_map.fused_params``, as
    ``TorchBackend.from_numpy`` lays them out) those weights are used as they are, with
    no copy; otherwise :func:`nn_map.nn_weights` copies them together. ``bias_hh`` is
    made either way (zeros, or the torch-form GRU's b_hn in its candidate's rows).
    Outside autograd: the weights are not functions of ``params`` in a graph.
    """
    with torch.no_grad():
        fused = fused_weights(cfg, params)
        if fused is None:
            weights = nn_weights(cfg, params)
            return [weights[name] for name in weight_names]
        hidden = hidden_biases(cfg, params)  # {bias_hh<t>: (G*H,)}
    it = iter(fused)  # weight_ih, weight_hh, bias_ih of each unit, in units' order
    return [hidden[name] if name.startswith("bias_hh") else next(it) for name in weight_names]


def nn_leaves(cfg: ModelConfig, params: dict, weight_names: list) -> list:
    """:func:`nn_flat`'s weights as leaves that require grad, detached aliases (same
    memory) where they are the parameters' own (``bias_hh``, a constant zero, does not,
    except the torch-form GRU's, which holds b_hn).

    The backend differentiates with respect to these, as d2l's concise model does with
    its module's weights, and hands the gradients back under rnnlab's names with
    :func:`nn_map.nn_views`: the slicing ``torch.cat``'s backward would do, without a
    node in the graph for every parameter.
    """
    flat = [w.detach() for w in nn_flat(cfg, params, weight_names)]
    for name, w in zip(weight_names, flat):
        if not name.startswith("bias_hh") or has_hidden_bias(cfg):
            w.requires_grad_(True)
    return flat


def nn_forward(cfg: ModelConfig, params: dict, X: torch.Tensor, state: tuple,
               weight_names: list, train: bool = False, dropout_masks: tuple | None = None,
               flat: list | None = None):
    """torch's fused RNN kernel on weights made from rnnlab's tensors.

    ``_VF.rnn_tanh`` / ``_VF.lstm`` / ``_VF.gru`` are what ``nn.RNN`` / ``nn.LSTM`` /
    ``nn.GRU.forward`` call with ``module._flat_weights``; here the list is
    :func:`nn_weights` of the rnnlab leaves, in ``weight_names`` (the module's
    ``_flat_weights_names``) order. On a GPU the call goes to cuDNN, which copies the
    list into its own flat buffer each call (hence the silenced warning) and whose
    backward needs ``train=True``.

    Without dropout masks all layers go in one call. torch.nn's own dropout draws its
    mask inside the kernel, so with explicit ``dropout_masks`` the kernel runs one layer
    per call (its 4*D weights, its D states) and the mask multiplies the outputs between
    calls: the same function as ``model_forward`` with the same masks.
    """
    V, D, L = cfg.vocab_size, cfg.num_directions, cfg.num_layers
    if flat is None:  # torch.nn's weights as functions of rnnlab's tensors (autograd's)
        weights = nn_weights(cfg, params)
        flat = [weights[name] for name in weight_names]
    if cfg.input_size is None:
        inputs = F.one_hot(X.T, V).to(params["b_q"].dtype)  # (T, B, V): d2l's RNNModel input
    else:
        inputs = X.transpose(0, 1)  # (T, B, In): real inputs, time-major
    hidden = stack_state(cfg, state)  # (L*D, B, H), or (h, c)
    with _quiet_cudnn_copy() if inputs.is_cuda else contextlib.nullcontext():
        if dropout_masks is None:
            out, hidden_T = _nn_kernel(cfg, inputs, hidden, flat, L, train)
        else:
            per = len(flat) // L  # weight_ih, weight_hh, bias_ih, bias_hh per direction
            finals, out = [], inputs
            for layer in range(L):
                rows = slice(layer * D, (layer + 1) * D)  # this layer's units in the stack
                h = tuple(x[rows] for x in hidden) if cfg.num_states == 2 else hidden[rows]
                out, h_T = _nn_kernel(cfg, out, h, flat[layer * per:(layer + 1) * per], 1, train)
                finals.append(h_T)
                if layer < L - 1:
                    out = out * dropout_masks[layer]  # (T, B, H*D): inverted dropout
            if cfg.num_states == 2:
                hidden_T = tuple(torch.cat([f[k] for f in finals]) for k in range(2))
            else:
                hidden_T = torch.cat(finals)  # (L*D, B, H)
    T, B, HD = out.shape
    logits = torch.addmm(params["b_q"], out.reshape(T * B, HD), params["W_hq"])  # (T*B, V)
    return logits, unstack_state(cfg, hidden_T)
