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
import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from .arguments import Callback, Choice, Instance, Int, PositiveInt, Seed, checked
from .backend import AnyBackend
from .config import ModelConfig, replace_checked
from .errors import ConfigError, NonFiniteError
from .numpy_backend.functional import softmax_cross_entropy, squared_error
from .train import Model, Training, check_diverged, epoch_rng

TASKS = ("adding", "copy")
COPY_SYMBOLS = 8  # the symbols to remember are ids 1 .. 8
COPY_LENGTH = 10  # how many of them
BLANK, DELIMITER = 0, COPY_SYMBOLS + 1  # id 0: nothing to read or write; id 9: "now copy"
COPY_VOCAB = COPY_SYMBOLS + 2  # blank, the eight symbols, the delimiter


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
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


# ------------------------------------------------------------------------------ training

AnyTask = Annotated[Task, Instance(Task, "a Task", hint=" (rnnlab.tasks.make_task(...))")]


def _steps_back(name: str, value) -> int | None:  # truncate: None (full BPTT) or k >= 1
    return None if value is None else Int(lo=1)(name, value)


def check_task_model(cfg: ModelConfig, task: Task) -> None:
    """The model reads the task's inputs and writes its targets."""
    want = task.model_config(cfg.cell, cfg.num_hiddens)
    got = (cfg.vocab_size, cfg.input_size, cfg.head)
    if got != (want.vocab_size, want.input_size, want.head):
        raise ConfigError(
            f"the {task.name} task needs a model with (vocab_size, input_size, head) = "
            f"{(want.vocab_size, want.input_size, want.head)}, got {got}; make it with "
            "task.model_config(cell, num_hiddens)")


@checked
def task_loss(backend: AnyBackend, cfg: Model, params: dict, task: AnyTask,
              batch_size: PositiveInt = 256) -> float:
    """The task's loss on all its examples, from a zero state (the number its baseline
    is stated in): the mean of the per-batch losses, weighted by their rows."""
    check_task_model(cfg, task)
    total, rows = 0.0, 0
    for start in range(0, len(task.X), batch_size):
        X, Y = task.X[start:start + batch_size], task.Y[start:start + batch_size]
        B = len(X)
        logits, _ = backend.forward(cfg, params, X, backend.begin_state(cfg, B))
        logits = np.asarray(backend.to_numpy({"logits": logits})["logits"], np.float64)
        targets = Y.T.reshape(-1)  # (T*B,): time-major, as the logits' rows
        loss_fn = squared_error if cfg.head == "mse" else softmax_cross_entropy
        total += loss_fn(logits, targets, task.weights(B))[0] * B
        rows += B
    return total / rows


@dataclass
class TaskEpoch:
    epoch: int  # 1-based
    loss: float  # mean training loss over the epoch's batches
    test_loss: float  # task_loss on the held-out examples (the training ones if none)
    grad_norm_mean: float  # mean global gradient norm before clipping
    seconds: float


@checked
def train_task(backend: AnyBackend, cfg: Model, params: dict, task: AnyTask, tcfg: Training,
               test: Annotated[Task | None, Instance(Task, "a Task", optional=True)] = None,
               truncate: Annotated[int | None, _steps_back] = None,
               on_epoch: Callback = None) -> list[TaskEpoch]:
    """Train ``params`` in place on a memory task; one :class:`TaskEpoch` per epoch.

    Every batch starts from a zero state (the examples are independent sequences) and
    reads the loss where the task's answer is (``task.weights``). ``truncate`` k stops
    each step's gradient k steps back (``loss_and_grads(truncate=k)``). From ``tcfg``:
    ``num_epochs``, ``batch_size``, ``lr``, ``optimizer``, ``clip_theta`` and ``seed``
    (the order of the examples in epoch e derives from it, as ``train``'s partition).
    """
    check_task_model(cfg, task)
    B = tcfg.batch_size
    if len(task.X) < B:
        raise ConfigError(f"the {task.name} task has {len(task.X)} examples, fewer than "
                          f"batch_size={B}; make more examples or use a smaller batch")
    optimizer = backend.make_optimizer(tcfg.optimizer, params, tcfg.lr)
    weights = task.weights(B)  # (T*B,)
    cut = {} if truncate is None else {"truncate": truncate}  # a backend without it: full BPTT only
    history = []
    for epoch in range(tcfg.num_epochs):
        start, losses, norms = time.perf_counter(), [], []
        for i, (X, Y) in enumerate(task.batches(B, epoch_rng(tcfg.seed, epoch))):
            loss, grads, _ = backend.loss_and_grads(cfg, params, X, Y, backend.begin_state(cfg, B),
                                                    weights=weights, **cut)
            where = f"epoch {epoch + 1}, batch {i + 1}"
            if cfg.head == "softmax":
                check_diverged(loss, where)  # NaN, inf, or a perplexity that overflows
            elif not math.isfinite(loss):  # a squared error has no perplexity to overflow
                raise NonFiniteError(f"loss became {loss} at {where}; try a smaller --lr or --clip")
            norms.append(backend.clip_grads(grads, tcfg.theta))
            if not math.isfinite(norms[-1]):
                raise NonFiniteError(f"gradient norm became {norms[-1]} at epoch {epoch + 1}, "
                                     f"batch {i + 1}; try a smaller --lr or --clip")
            optimizer.step(grads)
            losses.append(loss)
        stats = TaskEpoch(epoch + 1, float(np.mean(losses)),
                          task_loss(backend, cfg, params, test if test is not None else task),
                          float(np.mean(norms)), time.perf_counter() - start)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history
