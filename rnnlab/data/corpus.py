"""Corpora: d2l's *Time Machine* or any UTF-8 text as token ids (N,), with the
``Vocab`` built on the whole text."""

from __future__ import annotations

import numbers

import numpy as np

from rnnlab.errors import ConfigError, CorpusError

from .files import find_time_machine, read_text
from .text import TIME_MACHINE_NAMES, Tokenizer, Vocab


def _check_max_tokens(max_tokens) -> int:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
        raise ConfigError(f"max_tokens must be an int (<= 0 for all), got {max_tokens!r}")
    return int(max_tokens)


def _check_min_freq(min_freq) -> int:
    if isinstance(min_freq, bool) or not isinstance(min_freq, numbers.Integral) or min_freq < 0:
        raise ConfigError(f"min_freq must be a non-negative int, got {min_freq!r}")
    return int(min_freq)


def _vocab(tokens: list, min_freq: int, path, tokenizer: Tokenizer) -> Vocab:
    vocab = Vocab(tokens, min_freq=min_freq)
    if len(vocab) == 1:  # only <unk>: nothing to learn
        raise CorpusError(f"corpus {str(path)!r}: no {tokenizer.unit} occurs {min_freq} times "
                          f"or more (min_freq={min_freq}); lower it")
    return vocab


def _ids(tokens: list, vocab: Vocab) -> np.ndarray:
    """Token ids; a token below ``min_freq`` (so not in the vocabulary) is ``<unk>``, 0."""
    idx = vocab.token_to_idx
    return np.fromiter((idx.get(tok, 0) for tok in tokens), dtype=np.int64, count=len(tokens))  # (N,)


def load_corpus_time_machine(max_tokens: int = -1, data_dir=None, token: str = "char",
                             min_freq: int = 0) -> tuple[np.ndarray, Vocab]:
    """d2l's *Time Machine*: letters and spaces, lower case; characters (lines joined with
    no separator) or words. The vocabulary is built on the whole book (tokens seen fewer
    than ``min_freq`` times left out: they read as ``<unk>``), then the corpus is cut to
    ``max_tokens`` if > 0. Full book: 170,580 characters of 28 types, or 32,775 words of
    4,580 types (2,183 with ``min_freq=2``)."""
    max_tokens = _check_max_tokens(max_tokens)
    min_freq = _check_min_freq(min_freq)
    path = find_time_machine(data_dir)
    tokenizer = Tokenizer(token, time_machine=True)
    tokens = tokenizer.corpus_tokens(read_text(path))
    if not tokens:
        raise CorpusError(f"{str(path)!r} has no letters left after preprocessing")
    vocab = _vocab(tokens, min_freq, path, tokenizer)
    corpus = _ids(tokens, vocab)  # (N,)
    if max_tokens > 0:
        corpus = corpus[:max_tokens]  # (min(N, max_tokens),)
    return corpus, vocab


def load_corpus_text(path, max_tokens: int = -1, token: str = "char",
                     min_freq: int = 0) -> tuple[np.ndarray, Vocab]:
    """Any UTF-8 text, read as written (no filtering, no case folding): one token per
    character (newlines included) or per whitespace-separated word. Vocabulary on the
    whole text (tokens rarer than ``min_freq`` read as ``<unk>``), then cut to
    ``max_tokens``."""
    max_tokens = _check_max_tokens(max_tokens)
    min_freq = _check_min_freq(min_freq)
    tokenizer = Tokenizer(token)
    text = read_text(path)
    tokens = tokenizer.corpus_tokens(text)
    vocab = _vocab(tokens, min_freq, path, tokenizer)
    corpus = _ids(tokens, vocab)  # (N,)
    if max_tokens > 0:
        corpus = corpus[:max_tokens]  # (min(N, max_tokens),)
    return corpus, vocab


def load_corpus(name_or_path="timemachine", max_tokens: int = -1, data_dir=None,
                token: str = "char", min_freq: int = 0):
    """``"timemachine"`` (or ``"time_machine"``) for d2l's corpus, anything else is a
    path to a UTF-8 text file; ``token`` ``"char"`` or ``"word"`` (see ``Tokenizer``).
    Returns ``(corpus, vocab)``."""
    Tokenizer(token)  # an unknown token kind is refused before any file is read
    if isinstance(name_or_path, str) and name_or_path in TIME_MACHINE_NAMES:
        return load_corpus_time_machine(max_tokens, data_dir, token, min_freq)
    return load_corpus_text(name_or_path, max_tokens, token, min_freq)
