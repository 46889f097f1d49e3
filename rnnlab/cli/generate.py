"""``rnnlab generate``: warm up on a prefix, then greedy or sampled decoding."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..checkpoint import BEST_NAME, CHECKPOINT_NAME, load_checkpoint, resolve
from ..errors import ConfigError, RnnlabError
from ..generate import check_num_preds, predict, prefix_ids
from ..runs import find_runs, run_prefix, run_tokenizer, runs_table, summary
from ..threads import thread_tuner
from .common import (
    add_backend_options,
    add_threads_option,
    decay_factor,
    make_backend,
    nonneg_float,
    nonneg_int,
    positive_int,
)
from .run_writer import same_run


def add_parser(sub) -> None:
    """Register ``rnnlab generate`` on the subcommand parsers ``sub``."""
    g = sub.add_parser("generate", help="generate text from a saved checkpoint",
                       description="Warm up on a prefix, then decode greedily (default) or by "
                                   "sampling with a temperature, top-k and/or top-p, seeded: the same "
                                   "seed gives the same text on either backend. The text goes "
                                   "to stdout; one line on stderr says which model and epoch "
                                   "it comes from. Given a folder of run directories, lists "
                                   "the runs inside.")
    g.add_argument("checkpoint", nargs="?", default="runs/lstm",
                   help="checkpoint file or run directory (default runs/lstm); a folder of run "
                        "directories (runs) lists them")
    g.add_argument("--which", choices=("best", "latest"), default=None,
                   help="of a run directory: best.safetensors, the epoch with the lowest "
                        "validation perplexity, or checkpoint.safetensors, the last epoch saved "
                        "(default: best when the run has one, else latest)")
    g.add_argument("--prefix", default=None,
                   help="text to warm up on (default: the run's own, train's --prefix). "
                        "Character-level: every character must be in the vocabulary; "
                        "word-level: cut into words as the corpus was, unknown words read "
                        "as <unk>")
    g.add_argument("--num-preds", type=nonneg_int, default=100,
                   help="tokens to generate: characters, or words for a word-level run "
                        "(default 100)")
    g.add_argument("--strategy", choices=("greedy", "sample"), default=None,
                   help="greedy argmax, or sampling (default: greedy unless --temperature, "
                        "--top-k or --top-p is given)")
    g.add_argument("--temperature", type=nonneg_float, default=None,
                   help="sampling temperature >= 0: the logits are divided by it, so below 1 "
                        "is more conservative, above 1 more adventurous; 0 is greedy, the "
                        "limit (default 1)")
    g.add_argument("--top-k", type=positive_int, default=None,
                   help="sample only among the k most likely tokens, 1 <= k <= vocabulary "
                        "size (default: all)")
    g.add_argument("--top-p", type=decay_factor, default=None,
                   help="nucleus sampling: sample only among the fewest most likely tokens "
                        "whose probabilities add up to p, 0 < p <= 1 (e.g. 0.9; default 1: all)")
    g.add_argument("--seed", type=nonneg_int, default=0,
                   help="sampling seed: the same seed gives the same text on either backend "
                        "(default 0)")
    g.add_argument("--allow-unk", action="store_true",
                   help="let decoding choose <unk> (the token of everything the vocabulary "
                        "left out); by default it is never generated")
    add_backend_options(g, dtype_default=None)
    add_threads_option(g)
    g.set_defaults(func=cmd_generate)


def choose_checkpoint(path: Path, which: str | None) -> Path:
    """The file ``--which`` picks in a run directory: best.safetensors (the default when
    it exists) or checkpoint.safetensors; a checkpoint file is taken as it is."""
    if not path.is_dir():
        if which is not None:
            raise ConfigError(f"--which {which} chooses a checkpoint of a run directory, and "
                              f"{path} is a file; give the run's directory, or leave --which out")
        return path
    best = path / BEST_NAME
    if best.exists() and not best.is_file():  # a folder there: not read as a run inside it
        raise ConfigError(f"{best} is {'a directory' if best.is_dir() else 'not a regular file'}"
                          ", not a checkpoint file; move it away, or use --which latest")
    if which == "best" and not best.exists():
        raise ConfigError(f"--which best: {path} has no {BEST_NAME} (the run had no validation "
                          "split, or has not validated yet); use --which latest")
    if which == "latest" or not best.exists():
        return path / CHECKPOINT_NAME
    return best


def check_same_run(folder: Path, best) -> None:
    """A run directory's best.safetensors belongs to the run of its checkpoint.safetensors
    (``same_run``). One left by another run (a run replaced with --overwrite and stopped
    before its first save) is refused; an unreadable latest checkpoint leaves nothing to
    compare with."""
    try:
        latest = load_checkpoint(folder / CHECKPOINT_NAME)
    except RnnlabError:
        return
    if not same_run(best, latest):
        def what(c):
            return f"{c.model.cell} H={c.model.num_hiddens} of {c.epoch} epochs"
        raise ConfigError(f"{folder / BEST_NAME} belongs to another run than "
                          f"{folder / CHECKPOINT_NAME} (its model is {what(best)}, the run's "
                          f"{what(latest)}); an earlier run left it: use --which latest, or "
                          f"delete {BEST_NAME}")


def cmd_generate(args) -> int:
    folder = Path(args.checkpoint)
    if folder.is_dir() and not (folder / CHECKPOINT_NAME).exists():
        if not find_runs(folder):
            raise ConfigError(f"{folder} holds no {CHECKPOINT_NAME} and no run directories "
                              "with one; give a run directory (runs/lstm) or a checkpoint file")
        print(runs_table(folder))
        print(f"generate from one of them: rnnlab generate {folder / '<run>'}")
        return 0
    check_num_preds(args.num_preds)  # 10**23 is refused now, not generated until killed
    args.checkpoint = str(choose_checkpoint(folder, args.which))
    ckpt = load_checkpoint(args.checkpoint)
    if Path(args.checkpoint) == folder / BEST_NAME:
        check_same_run(folder, ckpt)
    if args.dtype is None:  # run the model in the dtype it was trained in
        args.dtype = str(next(iter(ckpt.params.values())).dtype)
    be = make_backend(args, ckpt.model.cell, ckpt.model.gru_form, gru_form_option=False)
    sampling = (args.temperature, args.top_k, args.top_p)
    strategy = args.strategy or ("sample" if any(o is not None for o in sampling) else "greedy")
    temperature = 1.0 if args.temperature is None else args.temperature
    if strategy == "greedy" and any(o is not None for o in sampling):
        raise ConfigError("--temperature, --top-k and --top-p apply to --strategy sample, not "
                          "greedy")
    if args.top_k is not None and args.top_k > len(ckpt.vocab):
        raise ConfigError(f"--top-k {args.top_k} is larger than the vocabulary of "
                          f"{len(ckpt.vocab)} tokens; use 1..{len(ckpt.vocab)}")
    tokenizer = run_tokenizer(ckpt)
    prefix = args.prefix if args.prefix is not None else run_prefix(ckpt)
    unknown = prefix_ids(prefix, ckpt.vocab, tokenizer).unknown  # a bad prefix fails here
    params = be.from_numpy(ckpt.params)
    # stdout is the text alone; what it comes from goes to stderr
    print(f"{resolve(args.checkpoint)}: {summary(ckpt)}", file=sys.stderr)
    if args.prefix is None:  # the text on stdout starts with it: say where it ends
        print(f"prefix {prefix!r} (the run's; choose another with --prefix)", file=sys.stderr)
    if unknown:
        print(f"note: not in the vocabulary, read as <unk>: {', '.join(unknown)}",
              file=sys.stderr)
    with thread_tuner(args.threads, be) as tuner:
        # auto: time one step of the model (one token, batch 1) at each count
        one = be.tokens(np.zeros((1, 1), dtype=np.int64))  # (1, 1)
        tuner.calibrate(lambda: be.forward(ckpt.model, params, one, be.begin_state(ckpt.model, 1)))
        print(predict(prefix, args.num_preds, be, ckpt.model, params, ckpt.vocab,
                      strategy=strategy, temperature=temperature, top_k=args.top_k,
                      seed=args.seed, tokenizer=tokenizer, allow_unk=args.allow_unk,
                      top_p=args.top_p))
    return 0
