"""rnnlab's own exception types.

Every error rnnlab raises on bad input is one of these, with a message that names the
file, key, value or shape at fault. Each also derives from the built-in type a caller
would expect (``ValueError``, ``FileNotFoundError``...), so ``except ValueError`` keeps
working for code that does not know rnnlab.
"""

from __future__ import annotations


class RnnlabError(Exception):
    """Base class of every error rnnlab raises on purpose."""


class ConfigError(RnnlabError, ValueError):
    """An option or configuration value is out of range or unknown."""


class CorpusError(RnnlabError, ValueError):
    """A corpus file is missing, empty, unreadable, not UTF-8, or too short."""


class CorpusNotFoundError(CorpusError, FileNotFoundError):
    """A corpus file does not exist."""


class ChecksumError(CorpusError):
    """A downloaded or cached file does not have the expected SHA-1."""


class VocabError(RnnlabError, KeyError):
    """A token is not in the vocabulary, or two vocabularies disagree."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ShapeError(RnnlabError, ValueError):
    """An array has the wrong shape, dtype, or values (token ids out of range...)."""


class ParamError(ShapeError):
    """A parameter dict has a missing, extra, misshaped or non-finite array."""


class CheckpointError(RnnlabError, ValueError):
    """A checkpoint is truncated, edited, of another format version, or does not match."""


class NonFiniteError(RnnlabError, FloatingPointError):
    """A loss or gradient became NaN or infinite during training."""


class BackendError(RnnlabError, RuntimeError):
    """A backend or device was asked for that is unknown or not available."""
