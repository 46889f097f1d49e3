"""Long-range memory tasks, generated from a seed: the adding problem and the copy task.

These are the synthetic experiments that show why gates and full BPTT matter: the answer
depends on inputs seen many steps earlier, so a cell whose gradient fades over that lag
(the tanh rnn), or BPTT truncated shorter than it, learns nothing better than a
memoryless guess, the task's *baseline*.

* **The adding problem** (Hochreiter & Schmidhuber 1997, in the setting of Le, Jaitly &
  Hinton 2015): each of T steps reads two reals, a number drawn uniformly in [0, 1] and a
  marker, 1 at two steps (one in the first half, one in the second) and 0 elsewhere. The
  target is the sum of the two marked numbers, read at the last step with the
  squared-error head. Always answering 1, the mean, scores Var(u₁ + u₂) = 2/12 = 1/6.
* **The copy task** (Hochreiter & Schmidhuber 1997, in the setting of Arjovsky, Shah &
  Bengio 2016): ten symbols drawn from eight, T - 1 blanks, a delimiter, then ten blanks
  during which the ten symbols must be written back; T + 20 steps in all. Cross-entropy
  on the last ten steps, averaged over all T + 20: guessing uniformly there scores
  10 log 8 / (T + 20).

A :class:`Task` holds the examples (X, Y), the weight of each step's loss (where the
answer is read) and the baseline; the backends read those weights as their per-token
``weights``, so no new loss is needed to read the answer at chosen steps only.
Nothing is downloaded: the same seed gives the same examples on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from .arguments import Choice, Int, PositiveInt, Seed, checked
from .config import ModelConfig, replace_checked
from .errors import ConfigError

TASKS = ("adding", "copy")
COPY_SYMBOLS = 8  # the symbols to remember are ids 1 .. 8
COPY_LENGTH = 10  # how many of them
BLANK, DELIMITER = 0, COPY_SYMBOLS + 1  # id 0: nothing to read or write; id 9: "now copy"
COPY_VOCAB = COPY_SYMBOLS + 2  # blank, the eight symbols, the delimiter


@dataclass(frozen=True)
class Task:
    """Examples of one task and how their loss is read."""

    name: str  # "adding" | "copy"
    length: int  # T, the lag the task is named by (the adding problem's steps; the copy task's blanks)
    X: np.ndarray  # (N, steps, 2) reals (adding) or (N, steps) ids (copy)
    Y: np.ndarray  # (N, steps) targets: reals (adding) or ids (copy)
    step_weights: np.ndarray  # (steps,) weight of each step's loss, 0 where nothing is read
    baseline: float  # the loss of the best memoryless answer

    @property
    def num_steps(self) -> int:
        """Steps of one example: T for the adding problem, T + 20 for the copy task."""
        return self.X.shape[1]

    def model_config(self, cell: str = "lstm", num_hiddens: int = 128, **options) -> ModelConfig:
        """The model the task needs: 2 reals in and the squared-error head (adding), or
        ten token ids in and ten classes out (copy). ``options``: any other ModelConfig
        field (``num_layers``, ``gru_form``, ...)."""
        fixed = sorted({"vocab_size", "input_size", "head"} & set(options))
        if fixed:
            raise ConfigError(f"the {self.name} task sets {', '.join(fixed)} itself (its "
                              f"model's inputs and outputs are the task's); leave them out")
        if self.name == "adding":
            cfg = ModelConfig(cell, 1, num_hiddens, input_size=2, head="mse")
        else:
            cfg = ModelConfig(cell, COPY_VOCAB, num_hiddens)
        return replace_checked(cfg, **options)

    def weights(self, batch_size: int) -> np.ndarray:
        """(T*B,) per-token weights, time-major as the logits: step t's weight B times."""
        return np.repeat(self.step_weights, batch_size)  # (T*B,)

    def batches(self, batch_size: int, rng: np.random.Generator):
        """(X, Y) batches of ``batch_size`` examples in a random order (a last short one
        is dropped, as d2l's iterators drop theirs)."""
        order = rng.permutation(len(self.X))  # (N,)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]  # (B,)
            yield self.X[rows], self.Y[rows]


@checked
def adding_problem(num_examples: PositiveInt, length: Annotated[int, Int(lo=2)],
                   seed: Annotated[int, Seed()] = 0) -> Task:
    """``num_examples`` sequences of ``length`` steps; X (N, T, 2), Y (N, T), the sum at T-1."""
    rng = np.random.default_rng(seed)
    N, T = num_examples, length
    values = rng.uniform(0.0, 1.0, (N, T))  # (N, T): the numbers
    first = rng.integers(0, T // 2, N)  # (N,): a marked step in the first half
    second = rng.integers(T // 2, T, N)  # (N,): and one in the second half
    markers = np.zeros((N, T))  # (N, T)
    rows = np.arange(N)
    markers[rows, first] = markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1)  # (N, T, 2)
    Y = np.zeros((N, T))  # (N, T): nothing is read before the last step
    Y[:, -1] = values[rows, first] + values[rows, second]
    # weight T at the last step, 0 elsewhere: the loss, a mean over the T*B steps of a
    # batch, is then the mean squared error of the B answers, as the papers report it
    step_weights = np.zeros(T)  # (T,)
    step_weights[-1] = T
    return Task("adding", T, X, Y, step_weights, baseline=1.0 / 6.0)


@checked
def copy_task(num_examples: PositiveInt, length: PositiveInt,
              seed: Annotated[int, Seed()] = 0) -> Task:
    """``num_examples`` sequences of ``length + 20`` steps; X, Y (N, T + 20) ids.

    Input:  s₁ .. s₁₀, T - 1 blanks, the delimiter, 10 blanks.
    Target: T + 10 blanks, s₁ .. s₁₀.
    """
    rng = np.random.default_rng(seed)
    N, T, K = num_examples, length, COPY_LENGTH
    symbols = rng.integers(1, COPY_SYMBOLS + 1, (N, K))  # (N, 10): ids 1 .. 8
    X = np.full((N, T + 2 * K), BLANK, dtype=np.int64)  # (N, T + 20)
    X[:, :K] = symbols
    X[:, T + K - 1] = DELIMITER
    Y = np.full((N, T + 2 * K), BLANK, dtype=np.int64)  # (N, T + 20)
    Y[:, -K:] = symbols
    step_weights = np.zeros(T + 2 * K)  # (T + 20,): the loss reads the last ten steps
    step_weights[-K:] = 1.0
    return Task("copy", T, X, Y, step_weights, baseline=K * math.log(COPY_SYMBOLS) / (T + 2 * K))


@checked
def make_task(name: Annotated[str, Choice(TASKS)], num_examples: PositiveInt,
              length: PositiveInt, seed: Annotated[int, Seed()] = 0) -> Task:
    """``adding_problem`` or ``copy_task`` by name (what ``--task`` chooses)."""
    return (adding_problem if name == "adding" else copy_task)(num_examples, length, seed)
