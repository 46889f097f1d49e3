"""The ``rnnlab`` command: train, generate, gradcheck (and more, one subcommand each).

Every option maps one to one onto a field of ModelConfig / TrainConfig. Errors of
rnnlab's own types print one line on stderr and exit with status 2 (3 for a run that
stopped on a NaN / infinite loss); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .config import CELLS, GRU_FORMS, ModelConfig
from .errors import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NONFINITE, ConfigError, CorpusError,
                     NonFiniteError, RnnlabError, exit_status)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (status 2), naming the option
    and the value: ``rnnlab train: error: argument --hidden: expected a positive ...``."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {one_line(message)} "
                              f"(see {self.prog} --help)\n")


def one_line(message) -> str:
    """A message as exactly one line (a file name may hold a newline)."""
    return " ".join(str(message).splitlines()) or type(message).__name__


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    if not (0.0 <= v < 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return v


def add_backend_options(p: argparse.ArgumentParser, dtype_default: str | None = "float32") -> None:
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="numpy: hand-written BPTT (default); torch: autograd, CPU or GPU")
    p.add_argument("--device", default=None,
                   help="torch backend only: cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend only: scratch (the seeds' equations) or nn "
                        "(torch.nn.RNN/LSTM/GRU with the same weights, cuDNN on GPU)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=dtype_default,
                   help="floating-point type of parameters and activations (default "
                        + (dtype_default or "the checkpoint's") + ")")


def make_backend(args):
    from .backend import get_backend

    options = {"dtype": args.dtype}
    if args.backend == "torch":
        options.update(device=args.device, impl=args.impl)
    elif args.device not in (None, "cpu"):
        raise ConfigError(f"--device {args.device} needs --backend torch")
    return get_backend(args.backend, **options)


# ------------------------------------------------------------------------------ train


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="rnnlab",
        description="Recurrent language models with hand-written BPTT (NumPy) and autograd (PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a character-level model and save a checkpoint",
                       description="Train on The Time Machine (default) or any UTF-8 text file, "
                                   "with a progress bar, training and validation perplexity "
                                   "and tokens/s per epoch; saves a checkpoint, perplexity.png "
                                   "and grad_norm.png in --out, and prints a sample. Defaults "
                                   "are d2l's. Ctrl-C keeps the last checkpoint: run the same "
                                   "command with --resume to continue.")
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
    t.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="sgd",
                   help="sgd (d2l), adam (d2lzh seed) or adagrad (min-char-rnn) (default sgd)")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size B (default 32)")
    t.add_argument("--num-steps", type=positive_int, default=35,
                   help="BPTT window T: steps per batch, gradients truncated at its edges (default 35)")
    t.add_argument("--max-tokens", type=int, default=10_000,
                   help="train on the first N tokens of the corpus; -1 for all (default 10000, "
                        "as d2l)")
    t.add_argument("--random", action="store_true",
                   help="random partitioning (state reset every batch) instead of sequential "
                        "(state carried, gradients truncated)")
    t.add_argument("--clip", type=positive_float, default=1.0,
                   help="global gradient-norm clipping threshold theta (default 1)")
    t.add_argument("--seed", type=nonneg_int, default=0, help="seed for parameters and batching (default 0)")
    t.add_argument("--init", choices=("auto", "d2l", "torch"), default="auto",
                   help="initial weights: d2l N(0, 0.01^2) with zero biases; torch U(+-1/sqrt(H)) "
                        "as torch.nn; auto (default): d2l for one layer, torch for stacked layers "
                        "(d2l's deep-RNN chapter), which otherwise stall at the unigram perplexity")
    t.add_argument("--corpus", default="timemachine",
                   help="'timemachine' (found in $RNNLAB_DATA, the cache, or downloaded) or a "
                        "path to any UTF-8 text file, read character by character")
    t.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="validation perplexity on floor(N * f) held-out tokens, N the training "
                        "tokens: the ones right after the first N when the corpus goes on (so "
                        "d2l's 10,000 stay the training set), else the last part of the "
                        "corpus; 0 for none (default 0.1)")
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
                   help="save a checkpoint (and the plots) every N epochs, and always at the "
                        "end; 0: at the end only (default 10)")
    t.add_argument("--sample-every", type=nonneg_int, default=0,
                   help="print a greedy sample every N epochs (default 0: only at the end)")
    t.add_argument("--prefix", default=None,
                   help="prefix for samples (default 'time traveller' on the time machine)")
    t.add_argument("--num-preds", type=nonneg_int, default=50, help="characters per sample (default 50)")
    t.add_argument("--no-plot", action="store_true",
                   help="do not write perplexity.png and grad_norm.png (they need matplotlib)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal)")
    t.add_argument("--log-every", type=positive_int, default=1,
                   help="print the epoch line every N epochs (default 1)")
    add_backend_options(t)
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate text from a saved checkpoint",
                       description="Warm up on a prefix, then decode greedily (default) or by "
                                   "sampling with a temperature and/or top-k, seeded: the same "
                                   "seed gives the same text on either backend.")
    g.add_argument("checkpoint", nargs="?", default="runs/lstm",
                   help="checkpoint file or run directory (default runs/lstm)")
    g.add_argument("--prefix", default="time traveller",
                   help="text to warm up on; every character must be in the checkpoint's "
                        "vocabulary (default 'time traveller')")
    g.add_argument("--num-preds", type=nonneg_int, default=100, help="characters to generate (default 100)")
    g.add_argument("--strategy", choices=("greedy", "sample"), default=None,
                   help="greedy argmax, or sampling (default: greedy unless --temperature or "
                        "--top-k is given)")
    g.add_argument("--temperature", type=positive_float, default=None,
                   help="sampling temperature > 0: the logits are divided by it, so below 1 "
                        "is more conservative, above 1 more adventurous (default 1)")
    g.add_argument("--top-k", type=positive_int, default=None,
                   help="sample only among the k most likely characters, 1 <= k <= vocabulary "
                        "size (default: all)")
    g.add_argument("--seed", type=nonneg_int, default=0,
                   help="sampling seed: the same seed gives the same text on either backend "
                        "(default 0)")
    add_backend_options(g, dtype_default=None)
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("gradcheck", help="finite-difference check of a cell's gradients",
                       description="Compare the backend's gradients of every parameter and the "
                                   "initial state with central finite differences in float64, "
                                   "on random small shapes, and print the worst relative error "
                                   "per parameter.")
    c.add_argument("--cell", choices=CELLS, default="lstm", help="cell to check (default lstm)")
    c.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="backend (default numpy)")
    c.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend only: scratch or nn (torch.nn kernels) (default scratch)")
    c.add_argument("--vocab", type=positive_int, default=5, help="vocabulary size V (default 5)")
    c.add_argument("--hidden", type=positive_int, default=4, help="hidden units H (default 4)")
    c.add_argument("--batch-size", type=positive_int, default=2, help="batch size B (default 2)")
    c.add_argument("--num-steps", type=positive_int, default=3, help="steps T (default 3)")
    c.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    c.add_argument("--gru-form", choices=GRU_FORMS, default="d2l", help="GRU form (default d2l)")
    c.add_argument("--bidirectional", action="store_true",
                   help="check a bidirectional model (both directions, outputs concatenated)")
    c.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the random problem (default 0)")
    c.add_argument("--tol", type=positive_float, default=1e-6,
                   help="fail (exit 1) if any relative error exceeds this (default 1e-6)")
    c.set_defaults(func=cmd_gradcheck)

    i = sub.add_parser("inspect", help="see vanishing gradients: ||dL/dH_t|| per step for "
                                       "rnn, lstm and gru; gradient norms of a run",
                       description="Put the loss on the last prediction of a long window and "
                                   "plot how the gradient reaching the hidden state k steps "
                                   "back, ||dL/dH_{T-k}||, shrinks with k, for every cell on "
                                   "the same text: at d2l's initialisation and after a short "
                                   "training. Writes gradient_flow.png in --out and prints the "
                                   "decay per step. With --run, also plots that training "
                                   "run's gradient norm per batch before and after clipping.")
    i.add_argument("--cells", nargs="+", choices=CELLS, default=None, metavar="CELL",
                   help="cells to compare, from rnn lstm gru (default: all three)")
    i.add_argument("--window", type=positive_int, default=100,
                   help="steps T of the probe windows; the loss is on the last one (default 100)")
    i.add_argument("--hidden", type=positive_int, default=64, help="hidden units H (default 64)")
    i.add_argument("--batch-size", type=positive_int, default=16,
                   help="probe windows averaged over, B (default 16)")
    i.add_argument("--epochs", type=nonneg_int, default=20,
                   help="epochs of training for the second panel; 0 for initialisation only "
                        "(default 20)")
    i.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="adam",
                   help="optimiser for that training (default adam: it gets far in few epochs)")
    i.add_argument("--lr", type=positive_float, default=0.01, help="its learning rate (default 0.01)")
    i.add_argument("--forget-bias", type=float, default=3.0,
                   help="also show an LSTM whose forget-gate bias b_f starts at this value, "
                        "F = sigmoid(b_f) near 1; 0 to leave it out (default 3)")
    i.add_argument("--corpus", default="timemachine",
                   help="'timemachine' or a UTF-8 text file: training on its first --max-tokens "
                        "tokens, probe windows from the tokens after them")
    i.add_argument("--max-tokens", type=positive_int, default=10_000,
                   help="training tokens (default 10000, as d2l)")
    i.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the parameters, the training and the probe windows (default 0)")
    i.add_argument("--out", default="runs/inspect",
                   help="directory for gradient_flow.png (and grad_norm.png) (default runs/inspect)")
    i.add_argument("--run", default=None,
                   help="a training run directory or checkpoint: plot its per-batch gradient "
                        "norm before and after clipping as <out>/grad_norm.png")
    i.add_argument("--no-plot", action="store_true", help="print the numbers only, no PNG")
    i.set_defaults(func=cmd_inspect)

    m = sub.add_parser("memory", help="predict the memory one BPTT training step needs",
                       description="Parameters, gradients, optimiser state and the activations "
                                   "kept for the backward pass of one training step, per "
                                   "backend, without running it (rnnlab.memory). --measure "
                                   "also runs one numpy step and reports tracemalloc's peak.")
    m.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    m.add_argument("--vocab", type=positive_int, default=28, help="vocabulary size V (default 28)")
    m.add_argument("--hidden", type=positive_int, default=256, help="hidden units H (default 256)")
    m.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    m.add_argument("--gru-form", choices=GRU_FORMS, default="d2l", help="GRU form (default d2l)")
    m.add_argument("--bidirectional", action="store_true", help="a bidirectional model")
    m.add_argument("--batch-size", type=positive_int, default=32, help="batch size B (default 32)")
    m.add_argument("--num-steps", type=positive_int, default=35, help="BPTT window T (default 35)")
    m.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="sgd",
                   help="optimiser whose state is counted (default sgd)")
    m.add_argument("--backend", choices=("numpy", "torch"), default=None,
                   help="one backend (default: both)")
    m.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend path (default scratch)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type (default float32)")
    m.add_argument("--measure", action="store_true",
                   help="also run one numpy loss_and_grads and print tracemalloc's peak")
    m.set_defaults(func=cmd_memory)
    return parser


def default_prefix(corpus: str, vocab) -> str:
    if corpus in ("timemachine", "time_machine"):
        return "time traveller"
    return vocab.idx_to_token[1]  # the most frequent character


# A resumed run continues the same run: these options are read from the checkpoint when
# they are not given, and refused when given with another value. (--epochs is read from
# the checkpoint when not given, and may be raised to extend a run.)
RUN_OPTIONS = {  # dest: (option, how the checkpoint records it)
    "cell": ("--cell", lambda c: c.model.cell),
    "hidden": ("--hidden", lambda c: c.model.num_hiddens),
    "num_layers": ("--num-layers", lambda c: c.model.num_layers),
    "gru_form": ("--gru-form", lambda c: c.model.gru_form),
    "dropout": ("--dropout", lambda c: c.model.dropout),
    "lr": ("--lr", lambda c: c.train["lr"]),
    "optimizer": ("--optimizer", lambda c: c.train["optimizer"]),
    "batch_size": ("--batch-size", lambda c: c.train["batch_size"]),
    "num_steps": ("--num-steps", lambda c: c.train["num_steps"]),
    "max_tokens": ("--max-tokens", lambda c: c.train["max_tokens"]),
    "random": ("--random", lambda c: c.train["use_random_iter"]),
    "clip": ("--clip", lambda c: c.train["clip_theta"]),
    "seed": ("--seed", lambda c: c.train["seed"]),
    "init": ("--init", lambda c: c.train.get("init", "auto")),
    "val_fraction": ("--val-fraction", lambda c: c.train["val_fraction"]),
    "corpus": ("--corpus", lambda c: c.extra["corpus"]),
    "dtype": ("--dtype", lambda c: str(next(iter(c.params.values())).dtype)),
}


def explicit_options(argv) -> set:
    """The dests of the options given on the command line (not left to their defaults).

    The same parser with every default suppressed parses the same argv: only what was
    typed lands in the namespace (abbreviations and ``--opt=value`` included)."""
    parser = build_parser()
    for action in _all_actions(parser):
        if action.dest not in ("help", "version", "command"):
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _all_actions(parser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)


def _same(option: str, given, recorded) -> bool:
    if option == "--corpus" and given not in ("timemachine", "time_machine"):
        return Path(given).resolve() == Path(str(recorded)).resolve()
    if isinstance(given, float) or isinstance(recorded, float):
        return float(given) == float(recorded)
    return given == recorded


def adopt_run_options(args, ckpt, where) -> None:
    """--resume: take the run's options from the checkpoint; name every one given with
    another value (a ConfigError listing them all)."""
    explicit = getattr(args, "explicit", set())
    conflicts = []
    for dest, (option, recorded_by) in RUN_OPTIONS.items():
        try:
            recorded = recorded_by(ckpt)
        except (KeyError, StopIteration):
            continue  # a checkpoint written from Python may not record it
        if dest not in explicit:
            setattr(args, dest, recorded)
        elif not _same(option, getattr(args, dest), recorded):
            given = getattr(args, dest)
            shown = option if isinstance(given, bool) else f"{option} {given}"
            conflicts.append(f"{shown} (the checkpoint has {recorded})")
    if conflicts:
        raise ConfigError(
            f"cannot resume {where}: {'; '.join(conflicts)}. Leave these options out to "
            "continue with the checkpoint's values, or train a new run with another --out")
    if "epochs" not in explicit:
        args.epochs = int(ckpt.train.get("num_epochs", args.epochs))


def cmd_train(args) -> int:
    from .checkpoint import (CHECKPOINT_NAME, Checkpoint, check_resume, load_checkpoint,
                             rng_metadata, save_checkpoint)
    from .data import load_corpus, split_after
    from .generate import predict
    from .memory import retain_freed_memory
    from .params import init_params
    from .train import TrainConfig, check_corpus_fits, resolve_init, train

    retain_freed_memory()  # reuse freed arrays step after step, no page faults (rnnlab.memory)
    out = Path(args.out or f"runs/{args.cell}")
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = None
    if args.resume:
        if not ckpt_path.exists():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path} (train without --resume "
                              "first, or point --out at the run's directory)")
        ckpt = load_checkpoint(ckpt_path)
        adopt_run_options(args, ckpt, ckpt_path)
    elif ckpt_path.exists() and not args.overwrite:
        raise ConfigError(f"{ckpt_path} already holds a run: add --resume to continue it, "
                          "--overwrite to start again in its place, or choose another --out")
    full, vocab = load_corpus(args.corpus, -1)
    # the tokens themselves, so a resume refuses a corpus edited since (same characters,
    # other text) instead of silently training on other data
    corpus_sha256 = hashlib.sha256(full.astype("<i8").tobytes()).hexdigest()
    if ckpt is not None and ckpt.extra.get("corpus_sha256", corpus_sha256) != corpus_sha256:
        raise ConfigError(f"cannot resume {ckpt_path}: --corpus {args.corpus} has changed since "
                          "the checkpoint was saved (its tokens have another SHA-256); restore "
                          "the original text, or train a new run with another --out")
    # training: the first --max-tokens tokens (d2l's 10,000); validation: the tokens after
    # them, or the last part of those tokens when the corpus ends there
    train_corpus, val_corpus = split_after(full, args.max_tokens, args.val_fraction)
    tcfg = TrainConfig(num_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       num_steps=args.num_steps, max_tokens=args.max_tokens,
                       use_random_iter=args.random, clip_theta=args.clip,
                       optimizer=args.optimizer, seed=args.seed, val_fraction=args.val_fraction,
                       init=args.init)
    cfg = ModelConfig(args.cell, len(vocab), args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, dropout=args.dropout)
    try:  # fail now, naming the corpus, not inside train()
        check_corpus_fits(len(train_corpus), tcfg)
    except CorpusError as exc:
        raise CorpusError(f"--corpus {args.corpus}: {exc}") from None
    if len(val_corpus) and len(val_corpus) < tcfg.num_steps + 1:
        raise CorpusError(f"--val-fraction {args.val_fraction} leaves {len(val_corpus)} "
                          f"validation tokens, fewer than --num-steps + 1 = {tcfg.num_steps + 1}; "
                          "raise it, or 0 for no validation")
    be = make_backend(args)
    check_run_dir(out)  # fail now, not at the first checkpoint after hours of training
    prefix = args.prefix if args.prefix is not None else default_prefix(args.corpus, vocab)
    vocab.lookup_strict(list(prefix))  # fail now, not after 500 epochs

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
              f"{ckpt.extra.get('backend', '?')}, continuing on {be.name})", flush=True)
        if start_epoch >= tcfg.num_epochs:
            print(f"already trained for {start_epoch} epochs; pass a larger --epochs to go on")
            return 0

    title = f"{cfg.cell}, H={cfg.num_hiddens}, {args.optimizer} lr={args.lr:g}, {args.corpus}"
    plots, no_matplotlib = [], []

    def save(epoch: int) -> None:
        state = optimizer.state_dict()
        state["name"] = tcfg.optimizer
        state["arrays"] = {k: np.asarray(v) for k, v in be.to_numpy(state["arrays"]).items()}
        save_checkpoint(ckpt_path, Checkpoint(
            model=cfg, params=be.to_numpy(params), vocab=vocab, epoch=epoch,
            train=tcfg.to_dict(), optimizer=state, history=history, rng=rng_metadata(tcfg.seed),
            extra={"corpus": args.corpus, "corpus_sha256": corpus_sha256,
                   "backend": be.name, "dtype": args.dtype,
                   "device": str(getattr(be, "device", "cpu"))},
            arrays={"grad_norms": np.array(norm_log, dtype=np.float64).reshape(-1, 2)}))
        if not args.no_plot and history and not no_matplotlib:
            from .plot import plot_grad_norms, plot_perplexity

            try:
                plots[:] = [plot_perplexity(history, out / "perplexity.png", title=title)]
                if norm_log:
                    x, n = zip(*norm_log)
                    plots.append(plot_grad_norms(x, n, tcfg.clip_theta, out / "grad_norm.png",
                                                 title=title))
            except ImportError:  # matplotlib is optional: say so once, keep training
                no_matplotlib.append(True)
                print("note: matplotlib is not installed, so no perplexity.png; "
                      "pip install matplotlib (or rnnlab[plot])", file=sys.stderr, flush=True)

    bar = None
    tokens_per_batch = tcfg.batch_size * tcfg.num_steps
    epoch_start = [time.time()]  # when the current epoch began (tqdm's clock: time.time)

    def on_batch(epoch, i, n, loss, norm):
        nonlocal bar
        norm_log.append((epoch + (i + 1) / n, float(norm)))
        if args.no_progress or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        if bar is None:
            import shutil

            # the terminal's size, or 100 x 24 where a terminal reports none (a pty without
            # a size, in CI or `script`): tqdm would draw nothing at all there
            size = shutil.get_terminal_size((100, 24))
            bar = tqdm(total=n * tokens_per_batch, desc=f"epoch {epoch + 1}/{tcfg.num_epochs}",
                       leave=False, unit="tok", unit_scale=True, ncols=size.columns or 100,
                       nrows=size.lines or 24)
            bar.start_t = bar.last_print_t = epoch_start[0]  # the first batch's time counts
        bar.update(tokens_per_batch)  # the rate shown is tokens/s
        bar.set_postfix({"loss": f"{loss:.3f}", "ppl": f"{math.exp(loss):.2f}"})
        if i == n - 1:
            bar.close()
            bar = None

    last_saved = None

    def on_epoch(stats) -> None:
        nonlocal last_saved
        history.append(stats.to_dict())
        e = stats.epoch
        if e % args.log_every == 0 or e == tcfg.num_epochs:
            val = f"  val ppl {stats.val_ppl:8.3f}" if stats.val_ppl is not None else ""
            print(f"epoch {e:4d}/{tcfg.num_epochs}  train ppl {stats.train_ppl:8.3f}{val}  "
                  f"{stats.tokens_per_s:10,.0f} tokens/s  grad norm {stats.grad_norm_mean:.3f}",
                  flush=True)
        if args.sample_every and e % args.sample_every == 0 and e != tcfg.num_epochs:
            print("  sample:", predict(prefix, args.num_preds, be, cfg, params, vocab), flush=True)
        if args.checkpoint_every and e % args.checkpoint_every == 0:
            save(e)
            last_saved = e
        epoch_start[0] = time.time()  # the next epoch starts now

    val_note = (f", validation on {len(val_corpus):,} held-out tokens" if len(val_corpus)
                else ", no validation split")
    print(f"training {cfg.cell} (H={cfg.num_hiddens}, layers={cfg.num_layers}) on "
          f"{len(train_corpus):,} tokens{val_note}, vocab {len(vocab)}, backend {be.name} "
          f"({getattr(be, 'device', 'cpu')}, {args.dtype})", flush=True)
    epoch_start[0] = time.time()
    try:
        train(be, cfg, params, train_corpus, tcfg,
              val_corpus=val_corpus if len(val_corpus) else None,
              start_epoch=start_epoch, optimizer=optimizer, on_epoch=on_epoch, on_batch=on_batch)
    except NonFiniteError as exc:
        kept = (f"the last good checkpoint is kept at {ckpt_path}" if ckpt_path.exists()
                else "no checkpoint was saved before it")
        print(f"rnnlab: error: {one_line(exc)}; {kept}", file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        kept = (f"the last checkpoint is {ckpt_path}, after epoch {last_saved or start_epoch}; "
                "run the same command with --resume to continue" if ckpt_path.exists()
                else "no checkpoint was saved yet")
        newline = "\n" if sys.stderr.isatty() else ""  # a terminal echoed ^C mid-line
        print(f"{newline}interrupted; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if last_saved != tcfg.num_epochs:
        save(tcfg.num_epochs)
    if history:
        last = history[-1]
        val = f", validation {last['val_ppl']:.2f}" if last.get("val_ppl") is not None else ""
        print(f"perplexity {last['train_ppl']:.2f}{val}, {last['tokens_per_s']:,.0f} tokens/s "
              f"on {be.name}")
    print(predict(prefix, args.num_preds, be, cfg, params, vocab))
    if args.prefix is None and args.corpus in ("timemachine", "time_machine"):
        print(predict("traveller", args.num_preds, be, cfg, params, vocab))
    print(f"saved {ckpt_path}" + "".join(f"\nplot  {p}" for p in plots), flush=True)
    return 0


def cmd_generate(args) -> int:
    from .checkpoint import load_checkpoint
    from .generate import predict

    ckpt = load_checkpoint(args.checkpoint)
    if args.dtype is None:  # run the model in the dtype it was trained in
        args.dtype = str(next(iter(ckpt.params.values())).dtype)
    be = make_backend(args)
    strategy = args.strategy or ("sample" if args.temperature is not None or args.top_k is not None
                                 else "greedy")
    temperature = 1.0 if args.temperature is None else args.temperature
    if strategy == "greedy" and (args.temperature is not None or args.top_k is not None):
        raise ConfigError("--temperature and --top-k apply to --strategy sample, not greedy")
    if args.top_k is not None and args.top_k > len(ckpt.vocab):
        raise ConfigError(f"--top-k {args.top_k} is larger than the vocabulary of "
                          f"{len(ckpt.vocab)} tokens; use 1..{len(ckpt.vocab)}")
    params = be.from_numpy(ckpt.params)
    print(predict(args.prefix, args.num_preds, be, ckpt.model, params, ckpt.vocab,
                  strategy=strategy, temperature=temperature, top_k=args.top_k, seed=args.seed))
    return 0


def cmd_inspect(args) -> int:
    from .data import load_corpus, split_after
    from .inspect import available_cells, gradient_flow

    out = Path(args.out)
    if args.run is not None:
        plot_run_grad_norms(args.run, out, args.no_plot)
    cells = args.cells or list(available_cells())
    full, vocab = load_corpus(args.corpus, -1)
    train_corpus, probe = split_after(full, args.max_tokens, 0.2)
    if len(probe) < args.window + 2:  # a short text: probe the training tokens themselves
        probe = train_corpus
    print(f"gradient flow: loss on the last of {args.window} steps, H={args.hidden}, "
          f"{args.batch_size} windows of {args.corpus}; training {args.epochs} epochs "
          f"({args.optimizer}, lr {args.lr:g}) on {len(train_corpus):,} tokens", flush=True)
    header = (f"{'cell':<16}{'decay/step':>11}{'k=10':>10}{'k=50':>10}"
              + (f"{'decay/step':>13}{'k=10':>10}{'k=50':>10}{'ppl':>7}" if args.epochs else ""))
    print(" " * 16 + f"{'at initialisation':>31}" + (f"{'trained':>33}" if args.epochs else ""))
    print(header, flush=True)

    def row(label, f):
        def cols(n, which):
            r = n / n[0]  # relative to dL/dH_T
            at = lambda k: f"{r[k]:10.1e}" if k < len(r) else f"{'-':>10}"  # noqa: E731
            return f"{f.decay_per_step(which):11.3f}{at(10)}{at(50)}"
        line = f"{label:<16}{cols(f.init, 'init')}"
        if f.trained is not None:
            line += f"  {cols(f.trained, 'trained')}{f.train_ppl:7.2f}"
        print(line, flush=True)

    flows = gradient_flow(cells, train_corpus, probe, len(vocab), num_hiddens=args.hidden,
                          window=args.window, batch_size=args.batch_size, epochs=args.epochs,
                          optimizer=args.optimizer, lr=args.lr, forget_bias=args.forget_bias,
                          seed=args.seed, on_cell=row)
    for label, f in flows.items():
        if "mean_F_init" in f.extra:
            trained = (f", trained {f.extra['mean_F_trained']:.2f}"
                       if "mean_F_trained" in f.extra else "")
            print(f"{label}: mean forget gate F at initialisation "
                  f"{f.extra['mean_F_init']:.2f}{trained} (dL/dC shrinks by F per step back)")
    if not args.no_plot:
        from .plot import plot_gradient_flow

        path = plot_gradient_flow(flows, out / "gradient_flow.png", args.window, args.epochs)
        print(f"plot  {path}", flush=True)
    return 0


def plot_run_grad_norms(run, out: Path, no_plot: bool) -> None:
    """Summarise (and plot) a training run's per-batch gradient norms from its checkpoint."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(run)
    log = np.asarray(ckpt.arrays.get("grad_norms", np.zeros((0, 2)))).reshape(-1, 2)
    if not len(log):
        raise ConfigError(f"--run {run}: the checkpoint records no per-batch gradient norms "
                          "(it was not written by `rnnlab train`)")
    theta = float(ckpt.train.get("clip_theta", 1.0))
    x, norms = log[:, 0], log[:, 1]
    print(f"{run}: {len(norms)} batches over {ckpt.epoch} epochs; gradient norm before "
          f"clipping: median {np.median(norms):.3f}, max {norms.max():.3f}; "
          f"{100 * np.mean(norms > theta):.0f}% of batches clipped at theta = {theta:g}")
    if not no_plot:
        from .plot import plot_grad_norms

        m = ckpt.model
        path = plot_grad_norms(x, norms, theta, out / "grad_norm.png",
                               title=f"{m.cell}, H={m.num_hiddens}: {run}")
        print(f"plot  {path}", flush=True)


def cmd_gradcheck(args) -> int:
    from .backend import get_backend
    from .gradcheck import gradcheck, random_problem

    cfg = ModelConfig(args.cell, args.vocab, args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, bidirectional=args.bidirectional)
    options = {"dtype": "float64"}
    if args.backend == "torch":
        options.update(device="cpu", impl=args.impl)
    be = get_backend(args.backend, **options)
    params, X, Y, state, weights = random_problem(cfg, args.batch_size, args.num_steps, args.seed)
    result = gradcheck(be, cfg, params, X, Y, state, weights)
    print(f"gradcheck {cfg.cell} on {args.backend}: V={cfg.vocab_size} H={cfg.num_hiddens} "
          f"B={args.batch_size} T={args.num_steps} layers={cfg.num_layers}, float64, h=1e-5")
    width = max(len(k) for k in result.errors)
    for name, err in result.errors.items():
        flag = "" if err <= args.tol else "   <-- above tolerance"
        print(f"  {name:<{width}}  {err:.2e}{flag}")
    ok = result.worst <= args.tol
    print(f"worst relative error {result.worst:.2e} ({'ok' if ok else 'FAILED'}, tolerance {args.tol:g})")
    return 0 if ok else 1


def cmd_memory(args) -> int:
    from .memory import estimate_memory, measure_numpy_step

    cfg = ModelConfig(args.cell, args.vocab, args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, bidirectional=args.bidirectional)
    print(f"one BPTT training step of {cfg.cell} (V={cfg.vocab_size}, H={cfg.num_hiddens}, "
          f"layers={cfg.num_layers}{', bidirectional' if cfg.bidirectional else ''}) on a "
          f"batch of B={args.batch_size} x T={args.num_steps}, {args.dtype}, {args.optimizer}:")
    for backend in ([args.backend] if args.backend else ["numpy", "torch"]):
        est = estimate_memory(cfg, args.batch_size, args.num_steps, backend=backend,
                              optimizer=args.optimizer, dtype=args.dtype, impl=args.impl)
        print(f"{est.backend}")
        print(est.table())
        if args.measure and backend == "numpy":
            peak = measure_numpy_step(cfg, args.batch_size, args.num_steps, args.dtype)
            print(f"  {'measured step peak (tracemalloc)':44s} {peak / 2**20:10.2f} MiB "
                  f"({est.step_peak / peak - 1:+.1%} predicted)")
    return 0


def check_run_dir(out: Path) -> None:
    """The run directory exists (made if needed) and a file can be written in it."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {str(out)!r}: cannot write a checkpoint there "
                          f"({exc.strerror or exc})") from None


def main(argv=None) -> int:
    """Run the command; every failure is one line on stderr and an exit status:
    2 an rnnlab error or an OS error (disk full...), 3 a NaN / infinite run, 130 Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.explicit = explicit_options(argv)  # what was typed: --resume checks it
    try:
        # rnnlab checks losses, norms and parameters itself and names the epoch and batch;
        # NumPy's overflow warnings would only add lines to stderr
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return args.func(args)
    except RnnlabError as exc:
        print(f"rnnlab: error: {one_line(exc)}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rnnlab generate ... | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # silence the flush
        return 0
    except OSError as exc:  # a full disk or a vanished directory while saving
        print(f"rnnlab: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (MemoryError, RuntimeError) as exc:  # --hidden 100000000: NumPy's MemoryError,
        if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):  # torch's (CPU/CUDA)
            raise  # any other RuntimeError is a bug: keep its traceback
        print(f"rnnlab: error: out of memory ({one_line(exc)[:200]}); use a smaller --hidden, "
              "--batch-size, --num-steps or --num-layers", file=sys.stderr)
        return EXIT_ERROR


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's allocation failures: torch.OutOfMemoryError (CUDA) or the CPU allocator's."""
    text = str(exc)
    return (type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text
            or "can't allocate memory" in text)


if __name__ == "__main__":
    sys.exit(main())
