"""Text to tokens: d2l's preprocessing of *The Time Machine* and its tokenisation,
``Tokenizer`` (characters or words, the same rule for the corpus and for a prefix) and
``Vocab``."""

from __future__ import annotations

import collections
import dataclasses
import numbers
import re
from collections.abc import Sequence

import numpy as np

from ..checks import check_int
from ..errors import ConfigError, VocabError

UNK = "<unk>"
TIME_MACHINE_NAMES = ("timemachine", "time_machine")
TOKEN_KINDS = ("char", "word")
_TOKEN_KINDS = TOKEN_KINDS


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
    return Tokenizer(token, isinstance(corpus, str) and corpus in TIME_MACHINE_NAMES)


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
