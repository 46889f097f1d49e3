"""``rnnlab train``: d2l's ``train_ch8`` as a command, with checkpoints, resume and plots.

Here: the command's options, its start (alone or as one of torchrun's processes) and the
run itself. What a checkpoint records of the run and a resume restores (every option,
the corpus) is in ``run_record``; what the run writes into ``--out`` (the checkpoints,
``best.safetensors``, the plots), in ``run_writer``.
"""

from __future__ import annotations

import math
import sys
import uuid
from pathlib import Path

import numpy as np

from ..checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    check_resume,
    decode_checkpoint,
    load_checkpoint,
    read_checkpoint_bytes,
    rng_metadata,
)
from ..checkpoint_schema import MAX_PREFIX
from ..config import CELLS, GRU_FORMS, OPTIMIZERS, ModelConfig
from ..data import TOKEN_KINDS, split_after, tokenizer_for
from ..distributed import START_TIMEOUT, check_divisible, epoch_timeout, launch_env
from ..errors import (
    EXIT_NONFINITE,
    ConfigError,
    CorpusError,
    DistributedError,
    NonFiniteError,
    RnnlabError,
)
from ..generate import check_num_preds, predict, prefix_ids
from ..memory import check_training_fits, retain_freed_memory
from ..params import init_params
from ..runlock import RunLock
from ..runs import choose_prefix
from ..schedule import LR_SCHEDULES, best_epoch, lr_at, stopped_early, val_history
from ..tasks import TASKS
from ..threads import thread_tuner
from ..train import TrainConfig, check_corpus_fits, resolve_init, train
from .common import (
    add_backend_options,
    add_threads_option,
    check_backend_options,
    check_run_dir,
    clip_threshold,
    decay_factor,
    describe_choice,
    fraction,
    make_backend,
    nonneg_int,
    one_line,
    positive_float,
    positive_int,
)
from .progress import RunProgress, printable
from .run_record import (
    adopt_run_options,
    register_actions,
    run_corpus,
    run_options_record,
)
from .run_writer import (
    RunWriter,
    best_of_another_run,
    check_out_folder,
    first_missing,
    path_kind,
    remove_empty,
)
from .signals import Terminated, describe, interrupt_status, say
from .train_task import check_task_options, run_task

PREFIX_SEARCH = 100_000  # the default prefix is looked for in the corpus's first tokens


def add_parser(sub) -> None:
    """Register ``rnnlab train`` on the subcommand parsers ``sub``."""
    t = sub.add_parser("train", help="train a character- or word-level model and save a "
                                     "checkpoint; or a cell on a memory task (--task)",
                       description="Train on The Time Machine (default) or any UTF-8 text file, "
                                   "with a progress bar, training and validation perplexity "
                                   "and tokens/s per epoch; saves a checkpoint, perplexity.png "
                                   "and grad_norm.png in --out, and prints a sample. Defaults "
                                   "are d2l's. Ctrl-C keeps the last checkpoint: run the same "
                                   "command with --resume to continue. Started by torchrun "
                                   "(--backend torch), the processes train data-parallel: "
                                   "torchrun --nproc-per-node 2 -m rnnlab train --backend torch "
                                   "... With --task adding or copy it trains on a long-range "
                                   "memory task instead (see 'memory tasks' below).")
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
    t.add_argument("--lr-decay-after", type=positive_int, default=10,
                   help="the first epoch (counted from 1) whose end decays the learning rate, "
                        "as char-rnn's -learning_rate_decay_after (with --lr-schedule step: "
                        "every how many epochs); needs --lr-decay below 1 (default 10)")
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="exp",
                   help="exp: char-rnn's decay by --lr-decay every epoch from --lr-decay-after "
                        "on (constant at --lr-decay 1, d2l's); step: by --lr-decay every "
                        "--lr-decay-after epochs (torch's StepLR); cosine: from --lr down a "
                        "half cosine to 0 over --epochs (CosineAnnealingLR) (default exp)")
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
                        "path to any UTF-8 text file, read character by character (word by "
                        "word with --token word)")
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
                        "(default 'time traveller' on the time machine, else the first "
                        "words of the corpus's first sentence)")
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
    task = t.add_argument_group(
        "memory tasks", "--task trains on the adding problem or the copy task instead of a "
        "text (rnnlab.tasks): 2,000 generated examples and 500 held out, their loss against "
        "the task's baseline every epoch, metrics.json and task.png in --out (default "
        "runs/<task>-<cell>). Its defaults: --hidden 64, --epochs 20, --optimizer adam, --lr "
        "0.01, --batch-size 50, --clip 1, --init auto (torch's for lstm and gru, d2l's for "
        "rnn and irnn). A task run writes no checkpoint and is not resumable; the options "
        "of a text (--corpus, --num-steps, --resume, ...) are refused with it")
    task.add_argument("--task", choices=TASKS, default=None,
                      help="train on this memory task instead of a text: adding (the sum of "
                           "two marked numbers, squared error) or copy (ten symbols written "
                           "back after a delay, cross-entropy)")
    task.add_argument("--length", type=positive_int, default=None, metavar="T",
                      help="T: the adding problem's steps, or the copy task's delay (its "
                           "sequences have T + 20 steps) (default 50 for adding, 10 for copy)")
    task.add_argument("--truncate", type=positive_int, default=None, metavar="K",
                      help="cut BPTT k steps back from each step the loss is read at "
                           "(default: full BPTT over the whole sequence)")
    task.add_argument("--examples", type=positive_int, default=None, metavar="N",
                      help="training examples, generated from --seed (default 2000; 500 more "
                           "are held out, from --seed + 1)")
    task.add_argument("--reach-every", type=nonneg_int, default=None, metavar="N",
                      help="every N epochs (and at initialisation and the end), record how far "
                           "back the gradient of the loss reaches, ||dL/dH_t|| for every step "
                           "t on 50 held-out examples, drawn beside the loss in task.png; 0: "
                           "off (default 1)")
    t.add_argument("--dist-timeout", type=timeout_arg, default="auto", metavar="SECONDS|auto",
                   help="under torchrun: seconds a process waits for the others at each "
                        "exchange before it stops with an error; auto (default): 300 until "
                        "the first epoch ends, then twice its time, between 60 and 300")
    register_actions(t)
    t.set_defaults(func=cmd_train)


def why_stopped(history: list) -> str:
    """Why early stopping ended a run, from its history."""
    vals = val_history(history)
    at = best_epoch(vals)
    return (f"the validation perplexity has not improved for {len(vals) - at} epochs (best "
            f"{vals[at - 1]:.3f} at epoch {at}, kept in {BEST_NAME})")


def timeout_arg(text: str):
    """--dist-timeout: "auto" or a positive number of seconds."""
    return "auto" if text.strip().lower() == "auto" else positive_float(text)


def check_options_act(args) -> None:
    """Refuse an option that cannot act in the run as given (as --patience without a
    validation split is), and a learning-rate decay that takes the rate to 0."""
    explicit = getattr(args, "explicit", set())
    if args.val_every != 1 and args.val_fraction == 0:
        raise ConfigError(f"--val-every {args.val_every} says how often to validate, and "
                          f"--val-fraction {args.val_fraction:g} leaves no validation tokens; give "
                          "--val-fraction above 0, or leave --val-every out")
    schedule = getattr(args, "lr_schedule", "exp")
    if schedule == "cosine" and "lr_decay_after" in explicit:
        raise ConfigError(f"--lr-decay-after {args.lr_decay_after} shapes the exp and step "
                          "schedules, and --lr-schedule cosine follows its own curve to 0 over "
                          "--epochs; leave --lr-decay-after out, or choose exp or step")
    if "lr_decay_after" in explicit and args.lr_decay == 1:
        raise ConfigError(f"--lr-decay-after {args.lr_decay_after} says when the learning rate "
                          "starts to decay, and --lr-decay 1 never decays it; give --lr-decay "
                          "below 1 (char-rnn uses 0.97), or leave --lr-decay-after out")
    if args.lr_decay != 1 and schedule != "cosine":  # (cosine with a decay: TrainConfig refuses)
        dtype = np.dtype(args.dtype or "float32")
        tiny = float(np.finfo(dtype).smallest_subnormal)  # below it, the rate is 0 there

        def zero(e):  # epoch e (0-based) trains with a rate of 0: lr * decay^k underflowed
            return lr_at(args.lr, e, args.lr_decay, args.lr_decay_after, schedule) < tiny

        if zero(args.epochs - 1):
            lo, hi = 0, args.epochs - 1  # the first such epoch (the rate only falls)
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if zero(mid) else (mid + 1, hi)
            raise ConfigError(
                f"--lr {args.lr:g} with --lr-decay {args.lr_decay} from --lr-decay-after "
                f"{args.lr_decay_after} is 0 in {dtype.name} from epoch {lo + 1} of "
                f"{args.epochs}: the rest of the run would not train (--lr 0 is refused "
                "too); give --lr-decay nearer 1, a later --lr-decay-after, or fewer --epochs")


def saved_epoch(ckpt_path: Path, default: int) -> int:
    """The epoch of the checkpoint on disk: a stop that lands just after a save's rename,
    before the run has noted it, must not name the one before."""
    try:
        return load_checkpoint(ckpt_path).epoch
    except (RnnlabError, OSError):
        return default


def processes(n: int) -> str:
    return "" if n == 1 else f" x {n} processes"


def cmd_train(args) -> int:
    launch = launch_env()  # None unless torchrun started this process
    if args.task is not None:  # a memory task, not a text: its own module
        return run_task(args, launch)
    check_task_options(args)  # --truncate, --length ... without --task
    if launch is None:
        return run_train(args, None)
    return run_data_parallel(args, launch)


def check_launch_options(args, launch) -> None:
    """Under torchrun: what cannot train data-parallel is refused by every process alike,
    before any of them waits for the others (rank 0 says it; the others exit quietly)."""
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

    check_launch_options(args, launch)  # before torch is imported: numpy needs none
    from ..torch_backend.distributed import connect  # lazy: torch, under torchrun only

    timeout = START_TIMEOUT if args.dist_timeout == "auto" else args.dist_timeout
    dp = connect(args.device, timeout=timeout, launch=launch)
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
    if args.resume and args.overwrite:  # which one was meant? the run is not guessed away
        raise ConfigError("--resume continues the run in --out, and --overwrite starts a new "
                          "one in its place: give one of them")
    if args.out is not None and not args.out.strip():  # once read as the default, runs/<cell>
        raise ConfigError(f"--out is {args.out!r}, an empty name: give the run's folder, or "
                          f"leave --out out for runs/{args.cell}")
    retain_freed_memory()  # reuse freed arrays step after step, no page faults (rnnlab.memory)
    out = Path(args.out or f"runs/{args.cell}")
    ckpt_path = out / CHECKPOINT_NAME
    # one writer per run directory, from before the checkpoint is read until the end: a
    # second run, or a --resume of a run still training, is refused (rnnlab.runlock).
    # Data-parallel: rank 0 alone owns --out (it may be on its machine's disk only), takes
    # the lock, reads the checkpoint and sends it to the others.
    lock = RunLock(out)
    made = first_missing(out)  # the folder this run creates (runs/, say), None if --out exists

    def open_run():  # the checkpoint's bytes to resume from, or None for a new run
        kind = path_kind(out)
        if args.resume and kind not in (None, "a directory"):  # a file, a link loop
            raise ConfigError(f"--out {str(out)!r} is {'a file' if kind == 'file' else kind}, "
                              "not a run directory; give the run's folder")
        if args.resume and path_kind(ckpt_path) == "a symbolic link loop":
            raise ConfigError(f"--resume: {ckpt_path} is a symbolic link loop, not a checkpoint "
                              "file")
        if args.resume and not ckpt_path.exists():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path} (train without "
                              "--resume first, or point --out at the run's directory)")
        check_run_dir(out)  # fail now, not at the first checkpoint after hours of training
        lock.acquire()
        check_out_folder(out, args.resume, args.overwrite)  # nothing of the user's replaced
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
        # a run that saved no checkpoint (a missing corpus, no CUDA, Ctrl-C in the first
        # epoch) leaves no trace: its lock file goes, and the folders it made if still empty
        saved = ckpt_path.exists()
        if lock.held and not saved:
            lock.path.unlink(missing_ok=True)
        lock.release()
        if made is not None and not saved and (dp is None or dp.is_main):
            remove_empty(out, made)


def _train_locked(args, out: Path, ckpt_path: Path, data: bytes | None, dp) -> int:
    is_main = dp is None or dp.is_main  # prints, plots and writes checkpoints
    ckpt = None if data is None else decode_checkpoint(data, ckpt_path)
    if ckpt is not None:
        adopt_run_options(args, ckpt, ckpt_path)
    check_options_act(args)  # the run's options as they will be used, restored ones included
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
                       lr_decay_after=args.lr_decay_after, lr_schedule=args.lr_schedule,
                       patience=args.patience,
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
    prefix, prefix_from = args.prefix, "--prefix"
    if prefix is None:  # the start of a sentence of the text, not its most frequent token
        head = [vocab.idx_to_token[i] for i in train_corpus[:PREFIX_SEARCH].tolist()]
        prefix, prefix_from = choose_prefix(head, vocab, tokenizer)
    if len(prefix) > MAX_PREFIX:  # the checkpoint could not record it
        raise ConfigError(f"--prefix is {len(prefix):,} characters long; a run records at most "
                          f"{MAX_PREFIX:,} (generate warms up on every one)")
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
    past = list(history)  # the epochs before this command's: early stopping counts them
    best_val = min((v for v in val_history(past) if v is not None), default=math.inf)

    title = f"{cfg.cell}, H={cfg.num_hiddens}, {args.optimizer} lr={args.lr:g}, {args.corpus}"
    fields = dict(  # what every checkpoint of this run records alike
        model=cfg, vocab=vocab, train=tcfg.to_dict(), rng=rng_metadata(tcfg.seed),
        extra={"corpus": args.corpus, "corpus_sha256": corpus_sha256, "backend": be.name,
               "dtype": args.dtype, "device": str(getattr(be, "device", "cpu")),
               "world_size": world_size,
               "prefix": prefix,  # rnnlab generate starts from it by default
               "options": run_options_record(args)})
    # which run a file of --out belongs to: generate refuses a best.safetensors of another
    run_id = uuid.uuid4().hex if ckpt is None else ckpt.extra.get("run_id")
    if run_id is not None:
        fields["extra"]["run_id"] = run_id
    writer = RunWriter(out, ckpt_path, be, params, optimizer, tcfg.optimizer, fields, history,
                       norm_log, start_epoch, tcfg.num_epochs, tcfg.clip_theta,
                       None if args.no_plot else title)
    # a new run (--overwrite): a best model of the run it replaces is no longer best;
    # a resumed run: nor is one another run left beside its checkpoint
    writer.stale_best = is_main and ((out / BEST_NAME).exists() if ckpt is None
                                     else best_of_another_run(out, ckpt))

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

    def on_epoch(stats) -> None:
        nonlocal best_val
        history.append(stats.to_dict())
        e = stats.epoch
        if dp is not None and args.dist_timeout == "auto" and e == start_epoch + 1:
            dp.set_timeout(epoch_timeout(stats.seconds))  # a hung peer: about an epoch
        if stats.val_ppl is not None and stats.val_ppl < best_val:
            best_val = stats.val_ppl  # the best model so far: kept beside the latest
            if is_main:
                writer.keep_best(e)
        if e % args.log_every == 0 or e == tcfg.num_epochs:
            val = f"  val ppl {stats.val_ppl:8.3f}" if stats.val_ppl is not None else ""
            log(f"epoch {e:4d}/{tcfg.num_epochs}  train ppl {stats.train_ppl:8.3f}{val}  "
                f"{stats.tokens_per_s:10,.0f} tokens/s  grad norm {stats.grad_norm_mean:.3f}  "
                f"lr {stats.lr:.3g}")
        if args.sample_every and e % args.sample_every == 0 and e != tcfg.num_epochs:
            log("  sample: " + printable(sample(prefix)))
        if args.checkpoint_every and e % args.checkpoint_every == 0:
            if is_main:
                writer.save(e)
            writer.last_saved = e

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
                writer.write_best()  # the best epoch before it went wrong
            good = writer.last_saved or start_epoch  # this run's last checkpoint (or the resumed one)
            kept = (f"the last good checkpoint, after epoch {good}, is kept at {ckpt_path}" if good
                    else "no checkpoint was saved before it")
            if is_main:
                print(f"rnnlab: error: {one_line(exc)}; {kept}", file=sys.stderr)
            return EXIT_NONFINITE
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (cli/signals.py)
            progress.close()
            if is_main:
                writer.write_best()  # the best epoch so far is not lost
            kept = (f"the last checkpoint is {ckpt_path}, after epoch "
                    f"{saved_epoch(ckpt_path, writer.last_saved or start_epoch)}; run the same "
                    "command with --resume to continue" if ckpt_path.exists()
                    else "no checkpoint was saved yet")
            newline = "\n" if sys.stderr.isatty() and not isinstance(exc, Terminated) else ""
            if is_main:
                say(f"{newline}{describe(exc)}; {kept}")  # (a terminal echoed ^C mid-line)
            return interrupt_status(exc)
        finally:
            progress.close()
        final = start_epoch + len(trained)  # fewer than --epochs when it stopped early
        if (writer.last_saved != final or final < tcfg.num_epochs) and is_main:
            writer.save(final, last=True)  # (stopped early: again, for the plots of the end)
        elif is_main:
            writer.write_best()
        if final < tcfg.num_epochs:
            print(f"stopped early after epoch {final}: {why_stopped(history)}", flush=True)
        if history:
            last = history[-1]
            val = f", validation {last['val_ppl']:.2f}" if last.get("val_ppl") is not None else ""
            print(f"perplexity {last['train_ppl']:.2f}{val}, {last['tokens_per_s']:,.0f} tokens/s "
                  f"on {be.name}")
        if args.prefix is None and not tokenizer.time_machine:  # where the sample starts
            print(f"sample from {prefix!r} ({prefix_from}; choose another with --prefix):")
        print(printable(sample(prefix)))
        if args.prefix is None and tokenizer.time_machine:
            print(printable(sample("traveller")))
        best = f"\nbest  {out / BEST_NAME}" if (out / BEST_NAME).exists() else ""
        print(f"saved {ckpt_path}{best}" + "".join(f"\nplot  {p}" for p in writer.plots), flush=True)
        return 0

