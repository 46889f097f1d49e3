"""What one numpy training step really allocates, to hold ``rnnlab.memory``'s estimate to.

The estimate (``rnnlab.memory.estimate_memory``) is pure arithmetic on the config and
lives below the backends; measuring needs the backend itself, so it lives here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from ..config import ModelConfig
from ..params import init_params
from .model import loss_and_grads


def measure_numpy_step(cfg: ModelConfig, batch_size: int, num_steps: int, dtype="float32",
                       seed: int = 0) -> int:
    """Bytes ``tracemalloc`` sees one numpy ``loss_and_grads`` call allocate at its peak."""
    rng = np.random.default_rng(seed)
    params = init_params(cfg, seed=seed, dtype=dtype)
    X = rng.integers(0, cfg.vocab_size, (batch_size, num_steps))  # (B, T)
    Y = rng.integers(0, cfg.vocab_size, (batch_size, num_steps))  # (B, T)
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    state = tuple(np.zeros((batch_size, cfg.num_hiddens), dtype=dtype) for _ in range(n))
    loss_and_grads(cfg, params, X, Y, state)  # warm up: first-call allocations of NumPy
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = loss_and_grads(cfg, params, X, Y, state)
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak
