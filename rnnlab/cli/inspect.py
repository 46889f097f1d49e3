"""``rnnlab inspect``: vanishing gradients, ||dL/dH_t|| per step, and a run's gradient norms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..config import CELLS, OPTIMIZERS, ModelConfig
from ..data import load_corpus, split_after
from ..errors import ConfigError
from ..gradient_reach import (
    INSPECT_CELLS,
    available_cells,
    check_gradient_flow_inputs,
    explain,
    gradient_flow,
)
from ..memory import check_training_fits
from .common import add_threads_option, finite_float, nonneg_int, positive_float, positive_int
from .run_writer import check_plots_are_ours


def add_parser(sub) -> None:
    """Register ``rnnlab inspect`` on the subcommand parsers ``sub``."""
    i = sub.add_parser("inspect", help="see vanishing gradients: ||dL/dH_t|| per step for "
                                       "rnn, lstm, gru (and irnn); gradient norms of a run",
                       description="Put the loss on the last prediction of a long window and "
                                   "plot how the gradient reaching the hidden state k steps "
                                   "back, ||dL/dH_{T-k}||, shrinks with k, for every cell on "
                                   "the same text: at d2l's initialisation and after a short "
                                   "training. Writes gradient_flow.png in --out and prints the "
                                   "decay per step. With --run, also plots that training "
                                   "run's gradient norm per batch before and after clipping.")
    i.add_argument("--cells", nargs="+", choices=CELLS, default=None, metavar="CELL",
                   help="cells to compare, from rnn lstm gru irnn (default: rnn lstm gru)")
    i.add_argument("--window", type=positive_int, default=100,
                   help="steps T of the probe windows; the loss is on the last one (default 100)")
    i.add_argument("--hidden", type=positive_int, default=64, help="hidden units H (default 64)")
    i.add_argument("--batch-size", type=positive_int, default=16,
                   help="probe windows averaged over, B (default 16)")
    i.add_argument("--epochs", type=nonneg_int, default=20,
                   help="epochs of training for the second panel; 0 for initialisation only "
                        "(default 20)")
    i.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="optimiser for that training (default adam: it gets far in few epochs)")
    i.add_argument("--lr", type=positive_float, default=0.01, help="its learning rate (default 0.01)")
    i.add_argument("--forget-bias", type=finite_float, default=3.0,
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
    add_threads_option(i)
    i.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    if args.window < 2:  # the decay per step back is a ratio of two steps' gradients
        raise ConfigError(f"--window {args.window}: the gradient's decay per step back needs a "
                          "window of at least 2 steps (default 100)")
    out = Path(args.out)
    if not args.no_plot:  # a PNG of the user's under one of the names drawn here stays
        check_plots_are_ours(out, ["gradient_flow.png"]
                             + (["grad_norm.png"] if args.run is not None else []), "inspect")
    if args.run is not None:
        plot_run_grad_norms(args.run, out, args.no_plot)
    cells = args.cells or [c for c in INSPECT_CELLS if c in available_cells()]
    full, vocab = load_corpus(args.corpus, -1)
    train_corpus, probe = split_after(full, args.max_tokens, 0.2)
    if len(probe) < args.window + 2:  # a short text: probe the training tokens themselves
        probe = train_corpus
    check_gradient_flow_inputs(len(train_corpus), len(probe), args.window, args.epochs)
    for cell in cells:  # the probes' BPTT and the training, refused with the number if too big
        check_training_fits(ModelConfig(cell, len(vocab), args.hidden), args.batch_size,
                            args.window, optimizer=args.optimizer, dtype="float64",
                            hint="use a smaller --hidden, --batch-size or --window")
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
        elif "diverged" in f.extra:  # its panel shows the initialisation alone
            line += f"  training diverged: {f.extra['diverged']}"
        print(line, flush=True)

    flows = gradient_flow(cells, train_corpus, probe, len(vocab), num_hiddens=args.hidden,
                          window=args.window, batch_size=args.batch_size, epochs=args.epochs,
                          optimizer=args.optimizer, lr=args.lr, forget_bias=args.forget_bias,
                          seed=args.seed, on_cell=row, threads=args.threads)
    for label, f in flows.items():
        if "mean_F_init" in f.extra:
            trained = (f", trained {f.extra['mean_F_trained']:.2f}"
                       if "mean_F_trained" in f.extra else "")
            print(f"{label}: mean forget gate F at initialisation "
                  f"{f.extra['mean_F_init']:.2f}{trained} (dL/dC shrinks by F per step back)")
    print("\n".join(explain(flows)), flush=True)
    if not args.no_plot:
        from ..plot import plot_gradient_flow  # lazy: matplotlib, only when drawing

        path = plot_gradient_flow(flows, out / "gradient_flow.png", args.window, args.epochs)
        print(f"plot  {path}", flush=True)
    return 0


def plot_run_grad_norms(run, out: Path, no_plot: bool) -> None:
    """Summarise (and plot) a training run's per-batch gradient norms from its checkpoint."""
    ckpt = load_checkpoint(run)
    log = np.asarray(ckpt.arrays.get("grad_norms", np.zeros((0, 2)))).reshape(-1, 2)
    if not len(log):
        raise ConfigError(f"--run {run}: the checkpoint records no per-batch gradient norms "
                          "(it was not written by `rnnlab train`)")
    theta = ckpt.train.get("clip_theta", 1.0)
    theta = float("inf") if theta is None else float(theta)  # None: the run did not clip
    x, norms = log[:, 0], log[:, 1]
    print(f"{run}: {len(norms)} batches over {ckpt.epoch} epochs; gradient norm before "
          f"clipping: median {np.median(norms):.3f}, max {norms.max():.3f}; "
          + (f"{100 * np.mean(norms > theta):.0f}% of batches clipped at theta = {theta:g}"
             if np.isfinite(theta) else "no clipping"))
    if not no_plot:
        from ..plot import plot_grad_norms  # lazy: matplotlib, only when drawing

        m = ckpt.model
        path = plot_grad_norms(x, norms, theta, out / "grad_norm.png",
                               title=f"{m.cell}, H={m.num_hiddens}: {run}")
        print(f"plot  {path}", flush=True)

