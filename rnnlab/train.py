"""The backend-neutral training loop: d2l's ``train_epoch_ch8`` / ``train_ch8``.

Written against the Backend protocol only (``begin_state``, ``loss_and_grads``,
``clip_grads``, ``make_optimizer``), so it runs unchanged on NumPy or PyTorch.

Truncated BPTT. With sequential partitioning, row b of batch k+1 continues row b of
batch k, so the state is carried across batches; ``loss_and_grads`` returns it as a
fresh (detached) array, so no gradient crosses a batch boundary. With random sampling
the windows are unrelated and the state is re-initialised for every batch.

Every random draw derives from the seed: parameters from ``seed``, the partition of
epoch e from ``default_rng([seed, e])``, the dropout masks of batch i of epoch e from
``default_rng([seed, e, i, 1])`` (only when ``cfg.dropout > 0``; evaluation never
drops). Nothing else is random, so a run resumed from a checkpoint at the end of epoch
e repeats the uninterrupted run's numbers exactly.

Data-parallel (``parallel=``, a :class:`rnnlab.distributed.DataParallel`, started by
torchrun on the torch backend): every process draws the same whole batches and dropout
masks from the seed, trains its own block of B/N rows with the state of those rows, and
the backend all-reduces the gradients and the loss, so every number equals one process
training all B rows (docs/distributed.md).
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Callable, Sequence

import numpy as np

from .arguments import Callback, Instance, NonNegativeInt, PositiveInt, checked
from .backend import AnyBackend
from .checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_seed,
    check_sequence,
    is_number,
    refuse,
)
from .config import OPTIMIZERS, ModelConfig
from .data import TOKEN_KINDS, SeqDataLoader
from .data.batches import _as_corpus, _min_length
from .distributed import DataParallel, check_divisible, split_rows
from .dropout import dropout_masks, dropout_rng
from .errors import ConfigError, CorpusError, NonFiniteError, ParamError, ShapeError
from .params import validate_params
from .schedule import LR_SCHEDULES, lr_at, stopped_early, val_history
from .threads import ThreadTuner, check_threads, thread_tuner


@dataclass(frozen=True)
class TrainConfig:
    num_epochs: int = 500  # d2l ch. 8/9 train the scratch models for 500 epochs
    lr: float = 1.0  # d2l's learning rate for SGD on the scratch RNN/LSTM
    batch_size: int = 32  # B: rows of the partition, trained in parallel
    num_steps: int = 35  # T: the BPTT window; gradients stop at its edges
    max_tokens: int = 10_000  # d2l's load_data_time_machine(32, 35) keeps 10,000 tokens; -1: all
    use_random_iter: bool = False  # False: sequential, state carried; True: random, state reset
    clip_theta: float | None = 1.0  # d2l's grad_clipping(net, 1): global-norm threshold θ; None (or math.inf): no clipping
    optimizer: str = "sgd"  # "sgd" (d2l's sgd) | "adam", "adagrad" (torch.optim's) | "adagrad-minchar"
    seed: int = 0  # parameters, partition offsets and shuffles all derive from it
    val_fraction: float = 0.0  # the last part of the corpus held out for validation perplexity
    init: str = "auto"  # "d2l" N(0, 0.01²) | "torch" U(±1/√H) | "auto": d2l for 1 layer, torch if stacked
    threads: int | str = "auto"  # CPU threads; "auto": timed on the first steps (rnnlab.threads)
    lr_decay: float = 1.0  # char-rnn's -learning_rate_decay: lr x this per epoch (1: constant)
    lr_decay_after: int = 10  # char-rnn's -learning_rate_decay_after: first epoch that decays
    lr_schedule: str = "exp"  # "exp" (char-rnn's) | "step" (StepLR, every lr_decay_after) | "cosine"
    patience: int = 0  # stop when validation has not improved for this many epochs; 0: never
    token: str = "char"  # "char" (d2l ch. 8's models) | "word": d2l's tokenize(lines, "word")
    min_freq: int = 0  # d2l's Vocab(min_freq): rarer tokens are left out and read as <unk>
    val_every: int = 1  # validate after every N-th epoch and after the last (1: every epoch)

    def __post_init__(self) -> None:
        def put(name, value):  # normalised: NumPy scalars become Python numbers (JSON)
            object.__setattr__(self, name, value)

        for name in ("num_epochs", "batch_size", "num_steps"):
            put(name, check_int(name, getattr(self, name), lo=1))
        put("lr", check_number("lr", self.lr, lo=0, lo_open=True))
        put("max_tokens", check_int("max_tokens", self.max_tokens))
        put("use_random_iter", check_bool("use_random_iter", self.use_random_iter))
        if self.clip_theta is None or (is_number(self.clip_theta)
                                       and self.clip_theta == math.inf):
            put("clip_theta", None)  # no clipping; recorded as null in a checkpoint
        else:
            try:
                put("clip_theta", check_number("clip_theta", self.clip_theta, lo=0,
                                                 lo_open=True))
            except ConfigError:
                raise refuse("clip_theta", self.clip_theta, "a positive number, or None "
                               "(or math.inf) for no clipping") from None
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        put("seed", check_seed("seed", self.seed))
        put("val_fraction", check_number("val_fraction", self.val_fraction, lo=0, hi=1,
                                           hi_open=True))
        check_choice("init", self.init, ("auto", "d2l", "torch"))
        check_choice("token", self.token, TOKEN_KINDS)
        put("min_freq", check_int("min_freq", self.min_freq, lo=0))
        put("threads", check_threads(self.threads))
        put("lr_decay", check_number("lr_decay", self.lr_decay, lo=0, hi=1, lo_open=True))
        put("lr_decay_after", check_int("lr_decay_after", self.lr_decay_after, lo=0))
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.lr_schedule == "step" and self.lr_decay_after < 1:
            raise ConfigError("lr_schedule='step' drops the rate every lr_decay_after epochs; "
                              f"give lr_decay_after 1 or more, got {self.lr_decay_after}")
        if self.lr_schedule == "cosine" and self.lr_decay != 1.0:
            raise ConfigError(f"lr_decay={self.lr_decay:g} applies to the exp and step "
                              "schedules; lr_schedule='cosine' goes from the learning rate down "
                              "to 0 over num_epochs (leave lr_decay at 1)")
        put("patience", check_int("patience", self.patience, lo=0))
        put("val_every", check_int("val_every", self.val_every, lo=1))

    @property
    def theta(self) -> float:
        """The clipping threshold as a number: math.inf when clipping is off."""
        return math.inf if self.clip_theta is None else self.clip_theta

    def to_dict(self) -> dict:
        return asdict(self)


# What train() and evaluate() take, declared (rnnlab.arguments): refused before the loop
Model = Annotated[ModelConfig, Instance(ModelConfig, "a ModelConfig")]
Training = Annotated[TrainConfig, Instance(TrainConfig, "a TrainConfig",
                                           hint=" (rnnlab.TrainConfig(num_epochs=..., lr=...))")]
Tuner = Annotated[ThreadTuner | None, Instance(ThreadTuner, "a rnnlab.threads.ThreadTuner",
                                               optional=True, got="type")]
Parallel = Annotated[DataParallel | None, Instance(
    DataParallel, "the DataParallel of a torchrun process "
    "(rnnlab.torch_backend.distributed.connect())", optional=True, got="type")]
History = Annotated[Sequence, functools.partial(check_sequence, what="the earlier epochs' stats",
                                                error=ConfigError)]


def _optimizer(name: str, value):
    if value is None or callable(getattr(value, "step", None)):
        return value
    raise ConfigError(f"optimizer must be one made by backend.make_optimizer(...) or None, "
                      f"got {type(value).__name__}")


Optimizer = Annotated[Any, _optimizer]


@dataclass
class EpochStats:
    epoch: int  # 1-based: the number of epochs completed after this one
    train_ppl: float  # exp(mean cross-entropy over the epoch's tokens)
    tokens_per_s: float  # training tokens / wall seconds for the epoch
    seconds: float
    num_tokens: int
    grad_norm_mean: float  # mean global gradient norm before clipping
    grad_norm_max: float
    clipped_fraction: float  # share of batches whose norm exceeded θ
    val_ppl: float | None = None
    lr: float | None = None  # the learning rate of the epoch (rnnlab.schedule)

    def to_dict(self) -> dict:
        return asdict(self)


BatchCallback = Callable[[int, int, int, float, float], None]  # epoch, batch, batches, loss, norm


# The largest mean cross-entropy whose perplexity exp(loss) is a finite float64: ln(1.8e308).
# A model's loss starts near ln V (uniform predictions: 3.3 nats for d2l's 28 characters,
# 13.8 for a million tokens) and falls from there; a batch averaging more than 709 nats
# per token puts probability below 1e-308 on the average target, which no model that is
# learning does. Such a run has diverged (parameters thrown far out by a huge --lr) even
# though every number is still finite, and training stops as for a NaN (exit 3).
MAX_LOSS = math.log(sys.float_info.max)  # 709.78 nats


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy); inf rather than an OverflowError past e^709."""
    return math.exp(mean_loss) if mean_loss <= MAX_LOSS else float("inf")


def check_diverged(loss: float, where: str) -> None:
    """Stop on a NaN / inf loss, and on a finite one whose perplexity overflows."""
    if not math.isfinite(loss):
        raise NonFiniteError(f"loss became {loss} at {where}; try a smaller --lr or --clip")
    if loss > MAX_LOSS:
        raise NonFiniteError(
            f"the run diverged at {where}: the loss is {loss:.3g} nats per token, beyond "
            f"{MAX_LOSS:.2f}, where the perplexity exp(loss) overflows; try a smaller --lr or "
            "--clip")


def resolve_init(init: str, cfg: ModelConfig) -> str:
    """``auto`` follows d2l chapter by chapter: the scratch chapters (one layer) start
    from N(0, 0.01²); the deep-RNN chapter trains a stacked ``nn.LSTM`` from torch's
    U(±1/√H), without which SGD leaves the unigram plateau hundreds of epochs late."""
    if init == "auto":
        return "d2l" if cfg.num_layers == 1 else "torch"
    return init


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The partition's randomness for epoch ``epoch`` (0-based), derived, not carried."""
    return np.random.default_rng([seed, epoch])


def train_epoch(backend, cfg: ModelConfig, params: dict, optimizer, loader: SeqDataLoader,
                tcfg: TrainConfig, epoch: int, on_batch: BatchCallback | None = None,
                tuner: ThreadTuner | None = None,
                parallel: DataParallel | None = None) -> EpochStats:
    """One pass over the partition; returns perplexity, speed and gradient-norm stats.

    ``tuner`` (rnnlab.threads) is told each step's duration and may change the thread
    count between steps: the time of the step alone, not of ``on_batch``.
    With ``parallel`` this process trains its rows of every batch; ``backend`` (that
    run's) returns the whole batch's loss and gradient, so the stats are the whole run's.
    """
    total_loss, num_tokens, norms, clipped = 0.0, 0, [], 0
    state = None
    start = time.perf_counter()
    batches = list(loader.epoch(epoch_rng(tcfg.seed, epoch)))
    clock = time.perf_counter
    for i, (X, Y) in enumerate(batches):
        step_start = clock()
        B, tokens = X.shape[0], X.size  # the whole batch's B rows, T*B tokens
        if parallel is not None:  # the same B/N rows every batch: their state is ours
            X, Y = parallel.rows(X), parallel.rows(Y)  # (B/N, T)
        if state is None or tcfg.use_random_iter:
            state = backend.begin_state(cfg, X.shape[0])  # d2l: new state per random batch
        extra = {}
        if cfg.dropout > 0 and cfg.num_layers > 1:  # masks drawn per batch, from the seed
            masks = dropout_masks(cfg, X.shape[1], B,
                                  dropout_rng(tcfg.seed, epoch, i))  # (T, B, H*D) each
            if parallel is not None:  # our rows of the whole batch's masks
                masks = tuple(parallel.rows(m, axis=1) for m in masks)  # (T, B/N, H*D)
            extra["dropout_masks"] = masks
        try:
            loss, grads, state = backend.loss_and_grads(
                cfg, params, backend.tokens(X), backend.tokens(Y), state, **extra)  # detached
        except NonFiniteError as exc:  # a parameter went NaN / inf in the last update
            raise NonFiniteError(f"{exc} at epoch {epoch + 1}, batch {i + 1}; "
                                 "try a smaller --lr or --clip") from exc
        check_diverged(loss, f"epoch {epoch + 1}, batch {i + 1}")
        norm = backend.clip_grads(grads, tcfg.theta)
        if not math.isfinite(norm):
            raise NonFiniteError(f"gradient norm became {norm} at epoch {epoch + 1}, batch {i + 1}; "
                                 "try a smaller --lr or --clip")
        optimizer.step(grads)
        if tuner is not None:
            tuner.step_done(clock() - step_start)
        total_loss += loss * tokens
        num_tokens += tokens
        norms.append(norm)
        clipped += norm > tcfg.theta
        if on_batch is not None:
            on_batch(epoch, i, len(batches), loss, norm)
    # The last update may have overflowed a parameter, and no later loss would show it:
    # check before the epoch is reported (and checkpointed). One pass over the
    # parameters per epoch, far below one batch's cost.
    for name, value in backend.to_numpy(params).items():
        if not np.isfinite(value).all():
            raise NonFiniteError(f"parameter {name!r} became NaN or infinite in the update "
                                 f"at epoch {epoch + 1}, batch {len(batches)}; "
                                 "try a smaller --lr or --clip")
    seconds = time.perf_counter() - start
    return EpochStats(
        epoch=epoch + 1,
        train_ppl=perplexity(total_loss / num_tokens),
        tokens_per_s=num_tokens / seconds if seconds > 0 else float("inf"),
        seconds=seconds,
        num_tokens=num_tokens,
        grad_norm_mean=float(np.mean(norms)),
        grad_norm_max=float(np.max(norms)),
        clipped_fraction=clipped / len(norms),
    )


@checked
def evaluate(backend: AnyBackend, cfg: Model, params: dict, corpus: np.ndarray,
             batch_size: PositiveInt, num_steps: PositiveInt, parallel: Parallel = None) -> float:
    """Perplexity of held-out tokens: one sequential pass, state carried, no updates.

    The corpus is cut into ``rows = min(batch_size, (N-1) // num_steps)`` rows read in
    windows of ``num_steps``, so a short validation split still gives a number. With
    ``parallel`` each process reads its share of the rows (they need not divide evenly:
    nothing is averaged) and the summed cross-entropies and token counts are added up.
    """
    corpus = check_corpus_ids(corpus, cfg.vocab_size)  # (N,)
    rows = min(batch_size, (len(corpus) - 1) // num_steps)
    if rows < 1:
        raise CorpusError(f"validation split has {len(corpus)} tokens, fewer than "
                          f"num_steps + 1 = {num_steps + 1}; use a larger --val-fraction")
    n = ((len(corpus) - 1) // rows) * rows
    Xs = corpus[:n].reshape(rows, -1)  # (rows, n/rows)
    Ys = corpus[1:n + 1].reshape(rows, -1)  # (rows, n/rows): shifted by one
    windows = (Xs.shape[1] // num_steps) * num_steps
    if parallel is not None:  # this process's rows; a process may have none
        mine = split_rows(rows, parallel.rank, parallel.world_size)
        Xs, Ys = Xs[mine], Ys[mine]  # (rows/N, n/rows)
        if not len(Xs):
            windows = 0
    state = backend.begin_state(cfg, len(Xs)) if windows else None
    total, count = 0.0, 0
    for j in range(0, windows, num_steps):
        X, Y = Xs[:, j:j + num_steps], Ys[:, j:j + num_steps]  # (rows, T)
        logits, state = backend.forward(cfg, params, backend.tokens(X), state)
        logits = np.asarray(backend.to_numpy({"l": logits})["l"], dtype=np.float64)  # (T*rows, V)
        targets = Y.T.reshape(-1)  # (T*rows,): time-major like the logits
        m = logits.max(axis=1, keepdims=True)  # (T*rows, 1)
        lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))  # (T*rows,)
        total += float((lse - logits[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    if parallel is not None:
        total, count = parallel.sum([total, count])  # over every process's rows
    return perplexity(total / count)


def check_train_inputs(backend, cfg: ModelConfig, params, corpus, tcfg: TrainConfig,
                       val_corpus, parallel: DataParallel | None):
    """What ``train``'s arguments must be together: a model that reads left to right, the
    backend's own arrays, token ids of the model's vocabulary, enough of them for one
    batch, a validation corpus where ``patience`` needs one, the run's own backend with
    ``parallel``. Returns the corpora as id arrays."""
    if cfg.bidirectional:
        raise ConfigError(
            "a bidirectional model reads the future, so it cannot be trained as a language "
            "model of the next character; use it as an encoder or tagger (examples/)"
        )
    check_train_params(backend, cfg, params)
    corpus = check_corpus_ids(corpus, cfg.vocab_size)  # (N,)
    if val_corpus is not None:
        val_corpus = check_corpus_ids(val_corpus, cfg.vocab_size, "val_corpus")  # (N_val,)
    check_corpus_fits(len(corpus), tcfg)
    if tcfg.patience and (val_corpus is None or len(val_corpus) == 0):
        raise ConfigError(f"patience={tcfg.patience} stops on validation perplexity, but no "
                          "validation corpus was given")
    if parallel is not None:
        if getattr(backend, "parallel", None) is not parallel:
            raise ConfigError("train(parallel=...) needs that run's backend, "
                              "parallel.backend(...), whose gradients are averaged over the "
                              f"processes; got {backend!r}")
        check_divisible(tcfg.batch_size, parallel.world_size)
    return corpus, val_corpus


def check_train_params(backend, cfg: ModelConfig, params) -> None:
    """Names, shapes and one dtype (the values are checked step by step, so a NaN is
    reported with its epoch and batch), as the backend's own arrays: NumPy arrays handed
    to the torch backend are named, with the conversion to use."""
    validate_params(cfg, params, finite=False)
    numpy_arrays = all(isinstance(v, np.ndarray) for v in params.values())
    if numpy_arrays != (backend.name == "numpy"):
        kind = "NumPy arrays" if numpy_arrays else "not NumPy arrays"
        raise ParamError(f"params are {kind}, but the {backend.name} backend trains its own "
                         "arrays: pass backend.from_numpy(params)")


def check_corpus_ids(corpus, vocab_size: int, name: str = "corpus") -> np.ndarray:
    """A 1-D array of token ids in [0, vocab_size): what ``load_corpus`` returns."""
    corpus = _as_corpus(corpus, name)  # (N,)
    if len(corpus) and (corpus.min() < 0 or corpus.max() >= vocab_size):
        bad = corpus[(corpus < 0) | (corpus >= vocab_size)][0]
        raise ShapeError(f"{name} holds token id {bad}, outside the model's vocabulary "
                         f"[0, {vocab_size}): corpus and model come from different vocabularies")
    return corpus


def check_corpus_fits(corpus_len: int, tcfg: TrainConfig) -> None:
    need = _min_length(tcfg.batch_size, tcfg.num_steps, tcfg.use_random_iter)
    if corpus_len < need:
        raise CorpusError(
            f"training corpus has {corpus_len} tokens; batch_size={tcfg.batch_size} and "
            f"num_steps={tcfg.num_steps} need at least {need}"
        )


@checked
def train(backend: AnyBackend, cfg: Model, params: dict, corpus: np.ndarray, tcfg: Training,
          val_corpus: np.ndarray | None = None, start_epoch: NonNegativeInt = 0,
          optimizer: Optimizer = None, on_epoch: Callback = None, on_batch: Callback = None,
          tuner: Tuner = None, parallel: Parallel = None, past: History = ()) -> list[EpochStats]:
    """Train epochs ``start_epoch .. num_epochs-1`` in place on ``params`` (backend arrays).

    ``on_epoch`` sees each epoch's stats (perplexity, tokens/s, norms, validation
    perplexity when a validation corpus is given, after every ``tcfg.val_every``-th epoch
    and the last; None after the others); raising inside it stops training.
    The thread count follows ``tcfg.threads`` for the call and is restored after it;
    a ``tuner`` made by the caller (``with ThreadTuner(...) as tuner``) is used instead,
    so its choice carries over to what the caller runs next.
    ``parallel``: this process is one of a data-parallel run
    (``rnnlab.torch_backend.distributed.connect()``), ``backend`` is that run's
    (``parallel.backend(...)``); every process gets the same stats and parameters.

    Schedules (rnnlab.schedule) are functions of the epoch and the history, never of a
    counter: with ``tcfg.lr_decay`` < 1 (or ``tcfg.lr_schedule == "cosine"``) every epoch
    sets ``optimizer.lr`` to ``lr_at(...)`` of its own number; with ``tcfg.patience`` the
    run stops once validation has not improved for that many epochs (decided after each validation), counting ``past``, the
    stats (EpochStats or their dicts, as a checkpoint keeps them) of the epochs before
    ``start_epoch``. A resumed
    run therefore decays and stops where the uninterrupted one does. The history
    returned is shorter than ``num_epochs - start_epoch`` when it stopped early.
    """
    corpus, val_corpus = check_train_inputs(backend, cfg, params, corpus, tcfg, val_corpus,
                                            parallel)  # (N,), (N_val,) or None
    loader = SeqDataLoader(corpus, tcfg.batch_size, tcfg.num_steps, tcfg.use_random_iter)
    if optimizer is None:
        optimizer = backend.make_optimizer(tcfg.optimizer, params, tcfg.lr)
    own = tuner is None
    if own:
        tuner = thread_tuner(tcfg.threads, backend).__enter__()
    previous_probe = tuner.probe
    if previous_probe is None:
        tuner.probe = forward_probe(backend, cfg, params, corpus, tcfg.batch_size,
                                    tcfg.num_steps)
    try:
        return _train_epochs(backend, cfg, params, loader, tcfg, val_corpus, start_epoch,
                             optimizer, on_epoch, on_batch, tuner, parallel, past)
    finally:
        tuner.probe = previous_probe
        if own:
            tuner.__exit__(None, None, None)


def forward_probe(backend, cfg: ModelConfig, params: dict, corpus: np.ndarray,
                  batch_size: int, num_steps: int, steps: int = 4) -> Callable[[], object]:
    """A small piece of a training step for ``--threads auto`` to screen thread counts:
    the forward pass over ``steps`` time steps of a (B, steps) batch from zero states,
    the same matrix shapes as the step's forward. Reads the parameters, changes nothing."""
    k = min(steps, num_steps)
    X = backend.tokens(np.asarray(corpus[:batch_size * k]).reshape(batch_size, k))  # (B, k)
    state = backend.begin_state(cfg, batch_size)

    def probe():
        try:
            backend.forward(cfg, params, X, state)
        except NonFiniteError:  # the next step reports it, with its epoch and batch
            pass
    return probe


def validates(tcfg: TrainConfig, epoch: int) -> bool:
    """Whether epoch ``epoch`` (0-based) ends with a validation pass: every
    ``tcfg.val_every``-th epoch, and the last, so a run always ends with a number."""
    return (epoch + 1) % tcfg.val_every == 0 or epoch + 1 == tcfg.num_epochs


def _train_epochs(backend, cfg, params, loader, tcfg, val_corpus, start_epoch, optimizer,
                  on_epoch, on_batch, tuner, parallel=None, past=()) -> list[EpochStats]:
    history = []
    vals = val_history(past)  # the epochs before start_epoch: early stopping counts them
    if stopped_early(vals, tcfg.patience):
        return history  # this run already stopped
    for epoch in range(start_epoch, tcfg.num_epochs):
        if tcfg.lr_decay != 1.0 or tcfg.lr_schedule == "cosine":  # else the rate it was made with
            optimizer.lr = lr_at(tcfg.lr, epoch, tcfg.lr_decay, tcfg.lr_decay_after,
                                 tcfg.lr_schedule, tcfg.num_epochs)
        stats = train_epoch(backend, cfg, params, optimizer, loader, tcfg, epoch, on_batch,
                            tuner, parallel)
        stats.lr = optimizer.lr
        if val_corpus is not None and len(val_corpus) > 0 and validates(tcfg, epoch):
            stats.val_ppl = evaluate(backend, cfg, params, val_corpus, tcfg.batch_size,
                                     tcfg.num_steps, parallel)
            if not math.isfinite(stats.val_ppl):  # held-out loss past 709 nats: diverged
                raise NonFiniteError(
                    f"the run diverged at epoch {epoch + 1}: the validation perplexity is "
                    f"{stats.val_ppl} (a mean loss over {MAX_LOSS:.2f} nats per token); try a "
                    "smaller --lr or --clip")
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        vals.append(stats.val_ppl)
        if stopped_early(vals, tcfg.patience):  # decided after a validation only
            break
    return history
