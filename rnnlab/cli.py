"""The ``rnnlab`` command: train, generate, gradcheck (and more, one subcommand each).

Every option maps one to one onto a field of ModelConfig / TrainConfig. Errors of
rnnlab's own types print one line on stderr and exit with status 2 (3 for a run that
stopped on a NaN / infinite loss); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .config import CELLS, GRU_FORMS, ModelConfig
from .errors import ConfigError, NonFiniteError, RnnlabError

EXIT_ERROR, EXIT_NONFINITE, EXIT_INTERRUPTED = 2, 3, 130


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


def add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="numpy: hand-written BPTT (default); torch: autograd, CPU or GPU")
    p.add_argument("--device", default=None,
                   help="torch backend only: cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend only: scratch (the seeds' equations) or nn "
                        "(torch.nn.RNN/LSTM/GRU with the same weights, cuDNN on GPU)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type of parameters and activations (default float32)")


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
    parser = argparse.ArgumentParser(
        prog="rnnlab",
        description="Recurrent language models with hand-written BPTT (NumPy) and autograd (PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a character-level model and save a checkpoint",
                       description="Train on The Time Machine (default) or any UTF-8 text file, "
                                   "printing perplexity and tokens/s; saves a checkpoint, a "
                                   "perplexity plot and a sample. Defaults are d2l's.")
    t.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    t.add_argument("--hidden", type=positive_int, default=256, help="hidden units H (default 256)")
    t.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    t.add_argument("--gru-form", choices=GRU_FORMS, default="d2l",
                   help="GRU reset gate: d2l (R*H)@W_hh, or torch R*(H@W_hh+b_hn) (default d2l)")
    t.add_argument("--dropout", type=fraction, default=0.0,
                   help="dropout between stacked layers, training only (default 0)")
    t.add_argument("--epochs", type=positive_int, default=500, help="epochs (default 500)")
    t.add_argument("--lr", type=positive_float, default=1.0, help="learning rate (default 1)")
    t.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="sgd",
                   help="sgd (d2l), adam (d2lzh seed) or adagrad (min-char-rnn) (default sgd)")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size B (default 32)")
    t.add_argument("--num-steps", type=positive_int, default=35,
                   help="BPTT window T: steps per batch, gradients truncated at its edges (default 35)")
    t.add_argument("--max-tokens", type=int, default=10_000,
                   help="use the first N tokens of the corpus; -1 for all (default 10000, as d2l)")
    t.add_argument("--random", action="store_true",
                   help="random partitioning (state reset every batch) instead of sequential "
                        "(state carried, gradients truncated)")
    t.add_argument("--clip", type=positive_float, default=1.0,
                   help="global gradient-norm clipping threshold theta (default 1)")
    t.add_argument("--seed", type=nonneg_int, default=0, help="seed for parameters and batching (default 0)")
    t.add_argument("--corpus", default="timemachine",
                   help="'timemachine' (found in $RNNLAB_DATA, the cache, or downloaded) or a "
                        "path to any UTF-8 text file, read character by character")
    t.add_argument("--val-fraction", type=fraction, default=0.0,
                   help="hold out this last fraction of the tokens for validation perplexity (default 0)")
    t.add_argument("--out", default=None,
                   help="run directory for checkpoint.safetensors and perplexity.png "
                        "(default runs/<cell>)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out; options must match the run")
    t.add_argument("--checkpoint-every", type=nonneg_int, default=10,
                   help="save a checkpoint every N epochs, and always at the end (0: end only)")
    t.add_argument("--sample-every", type=nonneg_int, default=0,
                   help="print a sample every N epochs (default 0: only at the end)")
    t.add_argument("--prefix", default=None,
                   help="prefix for samples (default 'time traveller' on the time machine)")
    t.add_argument("--num-preds", type=nonneg_int, default=50, help="characters per sample (default 50)")
    t.add_argument("--no-plot", action="store_true", help="do not write perplexity.png")
    t.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
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
    g.add_argument("--prefix", default="time traveller", help="text to warm up on")
    g.add_argument("--num-preds", type=nonneg_int, default=100, help="characters to generate (default 100)")
    g.add_argument("--strategy", choices=("greedy", "sample"), default=None,
                   help="greedy argmax, or sampling (default: greedy unless --temperature or "
                        "--top-k is given)")
    g.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature > 0 (default 1): lower is more conservative")
    g.add_argument("--top-k", type=int, default=None,
                   help="sample only among the k most likely characters (1 <= k <= vocab size)")
    g.add_argument("--seed", type=nonneg_int, default=0, help="sampling seed (default 0)")
    add_backend_options(g)
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("gradcheck", help="finite-difference check of a cell's gradients",
                       description="Compare the backend's gradients of every parameter and the "
                                   "initial state with central finite differences in float64, "
                                   "on random small shapes, and print the worst relative error "
                                   "per parameter.")
    c.add_argument("--cell", choices=CELLS, default="lstm", help="cell to check (default lstm)")
    c.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="backend (default numpy)")
    c.add_argument("--impl", choices=("scratch", "nn"), default="scratch", help="torch implementation")
    c.add_argument("--vocab", type=positive_int, default=5, help="vocabulary size V (default 5)")
    c.add_argument("--hidden", type=positive_int, default=4, help="hidden units H (default 4)")
    c.add_argument("--batch-size", type=positive_int, default=2, help="batch size B (default 2)")
    c.add_argument("--num-steps", type=positive_int, default=3, help="steps T (default 3)")
    c.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    c.add_argument("--gru-form", choices=GRU_FORMS, default="d2l", help="GRU form (default d2l)")
    c.add_argument("--bidirectional", action="store_true", help="check a bidirectional model")
    c.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random problem")
    c.add_argument("--tol", type=positive_float, default=1e-6,
                   help="fail (exit 1) if any relative error exceeds this (default 1e-6)")
    c.set_defaults(func=cmd_gradcheck)
    return parser


def default_prefix(corpus: str, vocab) -> str:
    if corpus in ("timemachine", "time_machine"):
        return "time traveller"
    return vocab.idx_to_token[1]  # the most frequent character


def cmd_train(args) -> int:
    from .checkpoint import Checkpoint, check_resume, load_checkpoint, resolve, save_checkpoint
    from .data import load_corpus, train_val_split
    from .generate import predict
    from .params import init_params
    from .train import TrainConfig, train

    corpus, vocab = load_corpus(args.corpus, args.max_tokens)
    tcfg = TrainConfig(num_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       num_steps=args.num_steps, max_tokens=args.max_tokens,
                       use_random_iter=args.random, clip_theta=args.clip,
                       optimizer=args.optimizer, seed=args.seed, val_fraction=args.val_fraction)
    cfg = ModelConfig(args.cell, len(vocab), args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, dropout=args.dropout)
    train_corpus, val_corpus = train_val_split(corpus, args.val_fraction)
    be = make_backend(args)
    out = Path(args.out or f"runs/{args.cell}")
    ckpt_path = out / "checkpoint.safetensors"
    prefix = args.prefix if args.prefix is not None else default_prefix(args.corpus, vocab)
    vocab.lookup_strict(list(prefix))  # fail now, not after 500 epochs

    history, start_epoch = [], 0
    params = be.from_numpy(init_params(cfg, seed=args.seed, dtype=args.dtype))
    optimizer = be.make_optimizer(tcfg.optimizer, params, tcfg.lr)
    if args.resume:
        if not ckpt_path.exists():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = load_checkpoint(ckpt_path)
        check_resume(ckpt, cfg, vocab, tcfg.to_dict())
        params = be.from_numpy(ckpt.params)
        optimizer = be.make_optimizer(tcfg.optimizer, params, tcfg.lr)
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        history, start_epoch = list(ckpt.history), ckpt.epoch
        print(f"resuming {ckpt_path} after epoch {start_epoch}", flush=True)
        if start_epoch >= tcfg.num_epochs:
            print(f"already trained for {start_epoch} epochs (--epochs {tcfg.num_epochs})")

    def save(epoch: int) -> None:
        state = optimizer.state_dict()
        state["name"] = tcfg.optimizer
        state["arrays"] = {k: np.asarray(v) for k, v in be.to_numpy(state["arrays"]).items()}
        save_checkpoint(ckpt_path, Checkpoint(
            model=cfg, params=be.to_numpy(params), vocab=vocab, epoch=epoch,
            train=tcfg.to_dict(), optimizer=state, history=history,
            rng={"scheme": "params: default_rng(seed); epoch e batches: default_rng([seed, e])",
                 "seed": tcfg.seed},
            extra={"corpus": args.corpus, "backend": be.name}))
        if not args.no_plot and history:
            try:
                from .plot import plot_perplexity

                plot_perplexity(history, out / "perplexity.png",
                                title=f"{cfg.cell}, H={cfg.num_hiddens}, {args.corpus}")
            except ImportError:
                pass

    bar = None

    def on_batch(epoch, i, n, loss, norm):
        nonlocal bar
        if args.no_progress or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        if bar is None:
            bar = tqdm(total=n, desc=f"epoch {epoch + 1}", leave=False, unit="batch")
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(loss):.2f}", norm=f"{norm:.2f}")
        if i == n - 1:
            bar.close()
            bar = None

    def on_epoch(stats) -> None:
        history.append(stats.to_dict())
        e = stats.epoch
        if e % args.log_every == 0 or e == tcfg.num_epochs:
            val = f"  val ppl {stats.val_ppl:8.3f}" if stats.val_ppl is not None else ""
            print(f"epoch {e:4d}/{tcfg.num_epochs}  train ppl {stats.train_ppl:8.3f}{val}  "
                  f"{stats.tokens_per_s:10,.0f} tokens/s  grad norm {stats.grad_norm_mean:.3f}",
                  flush=True)
        if args.sample_every and e % args.sample_every == 0:
            print("  sample:", predict(prefix, args.num_preds, be, cfg, params, vocab), flush=True)
        if args.checkpoint_every and e % args.checkpoint_every == 0:
            save(e)

    print(f"training {cfg.cell} (H={cfg.num_hiddens}, layers={cfg.num_layers}) on "
          f"{len(train_corpus):,} tokens, vocab {len(vocab)}, backend {be.name} "
          f"({getattr(be, 'device', 'cpu')}, {args.dtype})", flush=True)
    try:
        train(be, cfg, params, train_corpus, tcfg,
              val_corpus=val_corpus if len(val_corpus) else None,
              start_epoch=start_epoch, optimizer=optimizer, on_epoch=on_epoch, on_batch=on_batch)
    except NonFiniteError as exc:
        print(f"rnnlab: error: {exc}; the last good checkpoint is kept at {ckpt_path}",
              file=sys.stderr)
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is at {ckpt_path} (resume with --resume)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    save(max(start_epoch, tcfg.num_epochs))
    if history:
        last = history[-1]
        print(f"perplexity {last['train_ppl']:.2f}, {last['tokens_per_s']:,.0f} tokens/s on {be.name}")
    print(predict(prefix, args.num_preds, be, cfg, params, vocab))
    if args.prefix is None and args.corpus in ("timemachine", "time_machine"):
        print(predict("traveller", args.num_preds, be, cfg, params, vocab))
    print(f"saved {ckpt_path}", flush=True)
    return 0


def cmd_generate(args) -> int:
    from .checkpoint import load_checkpoint
    from .generate import predict

    ckpt = load_checkpoint(args.checkpoint)
    be = make_backend(args)
    strategy = args.strategy or ("sample" if args.temperature is not None or args.top_k is not None
                                 else "greedy")
    temperature = 1.0 if args.temperature is None else args.temperature
    if strategy == "greedy" and (args.temperature is not None or args.top_k is not None):
        raise ConfigError("--temperature and --top-k apply to --strategy sample, not greedy")
    params = be.from_numpy(ckpt.params)
    print(predict(args.prefix, args.num_preds, be, ckpt.model, params, ckpt.vocab,
                  strategy=strategy, temperature=temperature, top_k=args.top_k, seed=args.seed))
    return 0


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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
