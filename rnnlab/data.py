"""Text corpora for character- and word-level language models, as in d2l chapter 8, in NumPy.

Reading and checking text files, d2l's preprocessing and tokenisation (``Tokenizer``:
characters or words, the same rule for the corpus and for a prefix), ``Vocab``, the
*Time Machine* corpus (local lookup, download, SHA-1 check, cache), d2l's random and
sequential partitioning into minibatches, and a train / validation split.

Shapes: N corpus length, B batch size, T time steps. Every iterator takes a
``numpy.random.Generator`` and touches no global random state.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import numbers
import os
import pathlib
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

import numpy as np

from rnnlab.errors import (
    ChecksumError,
    ConfigError,
    CorpusError,
    CorpusNotFoundError,
    ShapeError,
    VocabError,
)

__all__ = [
    "TIME_MACHINE_URL",
    "TIME_MACHINE_SHA1",
    "TIME_MACHINE_FILE",
    "preprocess_time_machine",
    "tokenize",
    "Tokenizer",
    "tokenizer_for",
    "count_corpus",
    "Vocab",
    "find_time_machine",
    "download",
    "read_text",
    "load_corpus_time_machine",
    "load_corpus_text",
    "load_corpus",
    "seq_data_iter_random",
    "seq_data_iter_sequential",
    "num_batches",
    "SeqDataLoader",
    "train_val_split",
]

TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
TIME_MACHINE_FILE = "timemachine.txt"

UNK = "<unk>"
_TIME_MACHINE_NAMES = ("timemachine", "time_machine")
TOKEN_KINDS = ("char", "word")
_TOKEN_KINDS = TOKEN_KINDS
_CHUNK = 1 << 16  # bytes per read when hashing or downloading


# --------------------------------------------------------------------------- text to tokens


def preprocess_time_machine(text: str) -> list[str]:
    r"""d2l's ``read_time_machine`` on a string: per line, non-letters to one space, strip,
    lower case. Empty lines stay as ``""``. Lines end at ``\n``, ``\r\n`` or ``\r``, as a
    file's ``readlines()`` sees them (``str.splitlines`` would also cut at ``\f``...)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[-1] == "":  # a final newline ends the last line, it does not start one
        lines.pop()
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in lines]


def tokenize(lines: Sequence[str], token: str = "char") -> list[list[str]]:
    """Split each line into characters (``token="char"``) or words (``"word"``)."""
    if not isinstance(token, str):
        raise ConfigError(f"token must be 'char' or 'word', got {type(token).__name__}")
    if isinstance(lines, str) or not isinstance(lines, Sequence) or not all(
            isinstance(line, str) for line in lines):
        raise ConfigError(f"lines must be a list of strings (d2l's read_time_machine()), got "
                          f"{type(lines).__name__}" + ("" if isinstance(lines, str) or not
                                                       isinstance(lines, Sequence) else
                                                       " holding other values"))
    if token == "char":
        return [list(line) for line in lines]
    if token == "word":
        return [line.split() for line in lines]
    raise ConfigError(f"unknown token kind {token!r}; choose one of {list(_TOKEN_KINDS)}")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """How a text becomes tokens, and tokens text again: one rule for the corpus, the
    prefix of a generation, and the generated text.

    ``token="char"``: every character is a token; ``"word"``: d2l's ``tokenize(lines,
    "word")``, the words between whitespace. ``time_machine=True`` first applies d2l's
    ``read_time_machine`` (per line: non-letters to a space, lower case); the lines are
    then joined with no separator for characters, as d2l does, and split into words for
    words. Any other text is read as written: characters exactly (newlines included),
    words as ``str.split()`` cuts them (punctuation stays on its word).
    """

    token: str = "char"  # "char" (d2l chapter 8's default) | "word"
    time_machine: bool = False  # d2l's preprocessing of The Time Machine: letters, lower case

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or self.token not in TOKEN_KINDS:
            raise ConfigError(f"unknown token kind {self.token!r}; choose one of {list(TOKEN_KINDS)}")

    def corpus_tokens(self, text: str) -> list[str]:
        """The tokens of a whole corpus file, in order."""
        if self.time_machine:
            lines = tokenize(preprocess_time_machine(text), self.token)
            return [tok for line in lines for tok in line]  # d2l: lines joined, no separator
        return list(text) if self.token == "char" else text.split()

    def prefix_tokens(self, prefix: str) -> list[str]:
        """The tokens of a prefix. Characters are taken exactly as typed (a character
        the corpus never had is an error that says so); words are cut as the corpus's
        were, after the same preprocessing (so 'The Time' is 'the', 'time' on the book)."""
        if self.token == "char":
            return list(prefix)
        if self.time_machine:
            return [w for line in preprocess_time_machine(prefix) for w in line.split()]
        return prefix.split()

    def join(self, tokens: Sequence[str]) -> str:
        """Text of a token sequence: characters as they are, words with one space."""
        return ("" if self.token == "char" else " ").join(tokens)

    @property
    def unit(self) -> str:
        """'character' or 'word', for messages."""
        return "character" if self.token == "char" else "word"


def tokenizer_for(corpus, token: str = "char") -> Tokenizer:
    """The tokenizer of a corpus given by name (``"timemachine"``) or path."""
    return Tokenizer(token, isinstance(corpus, str) and corpus in _TIME_MACHINE_NAMES)


def count_corpus(tokens: Sequence) -> collections.Counter:
    """Token frequencies of a flat list of tokens or of a list of token lists."""
    if len(tokens) == 0 or isinstance(tokens[0], list):
        tokens = [tok for line in tokens for tok in line]
    return collections.Counter(tokens)


class Vocab:
    """Token <-> index map: ``<unk>`` at 0, then ``reserved_tokens``, then the tokens with
    frequency >= ``min_freq`` by descending frequency, ties in first-seen order (d2l)."""

    def __init__(
        self,
        tokens: Sequence | None = None,
        min_freq: int = 0,
        reserved_tokens: Sequence[str] | None = None,
    ) -> None:
        from .validate import check_int

        tokens = [] if tokens is None else tokens
        if not isinstance(tokens, (list, tuple, str)):
            raise VocabError(f"tokens must be a list of token strings (or of lists of them, "
                             f"one per line), got {type(tokens).__name__}")
        min_freq = check_int("min_freq", min_freq, lo=0)
        if reserved_tokens is not None and not isinstance(reserved_tokens, (list, tuple)):
            raise VocabError(f"reserved_tokens must be a list of strings, got "
                             f"{type(reserved_tokens).__name__}")
        reserved = [] if reserved_tokens is None else list(reserved_tokens)
        seen = {UNK}
        for tok in reserved:
            if not isinstance(tok, str):
                raise VocabError(f"reserved token {tok!r} ({type(tok).__name__}) is not a "
                                 "string")
            if tok in seen:
                raise VocabError(
                    f"reserved token {tok!r} is {UNK!r} or repeated in reserved_tokens={reserved!r}"
                )
            seen.add(tok)
        try:
            counter = count_corpus(tokens)
        except TypeError as exc:  # an unhashable token: a list nested too deep, a dict...
            raise VocabError(f"tokens must be strings, or lists of strings (one per line): "
                             f"{exc}") from None
        for tok in counter:  # a checkpoint stores tokens as JSON strings
            if not isinstance(tok, str):
                raise VocabError(f"token {tok!r} ({type(tok).__name__}) is not a string; a "
                                 "vocabulary maps string tokens (characters or words)")
        # sorted() is stable, also with reverse=True: equal counts keep first-seen order
        self._token_freqs = sorted(counter.items(), key=lambda kv: kv[1], reverse=True)
        self.idx_to_token: list = [UNK] + reserved
        self.token_to_idx: dict = {tok: idx for idx, tok in enumerate(self.idx_to_token)}
        for tok, freq in self._token_freqs:
            if freq < min_freq:
                break
            if tok not in self.token_to_idx:
                self.idx_to_token.append(tok)
                self.token_to_idx[tok] = len(self.idx_to_token) - 1

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        """Index of a token, or list of indices of a list/tuple; unknown tokens give 0."""
        if not isinstance(tokens, (list, tuple)):
            if not isinstance(tokens, str):  # a dict or an array would be unhashable or wrong
                raise VocabError(f"vocab[...] takes a token string or a list of them, got "
                                 f"{type(tokens).__name__}")
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(tok) for tok in tokens]

    def lookup_strict(self, tokens):
        """Like ``vocab[tokens]`` but an unknown token raises ``VocabError`` naming it."""
        if not isinstance(tokens, (list, tuple)):
            if tokens not in self.token_to_idx:
                raise VocabError(f"token {tokens!r} is not in the vocabulary ({len(self)} tokens)")
            return self.token_to_idx[tokens]
        out = []
        for pos, tok in enumerate(tokens):
            if tok not in self.token_to_idx:
                raise VocabError(
                    f"token {tok!r} at position {pos} is not in the vocabulary ({len(self)} tokens)"
                )
            out.append(self.token_to_idx[tok])
        return out

    def to_tokens(self, indices):
        """Token of an index, or list of tokens of a list/tuple/1-D array of indices."""
        if isinstance(indices, np.ndarray):
            indices = indices.tolist()
        if not isinstance(indices, (list, tuple)):
            return self.idx_to_token[self._check_index(indices)]
        return [self.idx_to_token[self._check_index(i)] for i in indices]

    def _check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise VocabError(f"token index {index!r} is not an integer")
        if not 0 <= index < len(self.idx_to_token):
            raise VocabError(
                f"token index {index} is out of range for a vocabulary of {len(self)} tokens"
            )
        return int(index)

    @property
    def unk(self) -> int:
        """Index of ``<unk>``: 0."""
        return 0

    @property
    def token_freqs(self) -> list[tuple]:
        """(token, count) of every counted token, by descending count (empty after
        ``from_list``)."""
        return self._token_freqs

    def to_list(self) -> list:
        """``idx_to_token``, a copy: all ``from_list`` needs to rebuild this vocabulary."""
        return list(self.idx_to_token)

    @classmethod
    def from_list(cls, idx_to_token: Sequence[str]) -> Vocab:
        """Rebuild a vocabulary from ``to_list()``: distinct strings, ``<unk>`` first."""
        if not isinstance(idx_to_token, (list, tuple)):
            raise VocabError(
                f"a vocabulary list must be a list of str, got {type(idx_to_token).__name__}"
            )
        items = list(idx_to_token)
        if not items or items[0] != UNK:
            first = items[0] if items else "nothing (empty list)"
            raise VocabError(f"a vocabulary list must start with {UNK!r}, got {first!r}")
        seen: dict = {}
        for idx, tok in enumerate(items):
            if not isinstance(tok, str):
                raise VocabError(
                    f"vocabulary entry {idx} is {tok!r} of type {type(tok).__name__}, not str"
                )
            if tok in seen:
                raise VocabError(f"vocabulary entry {idx} {tok!r} repeats entry {seen[tok]}")
            seen[tok] = idx
        vocab = cls.__new__(cls)
        vocab._token_freqs = []
        vocab.idx_to_token = items
        vocab.token_to_idx = seen
        return vocab

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.idx_to_token == other.idx_to_token

    __hash__ = None  # mutable, compared by value

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab({len(self)} tokens: [{head}{more}])"


# --------------------------------------------------------------------------- files


def read_text(path) -> str:
    """Contents of a UTF-8 text file, without a leading byte-order mark (U+FEFF);
    ``CorpusError`` naming the path if the file is missing, a directory, a pipe or
    device, unreadable, binary (NUL bytes), not UTF-8, or blank."""
    if isinstance(path, str) and not path.strip():  # Path("") would be ".", a directory
        raise CorpusError(f"corpus path is {path!r}, an empty name: give a UTF-8 text file, or "
                          "'timemachine' for d2l's corpus")
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"corpus path must be a str or os.PathLike, got {type(path).__name__}")
    path = pathlib.Path(path)
    name = repr(str(path))
    if path.exists() and not path.is_file() and not path.is_dir():
        # a pipe would block and /dev/zero never end: refuse before reading
        raise CorpusError(f"corpus path {name} is not a regular file (a device, pipe or socket)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusNotFoundError(f"corpus file {name} does not exist") from None
    except OSError as e:
        if path.is_dir():  # IsADirectoryError on POSIX, PermissionError on Windows
            raise CorpusError(f"corpus path {name} is a directory, not a text file") from None
        if isinstance(e, PermissionError):
            raise CorpusError(f"corpus file {name} is not readable: {e.strerror}") from None
        raise CorpusError(f"cannot read corpus file {name}: {e}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"corpus file {name} looks binary: it has a NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"corpus file {name} is not valid UTF-8: byte {data[e.start]:#04x} "
            f"at offset {e.start} ({e.reason})"
        ) from None
    if text.startswith("\ufeff"):  # a byte-order mark (Notepad writes one): not a character
        text = text[1:]
    if not text.strip():
        what = "empty" if not text else f"whitespace only ({len(data)} bytes)"
        raise CorpusError(f"corpus file {name} is {what}")
    return text


def _sha1(path: pathlib.Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/rnnlab``, or ``~/.cache/rnnlab``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache"
    return base / "rnnlab"


def download(url: str, dest, sha1: str, timeout: float = 60) -> pathlib.Path:
    """Fetch ``url`` to ``dest`` atomically: write a temporary file beside ``dest``, check
    its SHA-1, fsync, ``os.replace``. On any failure no file is left behind."""
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = pathlib.Path(tmp_name)
    try:
        h = hashlib.sha1()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise CorpusError(f"could not download {url!r} to {str(dest)!r}: {e}") from e
            actual = h.hexdigest()
            if actual != sha1:
                raise ChecksumError(
                    f"download of {url!r} has SHA-1 {actual}, expected {sha1}; not saved"
                )
            out.flush()
            os.fsync(out.fileno())  # the bytes reach the disk before the name does
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest


def fsync_dir(directory) -> None:
    """Make a rename in ``directory`` durable (POSIX): fsync the directory itself.

    Some file systems (and Windows) cannot fsync a directory; skipping is harmless there.
    """
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _download_time_machine(cache: pathlib.Path) -> pathlib.Path:
    return download(TIME_MACHINE_URL, cache / TIME_MACHINE_FILE, TIME_MACHINE_SHA1)


def find_time_machine(data_dir=None, download: bool = True) -> pathlib.Path:
    """Path of a verified ``timemachine.txt``: looked up in ``data_dir`` (or, if not given,
    ``$RNNLAB_DATA``), then in the user cache; else downloaded into the cache.

    ``data_dir`` / ``RNNLAB_DATA`` is the folder that holds ``timemachine.txt``; the path
    of the file itself (under any name) is accepted too. Whatever is found must have d2l's
    SHA-1."""
    fetch = download  # the parameter hides the function of that name
    given, origin = None, ""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)) or data_dir == "":
            raise ConfigError(f"data_dir must be a folder path (str or pathlib.Path) or None, "
                              f"got {data_dir!r}")
        given, origin = pathlib.Path(data_dir), "data_dir"
    elif os.environ.get("RNNLAB_DATA"):
        given, origin = pathlib.Path(os.environ["RNNLAB_DATA"]), "RNNLAB_DATA"
    cache = _cache_dir()
    candidates: list[pathlib.Path] = []
    if given is not None:
        candidates.append(given if given.is_file() else given / TIME_MACHINE_FILE)
    candidates.append(cache / TIME_MACHINE_FILE)
    for path in candidates:
        if path.is_file():
            actual = _sha1(path)
            if actual != TIME_MACHINE_SHA1:
                raise ChecksumError(
                    f"{str(path)!r} has SHA-1 {actual}, expected {TIME_MACHINE_SHA1}; "
                    f"delete it or replace it with the file from {TIME_MACHINE_URL}"
                )
            return path
    looked = ", ".join(repr(str(p)) for p in candidates)
    note = ""
    if given is not None and not given.exists():
        note = f" ({origin}={str(given)!r} does not exist)"
    elif given is not None:
        note = f" ({origin}={str(given)!r} is a folder without {TIME_MACHINE_FILE})"
    recipe = (f"{TIME_MACHINE_FILE} not found; looked in {looked}{note}. Offline, copy "
              f"{TIME_MACHINE_FILE} into {str(cache)!r}, or set RNNLAB_DATA to the folder that "
              "holds it (or to the file itself)")
    if not fetch:
        raise CorpusNotFoundError(f"{recipe}; download=False")
    try:
        return _download_time_machine(cache)
    except ChecksumError:
        raise
    except CorpusError as e:
        raise CorpusNotFoundError(f"{recipe}; the download failed too: {e}") from e


# --------------------------------------------------------------------------- corpora


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
    if isinstance(name_or_path, str) and name_or_path in _TIME_MACHINE_NAMES:
        return load_corpus_time_machine(max_tokens, data_dir, token, min_freq)
    return load_corpus_text(name_or_path, max_tokens, token, min_freq)


# --------------------------------------------------------------------------- minibatches


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
        from .validate import check_bool

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
