"""rnnlab's own exception types.

Every error rnnlab raises on bad input is one of these, with a message that names the
file, key, value or shape at fault. Each also derives from the built-in type a caller
would expect (``ValueError``, ``FileNotFoundError``...), so ``except ValueError`` keeps
working for code that does not know rnnlab. ``docs/errors.md`` tables every bad input
with the type it raises and an example message; ``tests/test_bad_input.py`` holds one
test per row.

The ``rnnlab`` command maps them to exit statuses (:func:`exit_status`): 3 for a run stopped
by a NaN or infinite loss, gradient or parameter, 2 for every other rnnlab error (one
line on stderr), 130 for an interrupted run.

::

    RnnlabError
    ├── ConfigError (ValueError)          an option out of range or unknown
    ├── CorpusError (ValueError)          a corpus file empty, binary, not UTF-8, too short...
    │   ├── CorpusNotFoundError (FileNotFoundError)
    │   └── ChecksumError                 a download or cached file with the wrong SHA-1
    ├── VocabError (KeyError)             a token not in the vocabulary, vocabularies differ
    ├── ShapeError (ValueError)           an array of the wrong shape, dtype or values
    │   └── ParamError                    a parameter dict: missing, extra, misshaped array
    │       └── NonFiniteParamError       ... holding NaN or inf (also a NonFiniteError)
    ├── CheckpointError (ValueError)      truncated, edited, other version, mismatched
    ├── NonFiniteError (FloatingPointError)  the loss or gradient norm became NaN or inf
    ├── BackendError (RuntimeError)       an unknown backend or unavailable device
    ├── DistributedError (RuntimeError)   a data-parallel peer died, hung or never joined
    └── SubjectError (ValueError)         code given to ``rnnlab verify`` that does not fit its
                                          convention: missing, unimportable, wrong signature
        ├── NoConventionFitsError         a file given without a convention fits none of them
        └── MissingDependencyError        checking it needs PyTorch, which is not installed
"""

from __future__ import annotations

# How to install PyTorch, said alike by every message that asks for it and by the docs:
# its CPU build (about 200 MB). On Linux, pip's default torch from PyPI is a CUDA build of
# several GB; for a GPU, pytorch.org gives the command for your CUDA version.
TORCH_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


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


class NonFiniteParamError(ParamError, NonFiniteError):
    """A parameter or state array holds NaN or inf (found when the loss or logits were not
    finite). Both a ParamError (the input is bad) and a NonFiniteError (training reports
    it with the epoch and batch, and the CLI exits with status 3)."""


class SaveError(RnnlabError, OSError):
    """A file could not be written (a full disk, a read-only or vanished directory); the
    previous file of that name is kept unchanged. ``errno``, ``strerror`` and
    ``filename`` are the OS error's."""

    def __str__(self) -> str:  # OSError would print "[Errno 28] ..." instead of the message
        return str(self.args[0]) if self.args else ""


class BackendError(RnnlabError, RuntimeError):
    """A backend or device was asked for that is unknown or not available."""


class DistributedError(RnnlabError, RuntimeError):
    """Another process of a data-parallel run died, hung past the process group's
    timeout, or never joined: this process stops instead of waiting for ever."""


class SubjectError(RnnlabError, ValueError):
    """Code handed to ``rnnlab verify`` / ``assert_conforms`` does not fit its convention: the
    file or name is missing, it cannot be imported, or a signature is not the convention's.
    (Code that fits but computes the wrong numbers is a failed property, not an error.)"""


class NoConventionFitsError(SubjectError):
    """A file given without a convention fits none of them: ``tried`` is
    [(convention, why it does not fit)], one line each."""

    def __init__(self, line: str, tried: list):
        super().__init__(line)
        self.tried = list(tried)


class MissingDependencyError(SubjectError):
    """Checking this code needs a package that is not installed (PyTorch): not a misfit."""


EXIT_ERROR = 2  # any rnnlab error: bad input or option, one line on stderr
EXIT_NONFINITE = 3  # training stopped on a NaN / infinite loss, gradient or parameter
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


def exit_status(exc: BaseException) -> int:
    """The ``rnnlab`` command's exit status for an exception it caught."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, NonFiniteError):
        return EXIT_NONFINITE
    return EXIT_ERROR
