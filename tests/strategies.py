"""Named Hypothesis strategies for the property suite, in one place (array-API-tests style).

Every problem has random cell, B, T (T = 1 included), V, H, seed, non-zero biases,
random initial states and random per-token loss weights, so no property can pass by
symmetry (all-ones upstream gradients, zero biases or zero states hide real bugs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from rnnlab.config import ModelConfig
from rnnlab.gradcheck import random_problem
from rnnlab.numpy_backend.cells import CELLS as NUMPY_CELLS

BASE_CELLS = ("rnn", "lstm")
ALL_CELLS = tuple(c for c in ("rnn", "lstm", "gru") if c in NUMPY_CELLS)

batch_sizes = st.integers(1, 4)
num_steps = st.integers(1, 6)  # T = 1 is the edge case of every recurrence
vocab_sizes = st.integers(2, 7)
hidden_sizes = st.integers(1, 6)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(["float64", "float32"])


class Problem(NamedTuple):
    cfg: ModelConfig
    params: dict  # float64 NumPy arrays, entries of scale 0.5, biases non-zero
    X: np.ndarray  # (B, T) ids
    Y: np.ndarray  # (B, T) ids
    state: tuple  # random (B, H) arrays
    weights: np.ndarray  # (T*B,) positive per-token loss weights


@st.composite
def model_configs(draw, cells=BASE_CELLS, max_layers: int = 2, nn_mappable: bool = False):
    """A ModelConfig; ``nn_mappable`` keeps to what torch.nn can express (GRU: torch form)."""
    cell = draw(st.sampled_from(cells))
    gru_form = "d2l"
    if cell == "gru":
        gru_form = "torch" if nn_mappable else draw(st.sampled_from(["d2l", "torch"]))
    return ModelConfig(cell, draw(vocab_sizes), draw(hidden_sizes),
                       num_layers=draw(st.integers(1, max_layers)), gru_form=gru_form)


@st.composite
def problems(draw, configs=None, max_T: int = 6, min_T: int = 1):
    cfg = draw(configs if configs is not None else model_configs())
    B = draw(batch_sizes)
    T = draw(st.integers(min_T, max_T))
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=draw(seeds))
    return Problem(cfg, params, X, Y, state, weights)


TASK_CELLS = ("rnn", "lstm", "gru", "irnn")  # every cell, the IRNN included


@st.composite
def task_configs(draw, cells=TASK_CELLS, max_layers: int = 2, nn_mappable: bool = True):
    """A ModelConfig of the memory tasks' kind: any cell (the IRNN too), token ids or real
    inputs (``input_size``), the softmax or the squared-error head (V = 1)."""
    cell = draw(st.sampled_from(cells))
    gru_form = "torch" if cell == "gru" and (nn_mappable or draw(st.booleans())) else "d2l"
    head = draw(st.sampled_from(["softmax", "mse"]))
    return ModelConfig(cell, 1 if head == "mse" else draw(vocab_sizes), draw(hidden_sizes),
                       num_layers=draw(st.integers(1, max_layers)), gru_form=gru_form,
                       input_size=draw(st.one_of(st.none(), st.integers(1, 4))), head=head)


@st.composite
def saturated_problems(draw, configs=None):
    """Weights scaled so gate pre-activations have magnitudes in the hundreds."""
    p = draw(problems(configs))
    scale = draw(st.floats(200.0, 2000.0))
    params = {k: v * scale for k, v in p.params.items()}
    return p._replace(params=params, state=tuple(s * scale for s in p.state))


@st.composite
def gradient_dicts(draw):
    """A few arrays of mixed scales, for clipping properties."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(1, 4))
    exps = [draw(st.integers(-6, 6)) for _ in range(n)]
    return {f"g{i}": rng.standard_normal(draw(st.integers(1, 5))) * 10.0 ** e
            for i, e in enumerate(exps)}
