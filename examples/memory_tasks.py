"""Why gates and full BPTT matter: the adding problem or the copy task, across cells and
truncation lengths, with a table of the final held-out loss against the task's baseline.

    python examples/memory_tasks.py --task adding --length 50 --cells rnn irnn lstm gru
    python examples/memory_tasks.py --task adding --length 50 --cells lstm --truncate 5 25 --plot a.png
    python examples/memory_tasks.py --quick      # seconds: an LSTM on a short adding problem

The settings follow Le, Jaitly & Hinton (2015) where a CPU allows: one layer, gradient
clipping, the IRNN's W_hh started at the identity; they differ in the optimiser (Adam at
lr 0.01 here, SGD in the paper), the hidden size (--hidden, 100 in the paper) and the
number of updates (the paper trains for up to a million examples per run).
"""

from __future__ import annotations

import argparse
import time

import rnnlab
from rnnlab.errors import NonFiniteError
from rnnlab.tasks import make_task, train_task
from rnnlab.train import TrainConfig


def run(args, cell: str, truncate: int | None) -> tuple[list, float]:
    """Held-out loss per epoch and seconds of one training run."""
    task = make_task(args.task, args.examples, args.length, seed=args.seed)
    test = make_task(args.task, 500, args.length, seed=args.seed + 1)
    cfg = task.model_config(cell, args.hidden)
    be = rnnlab.get_backend(args.backend)
    # gated cells start from torch.nn's U(±1/√H); the rnn and the IRNN from d2l's and Le
    # et al.'s small normal weights (the IRNN's W_hh is the identity either way)
    init = "torch" if cell in ("lstm", "gru") else "d2l"
    params = be.from_numpy(rnnlab.init_params(cfg, seed=args.seed, init=init))
    tcfg = TrainConfig(num_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       optimizer="adam", clip_theta=1.0, seed=args.seed)
    start, losses = time.perf_counter(), []

    def on_epoch(s):
        losses.append(s.test_loss)
        if args.verbose:
            print(f"  {cell} truncate={truncate}: epoch {s.epoch} loss {s.test_loss:.4f}", flush=True)

    try:
        train_task(be, cfg, params, task, tcfg, test=test, truncate=truncate, on_epoch=on_epoch)
    except NonFiniteError as exc:  # the IRNN can blow up: reported as a result, not a crash
        print(f"  {cell} truncate={truncate}: {exc}", flush=True)
        losses.append(float("nan"))
    return losses, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("adding", "copy"), default="adding")
    p.add_argument("--length", type=int, default=50, help="T (default 50)")
    p.add_argument("--cells", nargs="+", default=["rnn", "irnn", "lstm", "gru"])
    p.add_argument("--truncate", type=int, nargs="*", default=[],
                   help="also train the first cell with these truncation lengths k")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--examples", type=int, default=2000, help="training examples")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--verbose", action="store_true", help="print every epoch's loss")
    p.add_argument("--plot", default=None, help="draw the curves and the baseline to this PNG")
    p.add_argument("--quick", action="store_true", help="a few seconds: lstm, T=10")
    args = p.parse_args()
    if args.quick:
        args.length, args.cells, args.hidden, args.epochs, args.examples = 10, ["lstm"], 16, 15, 1000
        args.task, args.truncate = "adding", []
    baseline = make_task(args.task, 1, args.length).baseline
    print(f"{args.task}, T={args.length}: baseline {baseline:.4f}")
    rows = [(cell, None) for cell in args.cells] + [(args.cells[0], k) for k in args.truncate]
    print("| cell | truncate | final loss | / baseline | seconds |")
    print("| --- | --- | --- | --- | --- |")
    results, curves = {}, {}
    for cell, k in rows:
        losses, seconds = run(args, cell, k)
        loss = results[cell, k] = losses[-1]
        curves[cell if k is None else f"{cell} truncate={k}"] = losses
        print(f"| {cell} | {k or 'none'} | {loss:.4f} | {loss / baseline:.2f} | {seconds:.0f} |",
              flush=True)
    if args.plot:
        from rnnlab.plot import plot_task_losses  # matplotlib only when a plot is asked for

        print("drew", plot_task_losses(curves, baseline, args.plot,
                                       f"{args.task}, T={args.length}, H={args.hidden}"))
    if args.quick:  # the gated cell must have learned the task
        assert results["lstm", None] < 0.25 * baseline, results
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
