"""Minibatches: d2l's random and sequential partitioning of a corpus into (B, T)
batches, ``SeqDataLoader``, and a train / validation split.

Shapes: N corpus length, B batch size, T time steps. Every iterator takes a
``numpy.random.Generator`` and touches no global random state.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

import numpy as np

from ..checks import check_bool
from ..errors import ConfigError, CorpusError, ShapeError
from .corpus import _check_max_tokens


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _as_corpus(corpus, name: str = "corpus") -> np.ndarray:
    if corpus is None or isinstance(corpus, (str, bytes)):
        raise ShapeError(f"{name} must be a 1-D array of token ids (vocab[tokens]), got "
                         f"{type(corpus).__name__}")
    try:
        arr = np.asarray(corpus)
    except (ValueError, TypeError) as exc:  # ragged lists: "inhomogeneous shape ..."
        raise ShapeError(f"{name} must be a 1-D array of token ids, got a "
                         f"{type(corpus).__name__} NumPy cannot read as one: {exc}") from None
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ShapeError(
            f"{name} must be a 1-D array of token ids, got shape {arr.shape} dtype {arr.dtype}"
        )
    return arr.astype(np.int64, copy=False)  # (N,)


def num_batches(corpus_len: int, batch_size: int, num_steps: int, random: bool, offset: int) -> int:
    """Batches d2l's random (``random=True``) or sequential iterator yields for a given
    start ``offset``."""
    if random:
        return (corpus_len - offset - 1) // num_steps // batch_size
    return (corpus_len - offset - 1) // batch_size // num_steps


def _min_length(batch_size: int, num_steps: int, random: bool) -> int:
    """Shortest corpus with at least one batch for every offset the iterator may draw.

    random: offset <= T-1 and needs (N - offset - 1) // T >= B, so N >= (B + 1) T.
    sequential: offset <= T and needs (N - offset - 1) // B >= T, so N >= (B + 1) T + 1.
    """
    return (batch_size + 1) * num_steps + (0 if random else 1)


def _check_batching(corpus, batch_size, num_steps, random: bool):
    corpus = _as_corpus(corpus)
    batch_size = _check_positive_int("batch_size", batch_size)
    num_steps = _check_positive_int("num_steps", num_steps)
    need = _min_length(batch_size, num_steps, random)
    if len(corpus) < need:
        kind = "random" if random else "sequential"
        raise CorpusError(
            f"corpus of {len(corpus)} tokens is too short for batch_size={batch_size}, "
            f"num_steps={num_steps}: {kind} partitioning needs at least {need} tokens"
        )
    return corpus, batch_size, num_steps


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def seq_data_iter_random(corpus, batch_size: int, num_steps: int, rng) -> Iterator:
    """d2l's random sampling: drop a random 0..T-1 prefix, cut the rest into
    non-overlapping length-T subsequences, shuffle them, and yield ``(X, Y)`` of shape
    (B, T), ``Y`` being ``X`` one token later. Adjacent batches are not contiguous."""
    corpus, batch_size, num_steps = _check_batching(corpus, batch_size, num_steps, True)
    rng = _check_rng(rng)
    offset = int(rng.integers(0, num_steps))  # d2l: random.randint(0, num_steps - 1)
    corpus = corpus[offset:]  # (N - offset,)
    num_subseqs = (len(corpus) - 1) // num_steps  # -1: the last Y needs one token more
    initial_indices = rng.permutation(np.arange(0, num_subseqs * num_steps, num_steps))  # (S,)
    n_batches = num_subseqs // batch_size
    steps = np.arange(num_steps)  # (T,)

    def batches():
        for i in range(0, batch_size * n_batches, batch_size):
            starts = initial_indices[i : i + batch_size]  # (B,)
            pos = starts[:, None] + steps  # (B, T)
            yield corpus[pos], corpus[pos + 1]  # (B, T), (B, T)

    return batches()


def seq_data_iter_sequential(corpus, batch_size: int, num_steps: int, rng) -> Iterator:
    """d2l's sequential partitioning: drop a random 0..T prefix, lay the rest out as B
    rows, and yield column windows ``(X, Y)`` of shape (B, T), so row b of batch k+1
    continues row b of batch k (state can be carried across batches)."""
    corpus, batch_size, num_steps = _check_batching(corpus, batch_size, num_steps, False)
    rng = _check_rng(rng)
    offset = int(rng.integers(0, num_steps + 1))  # d2l: random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset : offset + num_tokens].reshape(batch_size, -1)  # (B, N')
    Ys = corpus[offset + 1 : offset + 1 + num_tokens].reshape(batch_size, -1)  # (B, N')
    n_batches = Xs.shape[1] // num_steps

    def batches():
        for i in range(0, num_steps * n_batches, num_steps):
            yield Xs[:, i : i + num_steps].copy(), Ys[:, i : i + num_steps].copy()  # (B, T)

    return batches()


class SeqDataLoader:
    """A corpus with its batch shape and sampling scheme. Stateless: each call to
    ``epoch(rng)`` draws a fresh offset (and order) from the given generator."""

    def __init__(self, corpus, batch_size: int, num_steps: int, use_random_iter: bool) -> None:
        self.use_random_iter = check_bool("use_random_iter", use_random_iter)
        self.corpus, self.batch_size, self.num_steps = _check_batching(
            corpus, batch_size, num_steps, self.use_random_iter
        )
        # batches at offset 0, the most any epoch yields; a drawn offset may give one fewer
        self.max_batches = num_batches(
            len(self.corpus), self.batch_size, self.num_steps, self.use_random_iter, 0
        )

    def epoch(self, rng: np.random.Generator) -> Iterator:
        """Iterator over one epoch of ``(X, Y)`` batches, each (B, T) int64."""
        it = seq_data_iter_random if self.use_random_iter else seq_data_iter_sequential
        return it(self.corpus, self.batch_size, self.num_steps, rng)

    def __repr__(self) -> str:
        kind = "random" if self.use_random_iter else "sequential"
        return (
            f"SeqDataLoader({len(self.corpus)} tokens, batch_size={self.batch_size}, "
            f"num_steps={self.num_steps}, {kind}, max_batches={self.max_batches})"
        )


def train_val_split(corpus, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split off the last ``floor(N * val_fraction)`` tokens as validation
    (0 <= val_fraction < 1). Returns views ``(train, val)``."""
    corpus = _as_corpus(corpus)
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not math.isfinite(val_fraction)
        or not 0 <= val_fraction < 1
    ):
        raise ConfigError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    n_val = int(math.floor(len(corpus) * val_fraction))
    cut = len(corpus) - n_val
    return corpus[:cut], corpus[cut:]  # (N - n_val,), (n_val,)


def split_after(full, max_tokens: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training = the first N = ``max_tokens`` tokens (all if <= 0), validation =
    ``floor(N * val_fraction)`` tokens that follow them when the corpus goes on that far,
    else the last ``floor(N * val_fraction)`` of the N (``train_val_split``).

    So d2l's run (the first 10,000 tokens of the book) trains on exactly d2l's tokens
    and validates on the 1,000 after them, never on text it trained on. Returns views.
    """
    full = _as_corpus(full)
    max_tokens = _check_max_tokens(max_tokens)
    n = len(full) if max_tokens <= 0 else min(max_tokens, len(full))
    _, held = train_val_split(full[:n], val_fraction)  # validates val_fraction
    n_val = len(held)
    if n_val and n + n_val <= len(full):
        return full[:n], full[n:n + n_val]  # (N,), (n_val,)
    return train_val_split(full[:n], val_fraction)  # (N - n_val,), (n_val,)
