"""The torch backend: the NumPy backend's mathematics in torch, gradients by autograd.

``TorchBackend(dtype="float32", device=None, impl="scratch")`` implements
:class:`rnnlab.backend.Backend` with the semantics of ``NumpyBackend``. Two
implementations of the model compute the same function:

* ``impl="scratch"``: d2l's forward in torch ops, fused gates (``model.model_forward``);
* ``impl="nn"``: torch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` kernel, cuDNN on a GPU
  (``model.nn_forward``), its weights built from rnnlab's tensors so the gradients come
  back under rnnlab's names. The GRU runs there in its torch form only; with dropout
  masks the kernel runs one layer per call and the masks are applied between calls.

Parameters are a dict of leaf tensors (``from_numpy``); ``loss_and_grads`` differentiates
through detached aliases of them with ``torch.autograd.grad``, so no ``.grad`` is ever
left on the caller's tensors and no graph outlives the call.
"""

from __future__ import annotations

import numpy as np
import torch

from ..arguments import Flag, checked
from ..arrays import (
    LearningRate,
    Theta,
    check_arrays_of,
    check_finite_inputs,
    check_inputs,
    check_optimizer_args,
    check_param_array,
    check_param_values,
    check_real_targets,
    check_state,
    check_states_of,
    check_tokens,
    check_truncate,
    check_weights,
    shape_items,
    zero_state_shape,
)
from ..config import ModelConfig
from ..dropout import check_dropout_masks, check_finite_masks
from ..errors import ConfigError, ParamError, ShapeError
from ..params import as_model_config, infer_cell, validate_params
from . import nn_map
from .cells import CELLS
from .device import numpy_dtype, resolve_device, resolve_dtype
from .functional import clip_grads, cross_entropy, global_norm, head_loss, sgd
from .model import (
    model_forward,
    nn_flat,
    nn_forward,
    nn_leaves,
    stack_state,
    truncated_loss,
    unstack_state,
)
from .nn_map import (
    d2l_rnn_scratch,
    from_d2l_params,
    from_nn_module,
    from_state_dict,
    make_nn_module,
    nn_weights,
    to_d2l_params,
    to_nn_module,
    to_state_dict,
)
from .optim import (
    OPTIMIZER_NAMES,
    TorchOptimizer,
    check_step_grads,
    check_tensor_grads,
    make_optimizer,
)

__all__ = ["TorchBackend", "IMPLS", "model_forward", "nn_forward", "CELLS", "cross_entropy",
           "global_norm", "clip_grads", "sgd", "resolve_device", "resolve_dtype",
           "stack_state", "unstack_state", "nn_map", "nn_weights", "make_nn_module",
           "to_nn_module", "from_nn_module", "to_state_dict", "from_state_dict",
           "to_d2l_params", "from_d2l_params", "d2l_rnn_scratch", "TorchOptimizer",
           "make_optimizer"]

IMPLS = ("scratch", "nn")


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


_FROM_NUMPY = "; make the parameters with backend.from_numpy(params)"


def nn_order(name: str, t: torch.Tensor) -> torch.Tensor:
    """A weight matrix ``W_*`` (In, Out) stored column by column, as torch.nn keeps its
    (Out, In) ``weight_ih`` / ``weight_hh`` / ``nn.Linear.weight``: same shape and values,
    ``t.T`` contiguous. Biases (and anything else) as given."""
    if name.startswith("W_") and t.dim() == 2:
        return t.T.contiguous().T  # (In, Out), strides (1, In)
    return t


def _fits(cfg: ModelConfig, params: dict) -> bool:
    """Every parameter of ``cfg`` a float32 or float64 tensor of its shape, one dtype and
    one device, nothing else in the dict: a shape, dtype and device comparison per
    tensor (``arrays.check_numpy_params``' fast path, for tensors). False sends the
    call through the full check, which names what is wrong."""
    shapes = shape_items(cfg)
    if len(params) != len(shapes):
        return False
    like = params.get("b_q")
    if not isinstance(like, torch.Tensor) or like.dtype not in (torch.float32, torch.float64):
        return False
    dtype, device = like.dtype, like.device
    for name, shape in shapes:
        v = params.get(name)
        if not isinstance(v, torch.Tensor) or v.shape != shape or v.dtype != dtype \
                or v.device != device:
            return False
    return True


class TorchBackend:
    """Backend protocol over ``torch_backend.model``. Arrays are torch tensors on ``device``."""

    name = "torch"

    def __init__(self, dtype="float32", device=None, impl: str = "scratch"):
        if not isinstance(impl, str) or impl not in IMPLS:
            raise ConfigError(f"unknown torch backend impl {impl!r}; expected one of "
                              f"{', '.join(IMPLS)}")
        self.dtype = resolve_dtype(dtype)  # torch.float32 | torch.float64
        self.np_dtype = numpy_dtype(self.dtype)
        self.device = resolve_device(device)
        self.impl = impl
        self._nn_modules: dict = {}  # ModelConfig -> a meta-device torch.nn module

    def __repr__(self) -> str:
        return (f"TorchBackend(dtype={str(self.dtype).replace('torch.', '')}, "
                f"device={str(self.device)!r}, impl={self.impl!r})")

    # -- arrays -------------------------------------------------------------------
    def _tensor(self, v, dtype=None, device=None) -> torch.Tensor:
        """A fresh copy of an array or tensor with the backend's (or given) dtype/device."""
        dtype, device = dtype or self.dtype, device or self.device
        if isinstance(v, torch.Tensor):
            return v.detach().to(device=device, dtype=dtype, copy=True)
        return torch.tensor(np.asarray(v), dtype=dtype, device=device)

    def from_numpy(self, params: dict) -> dict:
        """Leaf tensors on the device, in the backend's dtype (copies). A value that is not
        a finite real array, or a missing, extra or misshaped one, is a ParamError naming
        it (``arrays.check_param_values``, as the numpy backend).

        The weight matrices (``W_x*``, ``W_h*``, ``W_hq``) keep rnnlab's (In, Out) shape
        and values but are stored in torch.nn's memory order, (Out, In) rows
        (:func:`nn_order`): fusing them into the (G*H, In) blocks both paths multiply by
        is then a plain copy, their gradients come back in that order without a
        transposing copy, and MKL runs the products with them as fast as torch.nn's.

        A whole model's per-gate tensors are moreover views into torch.nn's flat weights
        (:func:`nn_map.fused_params`), one ``weight_ih`` / ``weight_hh`` / ``bias_ih`` per
        layer and direction: the nn path hands those to torch's kernel as they are,
        with no copy per step, as ``nn.LSTM`` does with its own weights. Each is still
        its own tensor to the caller (in-place updates of one change only its values).
        """
        arrays = check_param_values(params)
        tensors = {k: nn_order(k, self._tensor(v)) for k, v in arrays.items()}
        cell = infer_cell(arrays)
        if cell is None:  # not a whole model's names: as they are
            return tensors
        return nn_map.fused_params(as_model_config(cell, arrays), tensors)

    def to_numpy(self, params: dict) -> dict:
        params = check_arrays_of("params", params, torch.Tensor, "")
        return {k: v.detach().to("cpu", copy=True).numpy() for k, v in params.items()}

    def tokens(self, X) -> torch.Tensor:
        """(B, T) int64 ids on the device; a float, negative or non-2-D X is a ShapeError
        (the vocabulary bound is checked where it is known, in forward / loss_and_grads)."""
        return self._tokens(X, None, "X", self.device)

    def state_to_numpy(self, state: tuple) -> tuple:
        state = check_states_of("state", state, torch.Tensor)
        return tuple(s.detach().to("cpu", copy=True).numpy() for s in state)

    def state_from_numpy(self, state: tuple) -> tuple:
        state = check_states_of("state", state, None)
        return tuple(self._tensor(s) for s in state)

    # -- model --------------------------------------------------------------------
    def begin_state(self, cell, batch_size: int, num_hiddens: int | None = None) -> tuple:
        """Zeros, one (B, H) tensor per layer, direction and kind of state (d2l's init_state)."""
        n, B, H = zero_state_shape(cell, batch_size, num_hiddens)
        return tuple(torch.zeros((B, H), dtype=self.dtype, device=self.device) for _ in range(n))

    def _config(self, cell, params) -> ModelConfig:
        cfg = as_model_config(cell, params)
        if self.impl == "nn" and cfg.cell == "gru" and cfg.gru_form != "torch":
            raise ConfigError(
                "impl='nn' runs torch.nn.GRU, which is the torch-form GRU, R * (H @ W_hh + "
                "b_hn); the d2l form, (R * H) @ W_hh, is another function: use "
                "gru_form='torch' (--gru-form torch) or impl='scratch'")
        return cfg

    def _params(self, cfg: ModelConfig, params: dict) -> dict:
        """Tensors as given (arrays converted with the backend's dtype), shapes checked."""
        if not isinstance(params, dict):
            raise ParamError(f"params must be a dict of tensors, got {type(params).__name__}")
        if _fits(cfg, params):  # the common case, every step: nothing to convert or name
            return params
        params = {k: v if isinstance(v, torch.Tensor) else nn_order(k, self._tensor(check_param_array(k, v)))
                  for k, v in params.items()}  # a ragged list or a string is named, not a TypeError
        validate_params(cfg, params, finite=False)  # names, shapes, one dtype
        devices = {str(v.device) for v in params.values()}
        if len(devices) > 1:
            raise ParamError(f"parameters are spread over devices {sorted(devices)}; "
                             "move them to one (TorchBackend.from_numpy does)")
        if params["b_q"].dtype not in (torch.float32, torch.float64):
            raise ParamError(f"parameters must be float32 or float64, got {params['b_q'].dtype}")
        return params

    def _tokens(self, X, V: int | None, name: str, device) -> torch.Tensor:
        """(B, T) ids in [0, V) as int64 on ``device``; checked as ``arrays.check_tokens``.

        A tensor is checked where it lies (one min/max read back), so an id out of range
        is a ShapeError here, not a CUDA device-side assert inside the gather.
        """
        if not isinstance(X, torch.Tensor):
            return torch.tensor(check_tokens(X, V, name), device=device)
        if X.dim() != 2 or X.numel() == 0 or not _is_integer(X):
            check_tokens(X, V, name)  # raises the shared ShapeError
        lo, hi = torch.aminmax(X.detach())
        if int(lo) < 0 or (V is not None and int(hi) >= V):
            check_tokens(X, V, name)  # raises, naming the id
        return X.detach().to(device=device, dtype=torch.int64)

    def _state(self, cfg: ModelConfig, state, batch_size: int, like: torch.Tensor) -> tuple:
        check_state(cfg, state, batch_size)
        out = []
        for i, s in enumerate(state):
            if not isinstance(s, torch.Tensor):
                s = self._tensor(s, dtype=like.dtype, device=like.device)
            elif s.dtype != like.dtype or s.device != like.device:
                raise ShapeError(f"state[{i}] is {s.dtype} on {s.device}, the parameters are "
                                 f"{like.dtype} on {like.device}")
            out.append(s)
        return tuple(out)

    def _check(self, cell, params, X, state):
        cfg = self._config(cell, params)
        params = self._params(cfg, params)
        like = params["b_q"]
        if cfg.input_size is None:
            X = self._tokens(X, cfg.vocab_size, "X", like.device)  # (B, T) ids
        else:
            X = self._reals(X, lambda v: check_inputs(v, cfg.input_size), like)  # (B, T, In)
        state = self._state(cfg, state, X.shape[0], like)
        return cfg, params, X, state

    def _reals(self, value, check, like: torch.Tensor) -> torch.Tensor:
        """Real inputs or targets in the parameters' dtype and device, checked by ``check``
        (``arrays.check_inputs`` / ``check_real_targets``). A tensor is read back to be
        checked: B*T*In numbers, on the real-input path only."""
        if not isinstance(value, torch.Tensor):
            return self._tensor(check(value), like.dtype, like.device)
        check(value.detach().cpu().numpy())  # raises the shared ShapeError
        return value.detach().to(device=like.device, dtype=like.dtype)

    def _nn_weight_names(self, cfg: ModelConfig) -> list:
        """torch.nn's flat weight order for ``cfg``, from a module built once per config.

        The module lives on the meta device: only its names (and shapes) are used, the
        weights always come from the rnnlab tensors, so dtype and device do not matter.
        """
        module = self._nn_modules.get(cfg)
        if module is None:
            module = self._nn_modules[cfg] = make_nn_module(cfg, device="meta")
        return module._flat_weights_names

    def _model(self, cfg, params, X, state, train: bool = False, dropout_masks=None):
        if self.impl == "nn":
            return nn_forward(cfg, params, X, state, self._nn_weight_names(cfg), train=train,
                              dropout_masks=dropout_masks)
        return model_forward(cfg, params, X, state, dropout_masks)

    def _window_forward(self, cfg: ModelConfig):
        """``forward(params, X, state, masks) -> (logits, state_T)`` of this backend's path,
        differentiable with respect to ``params`` (truncated BPTT runs it per window)."""
        if self.impl == "nn":
            names = self._nn_weight_names(cfg)
            return lambda p, X, st, m: nn_forward(cfg, p, X, st, names, train=True,
                                                  dropout_masks=m)
        return lambda p, X, st, m: model_forward(cfg, p, X, st, m)

    def forward(self, cell, params: dict, X, state: tuple):
        """Logits (T*B, V), time-major, and the state after the last step (no autograd)."""
        cfg, params, X, state = self._check(cell, params, X, state)
        with torch.no_grad():
            if self.impl == "nn":  # the parameters' own torch.nn weights where they lie in them
                names = self._nn_weight_names(cfg)
                logits, state_T = nn_forward(cfg, params, X, state, names,
                                             flat=nn_flat(cfg, params, names))
            else:
                logits, state_T = self._model(cfg, params, X, state)
        if not bool(torch.isfinite(logits).all()):  # one pass over (T*B, V), one sync
            self._name_non_finite(params, state)
        return logits, state_T

    @staticmethod
    def _name_non_finite(params: dict, state: tuple, masks=None) -> None:
        """After a non-finite loss or logits: NonFiniteParamError naming the NaN/inf input."""
        to_numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731
        check_finite_inputs(params, state, to_numpy=to_numpy)
        check_finite_masks(masks, to_numpy=to_numpy)

    def _loss_inputs(self, cell, params, X, Y, state, weights, dropout_masks):
        """``loss_and_grads``' arguments checked and moved to the parameters' device."""
        cfg, params, X, state = self._check(cell, params, X, state)
        like = params["b_q"]
        masks = check_dropout_masks(cfg, dropout_masks, X.shape[1], X.shape[0])
        if masks is not None:
            masks = tuple(self._tensor(m, like.dtype, like.device) for m in masks)
        if cfg.head == "mse":  # (B, T) real targets
            Y = self._reals(Y, lambda v: check_real_targets(v, tuple(X.shape[:2])), like)
        else:
            Y = self._tokens(Y, cfg.vocab_size, "Y", like.device)
            if Y.shape != X.shape[:2]:
                raise ShapeError(f"Y has shape {tuple(Y.shape)}, expected X's shape "
                                 f"{tuple(X.shape[:2])}")
        if weights is not None:
            if isinstance(weights, torch.Tensor):
                if tuple(weights.shape) != (Y.numel(),) or weights.dtype.is_complex \
                        or weights.dtype == torch.bool or not bool(torch.isfinite(weights).all()) \
                        or bool((weights < 0).any()):  # a sync, as float(loss) makes one anyway
                    check_weights(weights, Y.numel())  # raises the shared ShapeError
                weights = weights.detach().to(device=like.device, dtype=like.dtype)
            else:
                weights = self._tensor(check_weights(weights, Y.numel()), like.dtype, like.device)
        return cfg, params, X, Y, state, weights, masks

    @checked
    def loss_and_grads(self, cell, params: dict, X, Y, state: tuple, weights=None,
                       state_grads: Flag = False, dropout_masks=None, truncate=None):
        """Mean (weighted) cross-entropy (``head="mse"``: squared error), its gradients by
        autograd, the final state (detached).

        With ``state_grads=True`` a fourth value is returned: dL/d(initial state), a tuple.
        Autograd runs on detached aliases of ``params`` (same storage, no copy), so the
        caller's tensors never get a ``.grad`` and may or may not require grad.
        ``dropout_masks`` (``rnnlab.dropout.dropout_masks``, arrays or tensors): dropout
        between layers with exactly these masks, as the numpy backend; None: no dropout.
        ``truncate`` k: each step's loss sends its gradient k steps back at most
        (:func:`model.truncated_loss`); None (the default): full BPTT over the window.
        """
        cfg, params, X, Y, state, weights, masks = self._loss_inputs(
            cell, params, X, Y, state, weights, dropout_masks)
        truncate = check_truncate(cfg, truncate)
        state0 = tuple(s.detach().requires_grad_(state_grads) for s in state)
        if truncate is not None and truncate < X.shape[1]:  # autograd over k-step windows
            leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                loss, state_T = truncated_loss(self._window_forward(cfg), cfg, leaves, X, Y,
                                               state0, weights, masks, truncate)
            inputs = list(leaves.values()) + (list(state0) if state_grads else [])
            grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
            named = dict(zip(leaves, grads[: len(leaves)]))
            dstate = list(grads[len(leaves):])
        elif self.impl == "nn":  # the gradients of torch.nn's own weights, then renamed
            names = self._nn_weight_names(cfg)
            flat = nn_leaves(cfg, params, names)
            leaves = {k: params[k].detach().requires_grad_(True) for k in ("W_hq", "b_q")}
            with torch.enable_grad():
                logits, state_T = nn_forward(cfg, leaves, X, state0, names, train=True,
                                             dropout_masks=masks, flat=flat)
                loss = head_loss(cfg, logits, Y.T.reshape(-1), weights)  # targets time-major
            weight_leaves = [w for w in flat if w.requires_grad]
            inputs = weight_leaves + list(leaves.values()) + (list(state0) if state_grads else [])
            grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
            it = iter(grads)
            named = nn_map.nn_views(cfg, names,
                                    [next(it) if w.requires_grad else None for w in flat])
            named.update(zip(leaves, it))
            dstate = list(it)
        else:
            leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                logits, state_T = model_forward(cfg, leaves, X, state0, masks)
                loss = head_loss(cfg, logits, Y.T.reshape(-1), weights)  # targets time-major
            inputs = list(leaves.values()) + (list(state0) if state_grads else [])
            grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
            named = dict(zip(leaves, grads[: len(leaves)]))
            dstate = list(grads[len(leaves):])
        # slices of fused gradients: kept where laid out as their parameter (the weight
        # matrices' blocks, in torch.nn's order), else copied into that layout; params' order
        named = {k: named[k] if named[k].stride() == p.stride() else torch.empty_like(p).copy_(named[k])
                 for k, p in params.items()}
        state_T = tuple(s.detach() for s in state_T)
        loss = float(loss.detach())
        if not np.isfinite(loss):  # only now look for the cause among the inputs
            self._name_non_finite(params, state, masks)
        if state_grads:
            return loss, named, state_T, tuple(dstate)
        return loss, named, state_T

    @checked
    def clip_grads(self, grads: dict, theta: Theta) -> float:
        return clip_grads(check_tensor_grads(grads), theta)

    @checked
    def sgd(self, params: dict, grads: dict, lr: LearningRate) -> None:
        check_arrays_of("params", params, torch.Tensor, _FROM_NUMPY)
        check_step_grads(grads, params)
        sgd(params, grads, lr)

    def make_optimizer(self, name: str, params: dict, lr: float) -> TorchOptimizer:
        """``sgd`` | ``adam`` | ``adagrad`` (torch.optim), ``adagrad-minchar`` (torch ops);
        ``step(grads)`` updates in place."""
        lr = check_optimizer_args(name, params, lr, OPTIMIZER_NAMES, torch.Tensor, _FROM_NUMPY)
        return make_optimizer(name, params, lr)

    def validate(self, cell, params: dict) -> ModelConfig:
        """Names, shapes, one dtype, and every value finite (checked on the device)."""
        cfg = validate_params(cell, params)
        for name, v in params.items():
            if isinstance(v, torch.Tensor) and not bool(torch.isfinite(v).all()):
                raise ParamError(f"parameter {name!r} holds NaN or infinite values")
        return cfg
