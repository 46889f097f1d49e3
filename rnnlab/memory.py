"""How much memory one BPTT training step takes, before running it.

``estimate_memory(cfg, batch_size, num_steps, backend="numpy", optimizer="sgd")`` returns
a :class:`MemoryEstimate` in bytes:

- **parameters**: the parameter arrays (d2l's names, see ``params.py``);
- **gradients**: one gradient per parameter, as ``loss_and_grads`` returns them;
- **optimizer_state**: SGD none, Adagrad one array per parameter (Σ g²), Adam two (m, v);
- **activations**: what the forward pass keeps for the backward pass. For the numpy
  backend these are the caches of ``numpy_backend`` (per layer and direction: the fused
  weights W_x and W_h, then rnn ``Hs``; lstm ``Hs, Cs, gates, tanh_C``; gru ``Hs, gates``
  and ``R ⊙ H`` or ``H W_hh + b_hn``; the next layer's inputs; the logits and softmax
  probabilities). For the torch backend they are the tensors autograd saves (scratch
  path: per LSTM step ``H_{t-1}``, ``[I | F | O]``, ``C̃``, ``C_t``, ``tanh(C_t)``, i.e.
  7 B·H numbers; nn path on a CPU: oneDNN's LSTM workspace, about 17 (T+1)·B·H numbers);
- **workspace**: the transient peak of the backward pass on top of the activations (the
  gradient of every gate pre-activation dZ (T, B, G·H), which in the LSTM first holds
  the derivative factors made before the BPTT loop, the fused gradients and their
  per-parameter copies ...).

``step_peak`` = activations + workspace is what one ``loss_and_grads`` call allocates at
its highest point; ``total`` adds the parameters and the optimiser state: the memory a
model and a batch need to train. Only array data is counted, not Python objects or the
libraries' own code and thread buffers (tens of MiB for torch, a few for NumPy).

The numpy estimate walks the allocations of ``numpy_backend.model.loss_and_grads`` in
order (a ledger of what is allocated and freed), so its peak is the peak of the real
call; ``tests/test_memory.py`` checks it against ``tracemalloc`` within 15%, and the
torch activations against the tensors autograd actually saves. Shapes: N = T·B tokens,
H hidden, G gates (rnn 1, lstm 4, gru 3), V vocabulary, In a layer's input width.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .checks import check_fits, human_bytes, memory_limit  # noqa: F401  (rnnlab.memory's names)
from .config import ModelConfig
from .errors import ConfigError
from .params import check_dtype, layer_input_size, param_count, param_shapes, units  # noqa: F401  (param_count: rnnlab.memory.param_count)

GATE_COUNT = {"rnn": 1, "lstm": 4, "gru": 3, "irnn": 1}
OPTIMIZER_SLOTS = {"sgd": 0, "adagrad": 1, "adagrad-minchar": 1, "adam": 2}  # arrays of parameter size per parameter
INT64 = 8  # bytes of a token id


@dataclass(frozen=True)
class MemoryEstimate:
    backend: str  # "numpy", "torch (scratch)" or "torch (nn)"
    dtype: str  # "float32" | "float64"
    parameters: int  # bytes of the parameters
    gradients: int  # bytes of the gradients (one per parameter)
    optimizer_state: int  # bytes of the optimiser's per-parameter state
    activations: int  # bytes kept from the forward pass for the backward pass
    workspace: int  # bytes of the backward pass's transient peak above the activations

    @property
    def step_peak(self) -> int:
        """What one ``loss_and_grads`` call allocates at its highest point."""
        return self.activations + self.workspace

    @property
    def total(self) -> int:
        """Parameters + optimiser state + the step's peak (the gradients are made inside it)."""
        return self.parameters + self.optimizer_state + max(self.step_peak, self.gradients)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "dtype": self.dtype, "parameters": self.parameters,
                "gradients": self.gradients, "optimizer_state": self.optimizer_state,
                "activations": self.activations, "workspace": self.workspace,
                "step_peak": self.step_peak, "total": self.total}

    def table(self) -> str:
        """The breakdown in MiB, one line per part."""
        # the gradients are made by the backward pass: counted in its workspace, so in the
        # step's peak and the total, not a second time beside them
        rows = [("parameters", self.parameters),
                ("gradients (inside the backward workspace)", self.gradients),
                ("optimizer state", self.optimizer_state),
                ("activations kept for backward", self.activations),
                ("backward workspace (peak)", self.workspace),
                ("one step's peak (activations + workspace)", self.step_peak),
                ("total (parameters + optimizer + step peak)", self.total)]
        return "\n".join(f"  {name:44s} {nbytes / 2**20:10.2f} MiB" for name, nbytes in rows)


class _Ledger:
    """Bytes allocated and freed in program order; remembers the highest point."""

    def __init__(self):
        self.live, self.peak, self.arrays = 0, 0, {}

    def alloc(self, name: str, nbytes: int) -> None:
        self.arrays[name] = self.arrays.get(name, 0) + int(nbytes)
        self.live += int(nbytes)
        self.peak = max(self.peak, self.live)

    def free(self, *names: str) -> None:
        for name in names:
            self.live -= self.arrays.pop(name, 0)

    def transient(self, nbytes: int) -> None:
        """A temporary made and dropped within one line."""
        self.peak = max(self.peak, self.live + int(nbytes))


def _check(cfg, batch_size, num_steps, backend, optimizer, impl):
    if not isinstance(cfg, ModelConfig):
        raise ConfigError(f"estimate_memory needs a ModelConfig, got {type(cfg).__name__}")
    for name, v in (("batch_size", batch_size), ("num_steps", num_steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(backend, str) or backend not in ("numpy", "torch"):
        raise ConfigError(f"unknown backend {backend!r}; expected numpy or torch")
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZER_SLOTS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; expected one of "
                          f"{', '.join(OPTIMIZER_SLOTS)}")
    if not isinstance(impl, str) or impl not in ("scratch", "nn"):
        raise ConfigError(f"unknown torch impl {impl!r}; expected scratch or nn")
    if backend == "torch" and impl == "nn" and cfg.cell == "gru" and cfg.gru_form != "torch":
        raise ConfigError("impl='nn' runs torch.nn.GRU, the torch-form GRU, R * (H @ W_hh + b_hn), "
                          "not d2l's (R * H) @ W_hh; use gru_form='torch' or impl='scratch'")


def estimate_memory(cfg: ModelConfig, batch_size: int, num_steps: int, backend: str = "numpy",
                    optimizer: str = "sgd", dtype="float32", impl: str = "scratch") -> MemoryEstimate:
    """The memory of one BPTT training step of ``cfg`` on a (batch_size, num_steps) batch.

    ``impl`` picks the torch backend's path (``scratch`` or ``nn``); the numpy backend
    has one. Dropout masks, when used, come on top (one (T, B, H·D) float64 array per
    layer boundary, made by the caller). Past 16 layers the numbers are extrapolated in
    O(1) (the workspace as a lower bound), so any size, however absurd, is estimated at once.
    """
    _check(cfg, batch_size, num_steps, backend, optimizer, impl)
    if cfg.num_layers > _WALKED_LAYERS:  # every layer above the first is alike: affine in L
        L = cfg.num_layers
        a, b = (estimate_memory(dataclasses.replace(cfg, num_layers=n), batch_size, num_steps,
                                backend, optimizer, dtype, impl)
                for n in (_WALKED_LAYERS - 1, _WALKED_LAYERS))
        grow = lambda f: getattr(b, f) + (L - _WALKED_LAYERS) * (getattr(b, f) - getattr(a, f))  # noqa: E731
        return MemoryEstimate(b.backend, b.dtype, *(grow(f) for f in (
            "parameters", "gradients", "optimizer_state", "activations", "workspace")))
    item = check_dtype(dtype).itemsize
    n_params = sum(int(np.prod(s)) for s in param_shapes(cfg).values())
    parameters = n_params * item
    state = OPTIMIZER_SLOTS[optimizer] * parameters
    if backend == "numpy":
        activations, peak = _numpy_step(cfg, batch_size, num_steps, item)
        name = "numpy"
    else:
        activations, peak = _torch_step(cfg, batch_size, num_steps, item, impl, parameters)
        name = f"torch ({impl})"
    return MemoryEstimate(name, check_dtype(dtype).name, parameters, parameters, state,
                          activations, peak - activations)


# Above this many layers an estimate is extrapolated from the last two walked, so a size
# check of num_layers=10**9 costs what 16 layers do. Layers 1..L-1 are alike, so the
# parameters, gradients, optimiser state and activations grow by the same bytes per
# layer (exact, tests/test_memory.py). The workspace is a peak, a maximum of such affine
# functions of L, whose slope can still rise past the walked depth: extrapolated, it
# is a lower bound (a secant of a convex function), so a refusal never overstates.
_WALKED_LAYERS = 16


def check_training_fits(cfg: ModelConfig, batch_size: int, num_steps: int, backend: str = "numpy",
                        optimizer: str = "sgd", dtype="float32", impl: str = "scratch",
                        hint: str = "use a smaller --hidden, --num-layers, --batch-size or "
                                    "--num-steps") -> None:
    """Refuse a model and batch whose training step (parameters, optimiser state, the
    step's peak) cannot fit in memory, with the estimate, before anything is allocated."""
    est = estimate_memory(cfg, batch_size, num_steps, backend, optimizer, dtype, impl)
    check_fits(est.total, f"training a {cfg.cell} with H={cfg.num_hiddens:,}, "
               f"{cfg.num_layers:,} layer(s), V={cfg.vocab_size:,} on batches of "
               f"B={batch_size:,} x T={num_steps:,} ({est.backend}, {est.dtype}, {optimizer})",
               hint)


# ------------------------------------------------------------------------------- numpy


def _numpy_cell_forward(led: _Ledger, cell, u, T, B, H, item, gru_torch):
    """What ``<cell>_forward`` allocates and keeps in its cache (cells.py, gru.py)."""
    N = T * B
    led.alloc(f"Hs{u}", (T + 1) * B * H * item)
    if cell == "lstm":
        led.alloc(f"Cs{u}", (T + 1) * B * H * item)
        led.alloc(f"gates{u}", N * 4 * H * item)
        led.alloc(f"tanh_C{u}", N * H * item)
        led.transient(B * H * item)  # the I ⊙ C̃ buffer
    elif cell == "gru":
        led.alloc(f"gates{u}", N * 3 * H * item)
        led.alloc(f"RH{u}", N * H * item)  # R ⊙ H_{t-1} (d2l) or H_{t-1} W_hh + b_hn (torch)
        if gru_torch:
            led.transient(B * 3 * H * item)  # HW = H_{t-1} W_h, one step


def _numpy_cell_backward(led: _Ledger, cell, u, T, B, H, item, gru_torch):
    """What ``<cell>_backward`` allocates: dZ (returned) and its own temporaries."""
    N = T * B
    G = GATE_COUNT[cell]
    if cell == "lstm":
        led.alloc(f"dZ{u}", N * 4 * H * item)  # the derivative factors, then dZ in place
        led.alloc(f"K{u}", N * H * item)
        led.transient(4 * B * H * item)  # dH, dC, dH_next, dC_next
        led.alloc(f"dW_h{u}", H * 4 * H * item)
        led.free(f"K{u}")
    elif cell in ("rnn", "irnn"):  # irnn's ReLU' is a bool array, counted at rnn's tanh' size
        led.alloc(f"dtanh{u}", N * H * item)
        led.alloc(f"dZ{u}", N * H * item)
        led.alloc(f"dW_h{u}", H * H * item)
        led.free(f"dtanh{u}")
    else:
        led.alloc(f"dZ{u}", N * 3 * H * item)
        if gru_torch:
            led.alloc(f"dHW{u}", N * 3 * H * item)
        led.transient(6 * B * H * item)  # the per-step temporaries (dH, σ', ...)
        led.alloc(f"dW_h{u}", H * G * H * item)
        led.free(f"dHW{u}")


def _numpy_step(cfg: ModelConfig, B: int, T: int, item: int):
    """(activations, peak) of ``numpy_backend.model.loss_and_grads``, by walking it."""
    led = _Ledger()
    H, V, D, L, N = cfg.num_hiddens, cfg.vocab_size, cfg.num_directions, cfg.num_layers, T * B
    G = GATE_COUNT[cfg.cell]
    gru_torch = cfg.cell == "gru" and cfg.gru_form == "torch"
    # forward: model_forward, unit by unit
    for layer in range(L):
        for direction in range(D):
            u, In = f"{layer}.{direction}", layer_input_size(cfg, layer)
            led.alloc(f"W_x{u}", In * G * H * item)  # fused copies, kept in the caches
            led.alloc(f"W_h{u}", H * G * H * item)
            led.alloc(f"b{u}", G * H * item)
            if layer == 0:
                led.transient(V * G * H * item)  # W_x + b, the gather table
            led.alloc(f"XW{u}", N * G * H * item)  # the input projection of every step
            _numpy_cell_forward(led, cfg.cell, u, T, B, H, item, gru_torch)
            led.free(f"XW{u}", f"b{u}")  # layer_forward returns; only the caches stay
        if D == 2:
            led.alloc(f"out{layer}", N * 2 * H * item)  # [H_fwd | H_rev]
        if cfg.dropout > 0 and layer < L - 1:
            led.alloc(f"dropped{layer}", N * H * D * item)  # outputs ⊙ mask
    led.transient(N * V * item)  # Hs W_hq, before + b_q
    led.alloc("logits", N * V * item)
    # loss: shifted and exp live until the probabilities are made
    led.alloc("shifted", N * V * item)
    led.alloc("exp", N * V * item)
    led.alloc("probs", N * V * item)
    led.free("shifted", "exp")
    activations = led.live
    # backward: model_backward, units from the top down
    led.alloc("dlogits", N * V * item)
    led.alloc("grad_out", (H * D * V + V) * item)
    dout = "dout"
    led.alloc(dout, N * H * D * item)  # dlogits W_hqᵀ: into the last layer's outputs
    for layer in reversed(range(L)):
        if cfg.dropout > 0 and layer < L - 1:
            led.alloc(f"masked{layer}", N * H * D * item)  # dout ⊙ mask replaces dout
            led.free(dout)
            dout = f"masked{layer}"
        for direction in range(D):
            u, In = f"{layer}.{direction}", layer_input_size(cfg, layer)
            _numpy_cell_backward(led, cfg.cell, u, T, B, H, item, gru_torch)
            led.alloc(f"db{u}", G * H * item)
            if layer == 0:  # scatter_add_rows: rows grouped by token, then the (V, G·H) sums
                led.alloc(f"grouped{u}", N * G * H * item + 3 * N * INT64)
                led.alloc(f"dW_x{u}", V * G * H * item)
                led.free(f"grouped{u}")
            else:
                led.alloc(f"dW_x{u}", In * G * H * item)
                led.alloc(f"dx{u}", N * In * item)  # dZ W_xᵀ: into the layer below
                if direction == 1:
                    led.alloc(f"dsum{layer}", N * In * item)  # dx_fwd + dx_rev
                    led.free(f"dx{layer}.0", f"dx{u}")
            led.free(f"dZ{u}")
        led.free(dout)
        if layer > 0:
            dout = f"dsum{layer}" if D == 2 else f"dx{layer}.0"
    # the per-parameter copies of the gradients, while the fused ones are still alive
    n_grads = sum(int(np.prod(s)) for s in param_shapes(cfg).values())
    led.alloc("grads", n_grads * item)
    return activations, led.peak


# ------------------------------------------------------------------------------- torch


def _torch_step(cfg: ModelConfig, B: int, T: int, item: int, impl: str, parameters: int):
    """(activations, peak) of the torch backend: autograd's saved tensors, then backward.

    Saved per unit (measured with ``torch.autograd.graph.saved_tensors_hooks``):
    scratch rnn (T+1)·B·H (every H_t), lstm 7·N·H (H_{t-1}, [I|F|O], C̃, C_t, tanh C_t
    per step), gru 6·N·H ([Z|R], R ⊙ H or H W_hh + b_hn, H̃, 1 - Z, H_t per step), plus the
    fused W_h and the stacked outputs; nn rnn (T+1)·B·H, gru 7·N·H, lstm oneDNN's
    workspace ≈ 17·(T+1)·B·H (its size is oneDNN's: about 15 in torch 2.13, 20 in torch
    2.1; 17 is within 13% of either), plus the one-hot inputs and bias_hh; the kernel's weights
    are the parameters' own memory (``TorchBackend.from_numpy`` lays them out in torch.nn's
    flat weights), so nothing is copied for them.
    """
    H, V, D, N = cfg.num_hiddens, cfg.vocab_size, cfg.num_directions, T * B
    G = GATE_COUNT[cfg.cell]
    saved = 0
    for layer, direction in units(cfg):
        In = layer_input_size(cfg, layer)
        if impl == "scratch":
            per_unit = {"rnn": (T + 1) * B * H, "lstm": 7 * N * H + 2 * B * H,
                        "gru": 6 * N * H + B * H, "irnn": (T + 1) * B * H}[cfg.cell]
            saved += per_unit * item + H * G * H * item  # + the fused W_h
            saved += N * H * item  # torch.stack of the outputs, read by the next matmul
            if layer > 0:
                saved += In * G * H * item  # the fused W_x of a dense layer
            else:
                saved += N * INT64  # embedding keeps the token ids
        else:
            per_unit = {"rnn": (T + 1) * B * H, "lstm": 17 * (T + 1) * B * H,
                        "gru": 7 * N * H, "irnn": (T + 1) * B * H}[cfg.cell]
            saved += per_unit * item + G * H * item  # + bias_hh (the weights are the params')
            if layer > 0:
                saved += N * In * item  # the layer below's outputs, this layer's inputs
    if impl == "nn":
        saved += N * V * item + N * H * D * item  # one-hot inputs, the layer outputs
    saved += N * V * item + 2 * N * INT64  # log-softmax, targets
    # backward: autograd frees as it goes; the peak holds the gradients being summed into
    # the fused weights and their per-parameter copies, dlogits and the outputs' gradient
    workspace = 2 * parameters + 2 * N * V * item + N * H * D * item
    workspace += (G * N * H * item if impl == "nn" else 4 * G * B * H * item)
    return saved, saved + workspace


def retain_freed_memory(max_bytes: int = 1 << 30) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    A training step allocates and frees tens of MiB of arrays (the caches and the
    backward's workspace; ``estimate_memory`` says how much). By default glibc hands
    large blocks back to the kernel when they are freed (``mmap`` above 128 KiB, and a
    heap top above twice that threshold is trimmed), so the next step gets fresh pages
    and pays a page fault, and a zeroed page, for every 4 KiB it touches: about 7 of the
    21 ms of a numpy LSTM step at d2l's sizes (docs/benchmarks.md). With this, the
    freed blocks stay in the heap and the next step reuses them; the process keeps its
    peak memory until it exits, which is what a training run needs anyway.

    Process-wide, so the library never calls it on import: ``rnnlab train`` calls it at
    start. Returns True where it took effect (Linux with glibc), False elsewhere.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    big = mallopt(M_MMAP_THRESHOLD, 32 << 20)  # arrays up to 32 MiB (glibc's maximum) from the heap
    keep = mallopt(M_TRIM_THRESHOLD, int(max_bytes))  # free heap kept up to max_bytes
    return bool(big and keep)
