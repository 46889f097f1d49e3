"""Text corpora for character- and word-level language models, as in d2l chapter 8, in NumPy.

Reading and checking text files, d2l's preprocessing and tokenisation (``Tokenizer``:
characters or words, the same rule for the corpus and for a prefix), ``Vocab``, the
*Time Machine* corpus (local lookup, download, SHA-1 check, cache), d2l's random and
sequential partitioning into minibatches, and a train / validation split.

Every name below is importable from ``rnnlab.data``; each lives in one submodule:

- ``rnnlab.data.text``: text to tokens (``preprocess_time_machine``, ``tokenize``,
  ``Tokenizer``, ``tokenizer_for``, ``count_corpus``, ``Vocab``);
- ``rnnlab.data.files``: text files and the *Time Machine* file (``read_text``,
  ``download``, ``fsync_dir``, ``find_time_machine``, ``TIME_MACHINE_URL``,
  ``TIME_MACHINE_SHA1``, ``TIME_MACHINE_FILE``);
- ``rnnlab.data.corpus``: corpora as token ids with their ``Vocab`` (``load_corpus``,
  ``load_corpus_text``, ``load_corpus_time_machine``);
- ``rnnlab.data.batches``: minibatches and splits (``seq_data_iter_random``,
  ``seq_data_iter_sequential``, ``num_batches``, ``SeqDataLoader``,
  ``train_val_split``, ``split_after``).

A module-level setting is read by the submodule that holds it: to fetch the book from
another address, set ``rnnlab.data.files.TIME_MACHINE_URL``.

Shapes: N corpus length, B batch size, T time steps. Every iterator takes a
``numpy.random.Generator`` and touches no global random state.
"""

from __future__ import annotations

from . import batches, files, text
from .batches import (
    SeqDataLoader,
    num_batches,
    seq_data_iter_random,
    seq_data_iter_sequential,
    train_val_split,
)
from .corpus import load_corpus, load_corpus_text, load_corpus_time_machine
from .files import (
    TIME_MACHINE_FILE,
    TIME_MACHINE_SHA1,
    TIME_MACHINE_URL,
    download,
    find_time_machine,
    read_text,
)
from .text import (
    Tokenizer,
    Vocab,
    count_corpus,
    preprocess_time_machine,
    tokenize,
    tokenizer_for,
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

# importable from here too, though ``from rnnlab.data import *`` leaves them out
UNK, TOKEN_KINDS, TIME_MACHINE_NAMES = text.UNK, text.TOKEN_KINDS, text.TIME_MACHINE_NAMES
fsync_dir = files.fsync_dir
split_after = batches.split_after
