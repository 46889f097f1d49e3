"""Train the same model from the same initial parameters on both backends, side by side.

The NumPy backend computes gradients by hand-written BPTT, the torch backend by
autograd. Same seed, same batches, same clipping and SGD: the two loss curves agree to
float32 round-off (float64: to ~1e-12), epoch after epoch.

    python examples/compare_backends.py [--cell lstm] [--epochs 10] [--quick]
"""

from __future__ import annotations

import argparse

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.train import TrainConfig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--quick", action="store_true", help="a few seconds: tiny model and corpus")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden = 3, 16
    corpus, vocab = rnnlab.load_corpus("timemachine", 2000 if args.quick else 10_000)
    cfg = ModelConfig(args.cell, len(vocab), args.hidden)
    tcfg = TrainConfig(num_epochs=args.epochs, lr=1.0, batch_size=8 if args.quick else 32,
                       num_steps=35)
    init = rnnlab.init_params(cfg, seed=tcfg.seed, dtype=args.dtype)  # one set of numbers

    curves = {}
    for name in ("numpy", "torch"):
        options = {"device": "cpu"} if name == "torch" else {}
        be = rnnlab.get_backend(name, dtype=args.dtype, **options)
        params = be.from_numpy(init)
        curves[name] = [s.train_ppl for s in rnnlab.train(be, cfg, params, corpus, tcfg)]

    print(f"{args.cell}, H={args.hidden}, {args.dtype}: perplexity per epoch")
    print(f"{'epoch':>5}  {'numpy (BPTT)':>14}  {'torch (autograd)':>16}  {'rel. diff':>10}")
    worst = 0.0
    for e, (a, b) in enumerate(zip(curves["numpy"], curves["torch"]), 1):
        rel = abs(a - b) / abs(b)
        worst = max(worst, rel)
        print(f"{e:>5}  {a:>14.6f}  {b:>16.6f}  {rel:>10.1e}")
    tol = 1e-4 if args.dtype == "float32" else 1e-10
    print(f"largest relative difference {worst:.1e} ({'agree' if worst < tol else 'DISAGREE'})")
    return 0 if worst < tol else 1


if __name__ == "__main__":
    raise SystemExit(main())
