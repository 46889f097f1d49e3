"""What a run of ``rnnlab train`` records in its checkpoint, and what ``--resume`` restores.

Every option of the command is registered here, in ``RUN_OPTIONS`` (or is an option of
one invocation, ``INVOCATION_OPTIONS``): the checkpoint records each one's value, and a
resume restores the options not given again, refuses one given with another value when
it changes the epochs already run, and names what an older checkpoint does not record.
The run's corpus is recorded by the SHA-256 of its tokens, so a resume finds the same
text under any path and refuses other text (``run_corpus``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import (
    TIME_MACHINE_NAMES as BUILTIN_CORPORA,  # the names --corpus reads as the book
)
from ..data import load_corpus
from ..errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class RunOption:
    """How a resume treats one option of ``rnnlab train``.

    Every option is recorded in the checkpoint (``extra["options"]``, by dest) and a
    resume restores the ones not given again. ``overridable=False``: the option changes
    the numbers of the epochs already run, so a value given again must equal the
    recorded one. ``overridable=True``: it only changes what happens from now on (how
    long, how often to save or print, on which backend), so a value given again
    replaces the recorded one.
    """

    flag: str  # the option as typed, "--hidden": messages name it
    recorded: tuple = ()  # where checkpoints without the options record keep it ("train.lr")
    overridable: bool = False  # see above
    legacy: tuple = ()  # (value,): what a checkpoint written before the option existed implies


# The registry of run options: every option of `rnnlab train` is here or in
# INVOCATION_OPTIONS (add_parser refuses to build a parser with one in neither). A new
# option is registered with one line; the resume, the checkpoint record and the
# conflict messages follow from it.
RUN_OPTIONS: dict[str, RunOption] = {
    # the model
    "cell": RunOption("--cell", ("model.cell",)),
    "hidden": RunOption("--hidden", ("model.num_hiddens",)),
    "num_layers": RunOption("--num-layers", ("model.num_layers",)),
    "gru_form": RunOption("--gru-form", ("model.gru_form",)),
    "dropout": RunOption("--dropout", ("model.dropout",)),
    # the training: what the numbers of every epoch depend on
    "lr": RunOption("--lr", ("train.lr",)),
    "lr_decay": RunOption("--lr-decay", ("train.lr_decay",), legacy=(1.0,)),
    "lr_decay_after": RunOption("--lr-decay-after", ("train.lr_decay_after",), legacy=(10,)),
    "lr_schedule": RunOption("--lr-schedule", ("train.lr_schedule",), legacy=("exp",)),
    "optimizer": RunOption("--optimizer", ("train.optimizer",)),
    "batch_size": RunOption("--batch-size", ("train.batch_size",)),
    "num_steps": RunOption("--num-steps", ("train.num_steps",)),
    "max_tokens": RunOption("--max-tokens", ("train.max_tokens",)),
    "random": RunOption("--random", ("train.use_random_iter",)),
    "clip": RunOption("--clip", ("train.clip_theta",)),
    "seed": RunOption("--seed", ("train.seed",)),
    "init": RunOption("--init", ("train.init",)),
    "val_fraction": RunOption("--val-fraction", ("train.val_fraction",)),
    # how often to measure, not what any epoch trains: a resume may change it
    "val_every": RunOption("--val-every", ("train.val_every",), overridable=True, legacy=(1,)),
    "token": RunOption("--token", ("train.token",), legacy=("char",)),
    "min_freq": RunOption("--min-freq", ("train.min_freq",), legacy=(0,)),
    "corpus": RunOption("--corpus", ("extra.corpus",)),
    "dtype": RunOption("--dtype", ("extra.dtype", "params.dtype")),
    # how long, and what is saved and shown: a resume may change them
    "epochs": RunOption("--epochs", ("train.num_epochs",), overridable=True),
    # when to stop, not what any epoch computes: raise it to go on after an early stop
    "patience": RunOption("--patience", ("train.patience",), overridable=True),
    "checkpoint_every": RunOption("--checkpoint-every", overridable=True),
    "sample_every": RunOption("--sample-every", overridable=True),
    "prefix": RunOption("--prefix", overridable=True),
    "num_preds": RunOption("--num-preds", overridable=True),
    "no_plot": RunOption("--no-plot", overridable=True),
    "no_progress": RunOption("--no-progress", overridable=True),
    "log_every": RunOption("--log-every", overridable=True),
    # where it runs: a run may move to the other backend or device
    "backend": RunOption("--backend", ("extra.backend",), overridable=True),
    "device": RunOption("--device", overridable=True),
    "impl": RunOption("--impl", overridable=True),
    "threads": RunOption("--threads", overridable=True),  # speed only: rnnlab.threads
    "dist_timeout": RunOption("--dist-timeout", overridable=True),  # torchrun only
}
# options of one invocation, not of the run: never recorded, never restored
INVOCATION_OPTIONS = {"out", "resume", "overwrite", "help"}
# the options of a memory-task run (rnnlab.cli.train_task): it writes no checkpoint, and a
# corpus run refuses them, so no checkpoint records or restores them
TASK_OPTIONS = {"task", "length", "truncate", "examples", "reach_every"}
_ACTIONS: dict = {}  # dest -> the parser's action: how a restored value is checked


def register_actions(parser) -> None:
    """Refuse a parser whose options are not all registered; keep each option's action."""
    dests = {a.dest for a in parser._actions}
    unregistered = sorted(dests - set(RUN_OPTIONS) - INVOCATION_OPTIONS - TASK_OPTIONS)
    if unregistered:
        raise RuntimeError(f"rnnlab train options {unregistered} are in none of RUN_OPTIONS, "
                           "INVOCATION_OPTIONS and TASK_OPTIONS (rnnlab/cli/run_record.py)")
    stale = sorted(set(RUN_OPTIONS) - dests)
    if stale:
        raise RuntimeError(f"RUN_OPTIONS lists {stale}, which rnnlab train does not have")
    # copies: explicit_options() suppresses the defaults of the actions of its own parser
    _ACTIONS.update({a.dest: copy.copy(a) for a in parser._actions if a.dest in RUN_OPTIONS})


def run_options_record(args) -> dict:
    """Every run option's value, for the checkpoint (``extra["options"]``). A corpus file
    is recorded by its absolute path, so a resume from another directory finds it."""
    record = {dest: getattr(args, dest) for dest in RUN_OPTIONS}
    if record["corpus"] not in BUILTIN_CORPORA:
        record["corpus"] = str(Path(record["corpus"]).resolve())
    return record


_MISSING = object()


def _recorded(ckpt, dest: str):
    """The run's value of ``dest``: from the options record, else from where older
    checkpoints keep it (``RunOption.recorded``), else _MISSING."""
    options = ckpt.extra.get("options")
    if isinstance(options, dict) and dest in options:
        return options[dest]
    for path in RUN_OPTIONS[dest].recorded:
        section, _, key = path.partition(".")
        if section == "params":  # the parameters' dtype
            return str(next(iter(ckpt.params.values())).dtype)
        where = ckpt.model.to_dict() if section == "model" else getattr(ckpt, section)
        if isinstance(where, dict) and key in where:
            return where[key]
    if RUN_OPTIONS[dest].legacy:
        return RUN_OPTIONS[dest].legacy[0]
    return _MISSING


def _checked(dest: str, value, where) -> object:
    """A restored value as the option's parser would give it, or a CheckpointError: a
    checkpoint's metadata is data, never trusted to have the right type."""
    action = _ACTIONS[dest]
    flag = RUN_OPTIONS[dest].flag
    ok, parsed = False, value
    if action.nargs == 0:  # a flag: store_true / store_false
        ok = isinstance(value, bool)
    elif value is None:  # an option whose value may be None (--prefix, --clip none)
        ok = action.default is None or _parses_to_none(action)
    elif action.choices is not None:
        ok = isinstance(value, str) and value in action.choices
    elif action.type is None:
        ok = isinstance(value, str)
    elif not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            parsed = action.type(str(value))
            ok = parsed == value and (isinstance(value, str) or not isinstance(parsed, str))
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            ok = False
    if not ok:
        raise CheckpointError(f"{where}: the recorded {flag} is {value!r}, which is not a valid "
                              f"value of {flag}; the checkpoint was edited or written by other "
                              "code")
    return parsed


def _parses_to_none(action) -> bool:
    try:
        return action.type is not None and action.type("none") is None
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return False


def _same(option: str, given, recorded) -> bool:
    if option == "--corpus":  # a file is the run's corpus when its text is: checked by
        # its SHA-256 once read (run_corpus), wherever it lies and however it is named
        return (given in BUILTIN_CORPORA) == (str(recorded) in BUILTIN_CORPORA)
    if given is None or recorded is None:
        return given is recorded
    if isinstance(given, float) or isinstance(recorded, float):
        return float(given) == float(recorded)
    return given == recorded


def adopt_run_options(args, ckpt, where) -> None:
    """--resume: restore every run option not given from the checkpoint; refuse a run
    option given with another value, and one the checkpoint does not record and the
    command line does not give (a ConfigError naming them all)."""
    explicit = getattr(args, "explicit", set())
    conflicts, missing = [], []
    for dest, opt in RUN_OPTIONS.items():
        recorded = _recorded(ckpt, dest)
        if recorded is _MISSING:
            if not opt.overridable and dest not in explicit:
                fields = " or ".join(opt.recorded) or f"extra.options.{dest}"
                missing.append(f"{opt.flag} (no {fields})")
            continue  # given, or an overridable option: the command line's value
        recorded = _checked(dest, recorded, where)
        if dest not in explicit:
            setattr(args, dest, recorded)
        elif not opt.overridable and not _same(opt.flag, getattr(args, dest), recorded):
            given = getattr(args, dest)
            shown = opt.flag if isinstance(given, bool) else f"{opt.flag} {given}"
            conflicts.append(f"{shown} (the checkpoint has {recorded})")
    if conflicts:
        raise ConfigError(
            f"cannot resume {where}: {'; '.join(conflicts)}. Leave these options out to "
            "continue with the checkpoint's values, or train a new run with another --out")
    if missing:
        raise ConfigError(
            f"cannot resume {where}: the checkpoint does not record {', '.join(missing)}; "
            "give these options with the run's values")
    if "backend" in explicit and args.backend == "numpy":
        # a run moved to the numpy backend leaves its torch-only options behind
        for dest, default in (("impl", "scratch"), ("device", None)):
            if dest not in explicit:
                setattr(args, dest, default)


def corpus_digest(tokens) -> str:
    """SHA-256 of a corpus's token ids (with the vocabulary, the text itself)."""
    return hashlib.sha256(np.asarray(tokens).astype("<i8").tobytes()).hexdigest()


def _near_the_run(candidates: list, out: Path, ckpt_path: Path) -> list:
    """The corpus files a resume without --corpus may open: the book, or a file under the
    current directory or the run's project folder (the one above the run directory's
    parent, where the search looks). A checkpoint names its corpus as data: a path it
    records elsewhere (one crafted to say /etc/passwd) is not opened, not even to be
    hashed, unless the user names it with --corpus."""
    bases = [Path.cwd().resolve(), out.resolve().parent.parent]

    def inside(c) -> bool:
        try:
            where = Path(c).resolve()
        except (OSError, RuntimeError):  # a symbolic link loop
            return False
        return any(where.is_relative_to(b) for b in bases)

    near = [c for c in candidates if c in BUILTIN_CORPORA or inside(c)]
    if not near:
        raise ConfigError(
            f"cannot resume {ckpt_path}: its corpus {candidates[0]} lies outside this folder "
            f"and the run's ({bases[1]}), and a resume opens no file there that you did not "
            f"name; give --corpus {candidates[0]} (or a copy of its text) to resume on it")
    return near


def run_corpus(args, ckpt, ckpt_path: Path, out: Path):
    """The corpus of this run: (tokens, vocab, SHA-256). A resume accepts any file whose
    text is the run's (the checkpoint keeps its tokens' SHA-256), so a run can be resumed
    from another directory or with the file moved or renamed; other text is refused.
    Without --corpus, a recorded path that no longer exists is looked for beside the run
    directory and the directories above it, under its recorded relative path or name."""
    want = ckpt.extra.get("corpus_sha256") if ckpt is not None else None
    candidates = [args.corpus]
    if (ckpt is not None and "corpus" not in getattr(args, "explicit", set())
            and args.corpus not in BUILTIN_CORPORA and not Path(args.corpus).is_file()):
        typed = Path(str(ckpt.extra.get("corpus", args.corpus)))  # as given when it started
        names = [p for p in (Path(args.corpus), typed, Path(typed.name)) if not p.is_absolute()]
        rec = Path(args.corpus)
        bases = [Path.cwd(), out, out.parent, out.parent.parent]
        candidates += [str(b / n) for b in bases for n in names if (b / n).is_file()]
        if len(candidates) == 1:
            raise ConfigError(
                f"cannot resume {ckpt_path}: its corpus {args.corpus} is not there any more "
                f"(nor as {rec.name} beside {out} or above it); give --corpus PATH to a file "
                "with the same text, which is recognised by its SHA-256")
        candidates = candidates[1:]
    if ckpt is not None and "corpus" not in getattr(args, "explicit", set()):
        candidates = _near_the_run(candidates, out, ckpt_path)
    for path in dict.fromkeys(candidates):
        full, vocab = load_corpus(path, -1, token=args.token, min_freq=args.min_freq)
        digest = corpus_digest(full)
        # the token ids and the vocabulary: the same text (ids alone match for any text
        # with the same pattern of characters)
        if want is None or (digest == want and vocab == ckpt.vocab):
            if path != args.corpus:
                print(f"reading the run's corpus from {path}", flush=True)
                args.corpus = path
            return full, vocab, digest
    recorded = str((ckpt.extra.get("options") or {}).get("corpus") or ckpt.extra.get("corpus"))
    if args.corpus in BUILTIN_CORPORA or Path(args.corpus).resolve() == Path(recorded).resolve():
        raise ConfigError(f"cannot resume {ckpt_path}: --corpus {args.corpus} has changed since "
                          "the checkpoint was saved (its tokens have another SHA-256); restore "
                          "the original text, or train a new run with another --out")
    raise ConfigError(
        f"cannot resume {ckpt_path}: --corpus {args.corpus} is not the text the run was trained "
        f"on ({recorded}): its tokens have another SHA-256; give the run's text (from any "
        "path), or train a new run with another --out")
