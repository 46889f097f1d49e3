"""The whole model in torch, two ways that compute the same function.

* :func:`model_forward` (``impl="scratch"``): the seeds' forward in torch ops with fused
  gates, layer by layer as ``numpy_backend/model.py`` does: the input projection of every
  step at once (a row gather ``W_x[Xᵀ] + b`` for tokens, one matmul for the dense inputs
  of a stacked layer), then the cell's recurrence from :data:`cells.CELLS`.
* :func:`nn_forward` (``impl="nn"``): torch's own recurrent kernel (cuDNN on a GPU),
  the call ``nn.RNN`` / ``nn.LSTM`` make, fed weights built from rnnlab's tensors by
  :func:`nn_map.nn_weights`, so autograd returns gradients under rnnlab's names.

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
from ..params import fuse, units
from .cells import CELLS
from .nn_map import nn_weights


def layer_forward(cell: str, W_x, W_h, b, inputs, state, tokens: bool):
    """XW = W_x[Xᵀ] + b (token ids: one_hot(x) @ W_x is row x of W_x), or inputs @ W_x + b."""
    if tokens:
        XW = F.embedding(inputs.T, W_x) + b  # (T, B, G*H): W_x[Xᵀ], a gather
    else:
        XW = torch.matmul(inputs, W_x) + b  # (T, B, G*H)
    return CELLS[cell](XW, W_h, state)


def model_forward(cfg: ModelConfig, params: dict, X: torch.Tensor, state: tuple):
    """Embed-by-gather, L recurrent layers, then logits = H_t W_hq + b_q for every t."""
    S = cfg.num_states
    inputs, tokens = X, True
    state_T = []
    for i, (layer, direction) in enumerate(units(cfg)):
        W_x, W_h, b = fuse(cfg, params, layer, direction, cat=torch.cat)  # (In, G*H) (H, G*H) (G*H,)
        inputs, st = layer_forward(cfg.cell, W_x, W_h, b, inputs, state[i * S:(i + 1) * S],
                                   tokens)  # (T, B, H)
        state_T.extend(st)
        tokens = False  # layer k+1 reads layer k's hidden states
    T, B, H = inputs.shape
    logits = torch.addmm(params["b_q"], inputs.reshape(T * B, H), params["W_hq"])  # (T*B, V)
    return logits, tuple(state_T)


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


def nn_forward(cfg: ModelConfig, params: dict, X: torch.Tensor, state: tuple,
               weight_names: list, train: bool = False):
    """torch's fused RNN kernel on weights made from rnnlab's tensors.

    ``_VF.rnn_tanh`` / ``_VF.lstm`` are what ``nn.RNN.forward`` / ``nn.LSTM.forward`` call
    with ``module._flat_weights``; here the list is :func:`nn_weights` of the rnnlab
    leaves, in ``weight_names`` (the module's ``_flat_weights_names``) order. On a GPU the
    call goes to cuDNN, which copies the list into its own flat buffer each call (hence
    the silenced warning) and whose backward needs ``train=True``.
    """
    V = cfg.vocab_size
    weights = nn_weights(cfg, params)
    flat = [weights[name] for name in weight_names]
    inputs = F.one_hot(X.T, V).to(params["b_q"].dtype)  # (T, B, V): d2l's RNNModel input
    hidden = stack_state(cfg, state)
    args = (flat, True, cfg.num_layers, 0.0, train, cfg.bidirectional, False)
    with _quiet_cudnn_copy() if inputs.is_cuda else contextlib.nullcontext():
        if cfg.cell == "lstm":
            out, h_T, c_T = _VF.lstm(inputs, hidden, *args)  # out (T, B, H*D)
            hidden_T = (h_T, c_T)
        elif cfg.cell == "rnn":
            out, hidden_T = _VF.rnn_tanh(inputs, hidden, *args)
        else:  # pragma: no cover - refused by TorchBackend before reaching here
            raise NotImplementedError(cfg.cell)
    T, B, HD = out.shape
    logits = torch.addmm(params["b_q"], out.reshape(T * B, HD), params["W_hq"])  # (T*B, V)
    return logits, unstack_state(cfg, hidden_T)
