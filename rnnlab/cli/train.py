"""``rnnlab train``: d2l's ``train_ch8`` as a command, with checkpoints, resume and plots."""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import CELLS, GRU_FORMS, OPTIMIZERS, ModelConfig
from ..data import TOKEN_KINDS
from ..checkpoint import BEST_NAME
from ..errors import (EXIT_NONFINITE, CheckpointError, ConfigError, CorpusError, NonFiniteError,
                      SaveError)
from ..schedule import best_epoch, stopped_early, val_history
from .common import (add_backend_options, add_threads_option, check_backend_options,
                     check_run_dir, clip_threshold, decay_factor, describe_choice, fraction,
                     make_backend, nonneg_int, one_line, positive_float, positive_int)
from .progress import RunProgress, printable
from .signals import Terminated, describe, interrupt_status, say


def add_parser(sub) -> None:
    """Register ``rnnlab train`` on the subcommand parsers ``sub``."""
    t = sub.add_parser("train", help="train a character-level model and save a checkpoint",
                       description="Train on The Time Machine (default) or any UTF-8 text file, "
                                   "with a progress bar, training and validation perplexity "
                                   "and tokens/s per epoch; saves a checkpoint, perplexity.png "
                                   "and grad_norm.png in --out, and prints a sample. Defaults "
                                   "are d2l's. Ctrl-C keeps the last checkpoint: run the same "
                                   "command with --resume to continue. Started by torchrun "
                                   "(--backend torch), the processes train data-parallel: "
                                   "torchrun --nproc-per-node 2 -m rnnlab train --backend torch "
                                   "...")
    t.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    t.add_argument("--hidden", type=positive_int, default=256, help="hidden units H (default 256)")
    t.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    t.add_argument("--gru-form", choices=GRU_FORMS, default="d2l",
                   help="GRU reset gate: d2l (R*H)@W_hh, or torch R*(H@W_hh+b_hn) (default d2l)")
    t.add_argument("--dropout", type=fraction, default=0.0,
                   help="dropout between stacked layers (needs --num-layers 2 or more), "
                        "training only (default 0)")
    t.add_argument("--epochs", type=positive_int, default=500,
                   help="total epochs of the run (default 500, as d2l)")
    t.add_argument("--lr", type=positive_float, default=1.0, help="learning rate (default 1)")
    t.add_argument("--lr-decay", type=decay_factor, default=1.0,
                   help="multiply the learning rate by this after every epoch from "
                        "--lr-decay-after on, as char-rnn's -learning_rate_decay (e.g. 0.97; "
                        "default 1: constant, as d2l)")
    t.add_argument("--lr-decay-after", type=nonneg_int, default=10,
                   help="the first epoch whose end decays the learning rate, as char-rnn's "
                        "-learning_rate_decay_after (default 10)")
    t.add_argument("--patience", type=nonneg_int, default=0,
                   help="stop when the validation perplexity has not improved for N epochs "
                        "(best.safetensors keeps the best epoch); 0: never (default)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="sgd (d2l's sgd, default); adam or adagrad (torch.optim's rules); "
                        "adagrad-minchar (min-char-rnn's: g/sqrt(s+1e-8), every gradient entry "
                        "clipped to [-5, 5])")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size B (default 32)")
    t.add_argument("--num-steps", type=positive_int, default=35,
                   help="BPTT window T: steps per batch, gradients truncated at its edges (default 35)")
    t.add_argument("--max-tokens", type=int, default=10_000,
                   help="train on the first N tokens of the corpus; -1 for all (default 10000, "
                        "as d2l)")
    t.add_argument("--random", action="store_true",
                   help="random partitioning (state reset every batch) instead of sequential "
                        "(state carried, gradients truncated)")
    t.add_argument("--clip", type=clip_threshold, default=1.0,
                   help="global gradient-norm clipping threshold theta (default 1, as d2l); "
                        "'none' to train without clipping")
    t.add_argument("--seed", type=nonneg_int, default=0, help="seed for parameters and batching (default 0)")
    t.add_argument("--init", choices=("auto", "d2l", "torch"), default="auto",
                   help="initial weights: d2l N(0, 0.01^2) with zero biases; torch U(+-1/sqrt(H)) "
                        "as torch.nn; auto (default): d2l for one layer, torch for stacked layers "
                        "(d2l's deep-RNN chapter), which otherwise stall at the unigram perplexity")
    t.add_argument("--corpus", default="timemachine",
                   help="'timemachine' (found in $RNNLAB_DATA, the cache, or downloaded) or a "
                        "path to any UTF-8 text file, read character by character")
    t.add_argument("--token", choices=TOKEN_KINDS, default="char",
                   help="what a token is: char (every character, d2l's default) or word (d2l's "
                        "tokenize(lines, 'word'): the words between whitespace, after d2l's "
                        "preprocessing on the time machine) (default char)")
    t.add_argument("--min-freq", type=nonneg_int, default=0,
                   help="leave tokens seen fewer than N times in the corpus out of the "
                        "vocabulary; they read as <unk>, which is never generated (d2l's "
                        "Vocab(min_freq); default 0: keep every token)")
    t.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="validation perplexity on floor(N * f) held-out tokens, N the training "
                        "tokens: the ones right after the first N when the corpus goes on (so "
                        "d2l's 10,000 stay the training set), else the last part of the "
                        "corpus; 0 for none (default 0.1)")
    t.add_argument("--val-every", type=positive_int, default=1,
                   help="validate after every N-th epoch and after the last (default 1: every "
                        "epoch). On d2l's sizes a validation pass costs 4-5%% of an epoch; "
                        "the best checkpoint and --patience see the validated epochs")
    t.add_argument("--out", default=None,
                   help="run directory for checkpoint.safetensors, perplexity.png and "
                        "grad_norm.png (default runs/<cell>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out from its last checkpoint: options "
                        "left out are taken from it, options given must match it (--epochs "
                        "may be raised to train longer); the numbers equal an uninterrupted run")
    t.add_argument("--overwrite", action="store_true",
                   help="start a new run even if --out already holds a checkpoint (it is "
                        "replaced at the first save)")
    t.add_argument("--checkpoint-every", type=nonneg_int, default=10,
                   help="save a checkpoint every N epochs, and always at the end; 0: at the "
                        "end only (default 10). The plots are redrawn with a checkpoint while "
                        "drawing them takes under 1%% of the run, and always at the end")
    t.add_argument("--sample-every", type=nonneg_int, default=0,
                   help="print a greedy sample every N epochs (default 0: only at the end)")
    t.add_argument("--prefix", default=None,
                   help="prefix for samples, recorded in the checkpoint for rnnlab generate "
                        "(default 'time traveller' on the time machine, else the corpus's "
                        "most frequent token)")
    t.add_argument("--num-preds", type=nonneg_int, default=50,
                   help="tokens per sample: characters, or words with --token word (default 50)")
    t.add_argument("--no-plot", action="store_true",
                   help="do not write perplexity.png and grad_norm.png (they need matplotlib)")
    t.add_argument("--plot", dest="no_plot", action="store_false",
                   help="write the plots (the default; with --resume, undoes the run's --no-plot)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal)")
    t.add_argument("--progress", dest="no_progress", action="store_false",
                   help="show the progress bar on a terminal (the default; with --resume, "
                        "undoes the run's --no-progress)")
    t.add_argument("--log-every", type=positive_int, default=1,
                   help="print the epoch line every N epochs (default 1)")
    add_backend_options(t)
    add_threads_option(t)
    t.add_argument("--dist-timeout", type=positive_float, default=600.0,
                   help="under torchrun: seconds a process waits for the others at each "
                        "exchange before it stops with an error (default 600)")
    _register_actions(t)
    t.set_defaults(func=cmd_train)


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
_ACTIONS: dict = {}  # dest -> the parser's action: how a restored value is checked


def _register_actions(parser) -> None:
    """Refuse a parser whose options are not all registered; keep each option's action."""
    dests = {a.dest for a in parser._actions}
    unregistered = sorted(dests - set(RUN_OPTIONS) - INVOCATION_OPTIONS)
    if unregistered:
        raise RuntimeError(f"rnnlab train options {unregistered} are in neither RUN_OPTIONS "
                           "nor INVOCATION_OPTIONS (rnnlab/cli/train.py)")
    stale = sorted(set(RUN_OPTIONS) - dests)
    if stale:
        raise RuntimeError(f"RUN_OPTIONS lists {stale}, which rnnlab train does not have")
    # copies: explicit_options() suppresses the defaults of the actions of its own parser
    _ACTIONS.update({a.dest: copy.copy(a) for a in parser._actions if a.dest in RUN_OPTIONS})


def run_options_record(args) -> dict:
    """Every run option's value, for the checkpoint (``extra["options"]``). A corpus file
    is recorded by its absolute path, so a resume from another directory finds it."""
    record = {dest: getattr(args, dest) for dest in RUN_OPTIONS}
    if record["corpus"] not in ("timemachine", "time_machine"):
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


BUILTIN_CORPORA = ("timemachine", "time_machine")


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


def run_corpus(args, ckpt, ckpt_path: Path, out: Path):
    """The corpus of this run: (tokens, vocab, SHA-256). A resume accepts any file whose
    text is the run's (the checkpoint keeps its tokens' SHA-256), so a run can be resumed
    from another directory or with the file moved or renamed; other text is refused.
    Without --corpus, a recorded path that no longer exists is looked for beside the run
    directory and the directories above it, under its recorded relative path or name."""
    from ..data import load_corpus

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


def why_stopped(history: list) -> str:
    """Why early stopping ended a run, from its history."""
    vals = val_history(history)
    at = best_epoch(vals)
    return (f"the validation perplexity has not improved for {len(vals) - at} epochs (best "
            f"{vals[at - 1]:.3f} at epoch {at}, kept in {BEST_NAME})")


def saved_epoch(ckpt_path: Path, default: int) -> int:
    """The epoch of the checkpoint on disk: a stop that lands just after a save's rename,
    before the run has noted it, must not name the one before."""
    from ..checkpoint import load_checkpoint
    from ..errors import RnnlabError

    try:
        return load_checkpoint(ckpt_path).epoch
    except (RnnlabError, OSError):
        return default


def processes(n: int) -> str:
    return "" if n == 1 else f" x {n} processes"


class PlotClock:
    """When the plots of a checkpoint are redrawn: while drawing them has taken at most
    ``share`` of the run's wall time (drawing two PNGs with matplotlib takes about half a
    second, several epochs of d2l's model), so on a long run they follow the checkpoints
    and on a short one they wait; the caller always draws them at the end."""

    def __init__(self, share: float = 0.01, first_guess_s: float = 0.5):
        self.share = share  # at most 1% of the wall time goes to drawing
        self.start = time.perf_counter()
        self.spent = 0.0  # seconds spent drawing so far
        self.last = first_guess_s  # the last drawing's seconds (a guess before the first)

    def due(self) -> bool:
        elapsed = time.perf_counter() - self.start
        return self.spent + self.last <= self.share * elapsed

    @contextlib.contextmanager
    def drawing(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.last = time.perf_counter() - t0
            self.spent += self.last


def cmd_train(args) -> int:
    from ..distributed import launch_env

    launch = launch_env()  # None unless torchrun started this process
    if launch is None:
        return run_train(args, None)
    return run_data_parallel(args, launch)


def check_launch_options(args, launch) -> None:
    """Under torchrun: what cannot train data-parallel is refused by every process alike,
    before any of them waits for the others (rank 0 says it; the others exit quietly)."""
    from ..distributed import check_divisible

    if args.backend != "torch" and "backend" in getattr(args, "explicit", set()):
        raise ConfigError(
            f"the {args.backend} backend trains in one process: it is rnnlab's executable "
            "specification, single-process by design; train data-parallel under torchrun with "
            "--backend torch, or run rnnlab train without torchrun")
    if args.device not in (None, "auto", "cpu", "cuda"):
        raise ConfigError(f"--device {args.device}: under torchrun every process trains on its "
                          "own GPU, cuda:LOCAL_RANK; pass --device cuda (choose the GPUs with "
                          "CUDA_VISIBLE_DEVICES) or --device cpu")
    if not args.resume or "batch_size" in getattr(args, "explicit", set()):
        check_divisible(args.batch_size, launch.world_size, "--batch-size")
    # Where a torchrun process trains is decided now, by the launch, not by a resumed
    # checkpoint: the torch backend (left out, it is not numpy's default here), the device
    # given (its process group is formed before the checkpoint is read), this timeout.
    args.backend = "torch"
    args.explicit = set(getattr(args, "explicit", set())) | {"backend", "device", "dist_timeout"}


def run_data_parallel(args, launch) -> int:
    """One of torchrun's processes: join the others, train this process's rows, leave.

    Rank 0 alone prints, draws the progress bar, plots, holds the run directory's lock
    and writes checkpoints; the others' standard output goes nowhere. A failure in any
    process's set-up stops all of them with rank 0's one line (``DataParallel.agree``)."""
    import contextlib
    import os

    from ..errors import DistributedError

    check_launch_options(args, launch)  # before torch is imported: numpy needs none
    from ..torch_backend.distributed import connect

    dp = connect(args.device, timeout=args.dist_timeout, launch=launch)
    try:
        with contextlib.ExitStack() as stack:
            if not dp.is_main:
                args.no_progress = True
                stack.enter_context(contextlib.redirect_stdout(
                    stack.enter_context(open(os.devnull, "w"))))
            try:
                return run_train(args, dp)
            except Exception as exc:
                if not dp.agreed and not isinstance(exc, DistributedError):
                    dp.agree(exc)  # this failure stops every process, not this one alone
                raise
    finally:
        dp.close()


def run_train(args, dp) -> int:
    """``rnnlab train``; ``dp``: this process's DataParallel under torchrun, else None."""
    from ..checkpoint import CHECKPOINT_NAME, read_checkpoint_bytes
    from ..memory import retain_freed_memory
    from ..runlock import RunLock

    if args.resume and args.overwrite:  # which one was meant? the run is not guessed away
        raise ConfigError("--resume continues the run in --out, and --overwrite starts a new "
                          "one in its place: give one of them")
    retain_freed_memory()  # reuse freed arrays step after step, no page faults (rnnlab.memory)
    out = Path(args.out or f"runs/{args.cell}")
    ckpt_path = out / CHECKPOINT_NAME
    # one writer per run directory, from before the checkpoint is read until the end: a
    # second run, or a --resume of a run still training, is refused (rnnlab.runlock).
    # Data-parallel: rank 0 alone owns --out (it may be on its machine's disk only), takes
    # the lock, reads the checkpoint and sends it to the others.
    lock = RunLock(out)

    def open_run():  # the checkpoint's bytes to resume from, or None for a new run
        if args.resume and not ckpt_path.exists():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path} (train without "
                              "--resume first, or point --out at the run's directory)")
        check_run_dir(out)  # fail now, not at the first checkpoint after hours of training
        lock.acquire()
        if args.resume:
            return read_checkpoint_bytes(ckpt_path)
        if ckpt_path.exists() and not args.overwrite:
            raise ConfigError(f"{ckpt_path} already holds a run: add --resume to continue it, "
                              "--overwrite to start again in its place, or choose another --out")
        return None

    try:
        data = open_run() if dp is None else dp.share(open_run)
        return _train_locked(args, out, ckpt_path, data, dp)
    finally:
        lock.release()


def _train_locked(args, out: Path, ckpt_path: Path, data: bytes | None, dp) -> int:
    from ..checkpoint import Checkpoint, check_resume, decode_checkpoint, rng_metadata, save_checkpoint
    from ..data import split_after, tokenizer_for
    from ..distributed import check_divisible
    from ..generate import check_num_preds, predict, prefix_ids
    from ..memory import check_training_fits
    from ..runs import default_prefix
    from ..params import init_params
    from ..threads import thread_tuner
    from ..train import TrainConfig, check_corpus_fits, resolve_init, train

    is_main = dp is None or dp.is_main  # prints, plots and writes checkpoints
    ckpt = None if data is None else decode_checkpoint(data, ckpt_path)
    if ckpt is not None:
        adopt_run_options(args, ckpt, ckpt_path)
    world_size = 1 if dp is None else dp.world_size
    if dp is not None:
        check_divisible(args.batch_size, world_size, "--batch-size")
    full, vocab, corpus_sha256 = run_corpus(args, ckpt, ckpt_path, out)
    tokenizer = tokenizer_for(args.corpus, args.token)
    # training: the first --max-tokens tokens (d2l's 10,000); validation: the tokens after
    # them, or the last part of those tokens when the corpus ends there
    train_corpus, val_corpus = split_after(full, args.max_tokens, args.val_fraction)
    tcfg = TrainConfig(num_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       num_steps=args.num_steps, max_tokens=args.max_tokens,
                       use_random_iter=args.random, clip_theta=args.clip,
                       optimizer=args.optimizer, seed=args.seed, val_fraction=args.val_fraction,
                       init=args.init, threads=args.threads, token=args.token,
                       min_freq=args.min_freq, lr_decay=args.lr_decay,
                       lr_decay_after=args.lr_decay_after, patience=args.patience,
                       val_every=args.val_every)
    cfg = ModelConfig(args.cell, len(vocab), args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, dropout=args.dropout)
    try:  # fail now, naming the corpus, not inside train()
        check_corpus_fits(len(train_corpus), tcfg)
    except CorpusError as exc:
        raise CorpusError(f"--corpus {args.corpus}: {exc}") from None
    if tcfg.patience and not len(val_corpus):
        raise ConfigError(f"--patience {tcfg.patience} stops on the validation perplexity, and "
                          f"--val-fraction {args.val_fraction} leaves no validation tokens; "
                          "give --val-fraction above 0")
    if len(val_corpus) and len(val_corpus) < tcfg.num_steps + 1:
        raise CorpusError(f"--val-fraction {args.val_fraction} leaves {len(val_corpus)} "
                          f"validation tokens, fewer than --num-steps + 1 = {tcfg.num_steps + 1}; "
                          "raise it, or 0 for no validation")
    check_backend_options(args.backend, args.impl, args.device, cfg.cell, cfg.gru_form)
    be = make_backend(args) if dp is None else dp.backend(args.device, args.dtype, args.impl)
    if str(getattr(be, "device", "cpu")).startswith("cpu"):  # a GPU's own memory: torch says
        # at once; here a model too big for RAM is refused with the number, not allocated
        check_training_fits(cfg, tcfg.batch_size, tcfg.num_steps, args.backend, tcfg.optimizer,
                            args.dtype, args.impl)
    check_num_preds(args.num_preds)  # the samples' text must fit too
    prefix = args.prefix if args.prefix is not None else default_prefix(args.corpus, vocab,
                                                                        tokenizer)
    unknown = prefix_ids(prefix, vocab, tokenizer).unknown  # fail now, not after 500 epochs
    if unknown and is_main:
        print(f"note: --prefix words not in the vocabulary, read as <unk>: {', '.join(unknown)}",
              file=sys.stderr, flush=True)
    if dp is not None:
        dp.agree(None)  # every process is ready, or all stop with the first one's error

    def sample(text: str) -> str:
        return predict(text, args.num_preds, be, cfg, params, vocab, tokenizer=tokenizer)

    history, start_epoch = [], 0
    norm_log = []  # (epoch position, global gradient norm before clipping) per batch
    params = be.from_numpy(init_params(cfg, seed=args.seed, dtype=args.dtype,
                                       init=resolve_init(tcfg.init, cfg)))
    optimizer = be.make_optimizer(tcfg.optimizer, params, tcfg.lr)
    if ckpt is not None:
        check_resume(ckpt, cfg, vocab, tcfg.to_dict())
        params = be.from_numpy(ckpt.params)
        optimizer = be.make_optimizer(tcfg.optimizer, params, tcfg.lr)
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        history, start_epoch = list(ckpt.history), ckpt.epoch
        if "grad_norms" in ckpt.arrays:
            norm_log = [tuple(row) for row in np.asarray(ckpt.arrays["grad_norms"]).tolist()]
        print(f"resuming {ckpt_path} after epoch {start_epoch} (trained on "
              f"{ckpt.extra.get('backend', '?')}{processes(ckpt.extra.get('world_size', 1))}, "
              f"continuing on {be.name}{processes(world_size)})", flush=True)
        if start_epoch >= tcfg.num_epochs:
            print(f"already trained for {start_epoch} epochs; pass a larger --epochs to go on")
            return 0
        if stopped_early(val_history(history), tcfg.patience):
            print(f"this run stopped early after epoch {start_epoch}: {why_stopped(history)}; "
                  "pass a larger --patience to go on")
            return 0
    elif is_main:  # a new run: a best model of a run this one replaces is no longer best
        (out / BEST_NAME).unlink(missing_ok=True)
    past = list(history)  # the epochs before this command's: early stopping counts them
    best_val = min((v for v in val_history(past) if v is not None), default=math.inf)

    title = f"{cfg.cell}, H={cfg.num_hiddens}, {args.optimizer} lr={args.lr:g}, {args.corpus}"
    plots, no_matplotlib = [], []
    plot_clock = PlotClock()  # the plots take under 1% of the run; always drawn at the end

    def snapshot(epoch: int) -> tuple:
        """The run after ``epoch`` epochs, for a write now or later: copies of the
        parameters and the optimiser state, and the lengths of the history and of the
        gradient-norm log (both only grow)."""
        state = optimizer.state_dict()
        state["name"] = tcfg.optimizer
        state["arrays"] = {k: np.asarray(v) for k, v in be.to_numpy(state["arrays"]).items()}
        return epoch, be.to_numpy(params), state, len(history), len(norm_log)

    def write(path: Path, snap: tuple) -> None:
        """A snapshot, atomically, to ``path`` (the latest checkpoint or best.safetensors)."""
        epoch, arrays, state, n_history, n_norms = snap
        save_checkpoint(path, Checkpoint(
            model=cfg, params=arrays, vocab=vocab, epoch=epoch,
            train=tcfg.to_dict(), optimizer=state, history=history[:n_history],
            rng=rng_metadata(tcfg.seed),
            extra={"corpus": args.corpus, "corpus_sha256": corpus_sha256,
                   "backend": be.name, "dtype": args.dtype,
                   "device": str(getattr(be, "device", "cpu")), "world_size": world_size,
                   "prefix": prefix,  # rnnlab generate starts from it by default
                   "options": run_options_record(args)},
            arrays={"grad_norms": np.array(norm_log[:n_norms], dtype=np.float64).reshape(-1, 2)}))

    # The best epoch so far is kept in memory and written with the next checkpoint, at the
    # end, and when the run stops (Ctrl-C, a diverged run), not after every epoch that
    # improves: early in a run that is every epoch, and a write (a few ms, more on a slow
    # disk) costs several percent of an epoch of d2l's model.
    best_pending = []  # [the snapshot of a best epoch not yet in best.safetensors]

    def write_best() -> None:
        """best.safetensors, when a better epoch came since it was last written. Always
        before the latest checkpoint: the history a checkpoint holds never names a best
        epoch that best.safetensors lacks, so a resume keeps it right."""
        if best_pending:  # (cleared once written: a stop mid-write writes it again)
            write(out / BEST_NAME, best_pending[0])
            best_pending.clear()

    def save(epoch: int, last: bool = False) -> None:
        """The run after ``epoch`` epochs to the latest checkpoint (the best epoch before
        it); the plots with it while they are cheap, always with the ``last``."""
        try:
            write_best()
            write(ckpt_path, snapshot(epoch))
        except SaveError as exc:  # a full disk: say what is kept and how to go on
            good = last_saved or start_epoch
            kept = ("the checkpoint" if exc.filename == str(ckpt_path)  # or best.safetensors
                    else f"and {ckpt_path.name}") + f" after epoch {good}"
            err = SaveError(
                f"{exc}" + (f" ({kept}); free some space, then run the same command with "
                            "--resume to continue from it" if good else
                            "; free some space and run the command again"))
            err.errno, err.strerror, err.filename = exc.errno, exc.strerror, exc.filename
            raise err from None
        if not args.no_plot and history and not no_matplotlib and (
                last or epoch == tcfg.num_epochs or plot_clock.due()):
            from ..plot import plot_grad_norms, plot_perplexity

            try:
                with plot_clock.drawing():
                    plots[:] = [plot_perplexity(history, out / "perplexity.png", title=title)]
                    if norm_log:
                        x, n = zip(*norm_log)
                        plots.append(plot_grad_norms(x, n, tcfg.clip_theta,
                                                     out / "grad_norm.png", title=title))
            except ImportError:  # matplotlib is optional: say so once, keep training
                no_matplotlib.append(True)
                print("note: matplotlib is not installed, so no perplexity.png; "
                      "pip install matplotlib (or rnnlab[plot])", file=sys.stderr, flush=True)

    progress = RunProgress(not args.no_progress, start_epoch, tcfg.num_epochs,
                           tcfg.batch_size * tcfg.num_steps)
    log = progress.log

    def on_choice(m) -> None:  # --threads auto measured: say what it chose when it changes
        before = tuner.measurements[-2].chosen if len(tuner.measurements) > 1 else None
        if m.chosen != before:
            log(describe_choice(m, progress.tokens_per_batch, "tokens/s"))

    def on_batch(epoch, i, n, loss, norm):
        norm_log.append((epoch + (i + 1) / n, float(norm)))
        progress.batch(epoch, i, n, loss)

    last_saved = None

    def on_epoch(stats) -> None:
        nonlocal last_saved, best_val
        history.append(stats.to_dict())
        e = stats.epoch
        if stats.val_ppl is not None and stats.val_ppl < best_val:
            best_val = stats.val_ppl  # the best model so far: kept beside the latest
            if is_main:
                best_pending[:] = [snapshot(e)]
        if e % args.log_every == 0 or e == tcfg.num_epochs:
            val = f"  val ppl {stats.val_ppl:8.3f}" if stats.val_ppl is not None else ""
            log(f"epoch {e:4d}/{tcfg.num_epochs}  train ppl {stats.train_ppl:8.3f}{val}  "
                f"{stats.tokens_per_s:10,.0f} tokens/s  grad norm {stats.grad_norm_mean:.3f}")
        if args.sample_every and e % args.sample_every == 0 and e != tcfg.num_epochs:
            log("  sample: " + printable(sample(prefix)))
        if args.checkpoint_every and e % args.checkpoint_every == 0:
            if is_main:
                save(e)
            last_saved = e

    val_note = (f", validation on {len(val_corpus):,} held-out tokens" if len(val_corpus)
                else ", no validation split")
    kind = "" if args.token == "char" else " words"
    where = (f"{getattr(be, 'device', 'cpu')}" if dp is None else
             f"{world_size} processes, {dp.comm_backend}, rank 0 on {be.device}")
    print(f"training {cfg.cell} (H={cfg.num_hiddens}, layers={cfg.num_layers}) on "
          f"{len(train_corpus):,} tokens{val_note}, vocab {len(vocab)}{kind}, backend {be.name} "
          f"({where}, {args.dtype})", flush=True)
    tuner = thread_tuner(tcfg.threads, be, on_choice=on_choice)
    with tuner:  # the count chosen for training also serves the final samples
        try:
            trained = train(be, cfg, params, train_corpus, tcfg,
                            val_corpus=val_corpus if len(val_corpus) else None,
                            start_epoch=start_epoch, optimizer=optimizer, on_epoch=on_epoch,
                            on_batch=on_batch, tuner=tuner, parallel=dp, past=past)
        except NonFiniteError as exc:  # data-parallel: every process stops at the same batch
            progress.close()
            if is_main:
                write_best()  # the best epoch before it went wrong
            good = last_saved or start_epoch  # this run's last checkpoint (or the resumed one)
            kept = (f"the last good checkpoint, after epoch {good}, is kept at {ckpt_path}" if good
                    else "no checkpoint was saved before it")
            if is_main:
                print(f"rnnlab: error: {one_line(exc)}; {kept}", file=sys.stderr)
            return EXIT_NONFINITE
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (cli/signals.py)
            progress.close()
            if is_main:
                write_best()  # the best epoch so far is not lost
            kept = (f"the last checkpoint is {ckpt_path}, after epoch "
                    f"{saved_epoch(ckpt_path, last_saved or start_epoch)}; run the same "
                    "command with --resume to continue" if ckpt_path.exists()
                    else "no checkpoint was saved yet")
            newline = "\n" if sys.stderr.isatty() and not isinstance(exc, Terminated) else ""
            if is_main:
                say(f"{newline}{describe(exc)}; {kept}")  # (a terminal echoed ^C mid-line)
            return interrupt_status(exc)
        finally:
            progress.close()
        final = start_epoch + len(trained)  # fewer than --epochs when it stopped early
        if (last_saved != final or final < tcfg.num_epochs) and is_main:
            save(final, last=True)  # (stopped early: again, for the plots of the end)
        elif is_main:
            write_best()
        if final < tcfg.num_epochs:
            print(f"stopped early after epoch {final}: {why_stopped(history)}", flush=True)
        if history:
            last = history[-1]
            val = f", validation {last['val_ppl']:.2f}" if last.get("val_ppl") is not None else ""
            print(f"perplexity {last['train_ppl']:.2f}{val}, {last['tokens_per_s']:,.0f} tokens/s "
                  f"on {be.name}")
        print(printable(sample(prefix)))
        if args.prefix is None and tokenizer.time_machine:
            print(printable(sample("traveller")))
        best = f"\nbest  {out / BEST_NAME}" if (out / BEST_NAME).exists() else ""
        print(f"saved {ckpt_path}{best}" + "".join(f"\nplot  {p}" for p in plots), flush=True)
        return 0

