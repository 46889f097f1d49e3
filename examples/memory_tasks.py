"""Why gates and full BPTT matter: the adding problem or the copy task, across cells and
truncation lengths, with a table of the final held-out loss against the task's baseline.

    python examples/memory_tasks.py --task adding --length 50 --cells rnn irnn lstm gru
    python examples/memory_tasks.py --task adding --length 50 --cells lstm --truncate 5 25 --plot a.png
    python examples/memory_tasks.py --quick      # seconds: an LSTM on a short adding problem
    python examples/memory_tasks.py --table      # the fixed set of docs/memory_tasks.md, into it

``--table`` runs the named experiments of ``TABLE`` (both tasks, every cell, truncation
shorter and longer than the lag) and writes their table into docs/memory_tasks.md between
its ``memory-table`` marker comments; ``--only NAME...`` runs some of them and prints their
rows without writing. Each experiment is one training run of at most a few minutes on one
CPU core.

The settings follow Le, Jaitly & Hinton (2015) where a CPU allows: one layer, gradient
clipping, the IRNN's W_hh started at the identity; they differ in the optimiser (Adam
here, SGD in the paper), the hidden size (64 here, 100 in the paper) and the number of
updates (the paper trains for up to a million examples per run). docs/memory_tasks.md
lists both.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import rnnlab
from rnnlab.errors import NonFiniteError
from rnnlab.tasks import make_task, train_task
from rnnlab.train import TrainConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "memory_tasks.md"
START, END = "<!-- memory-table:start -->", "<!-- memory-table:end -->"
HEADER = ("| T | task | cell | truncate | final loss | / baseline | seconds | seed | settings |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


@dataclass(frozen=True)
class Experiment:
    """One training run: a task of lag ``length``, a cell, a truncation length (None: full
    BPTT), and the optimiser's settings."""

    task: str  # "adding" | "copy"
    length: int  # T
    cell: str
    truncate: int | None = None
    hidden: int = 64
    epochs: int = 30
    examples: int = 2000  # training examples; 500 more, another seed, are held out
    batch_size: int = 50
    lr: float = 0.01
    optimizer: str = "adam"
    clip: float = 1.0
    seed: int = 0

    @property
    def name(self) -> str:
        """``adding-100-lstm``, ``copy-20-gru-k21``, ``adding-100-irnn-lr0.001-seed1``,
        ``adding-100-irnn-sgd-e150``...: what differs from Adam at lr 0.01, 40 or 60 epochs."""
        name = f"{self.task}-{self.length}-{self.cell}"
        if self.truncate is not None:
            name += f"-k{self.truncate}"
        if self.optimizer != "adam":
            name += f"-{self.optimizer}"
        if self.lr != 0.01:
            name += f"-lr{self.lr:g}"
        if self.epochs not in (40, 60):  # the tasks' usual budgets below
            name += f"-e{self.epochs}"
        return name + (f"-seed{self.seed}" if self.seed else "")

    @property
    def init(self) -> str:
        # gated cells start from torch.nn's U(±1/√H); the rnn and the IRNN from d2l's and
        # Le et al.'s small normal weights (the IRNN's W_hh is the identity either way)
        return "torch" if self.cell in ("lstm", "gru") else "d2l"

    @property
    def settings(self) -> str:
        return (f"H={self.hidden}, {self.optimizer} lr {self.lr:g}, clip {self.clip:g}, "
                f"{self.epochs} epochs of {self.examples} (batch {self.batch_size}), "
                f"init {self.init}")


@dataclass
class Result:
    experiment: Experiment
    baseline: float
    losses: list = field(default_factory=list)  # held-out loss after every epoch
    seconds: float = 0.0
    diverged: str = ""  # the error, when the loss or the gradient became NaN or infinite

    @property
    def final(self) -> float:
        return self.losses[-1] if self.losses else float("nan")


def run_experiment(exp: Experiment, backend: str = "numpy", verbose: bool = False) -> Result:
    """Train ``exp``; its held-out loss after every epoch and the seconds it took. A run
    whose loss becomes NaN or infinite is a result (the IRNN can blow up), not a crash."""
    task = make_task(exp.task, exp.examples, exp.length, seed=exp.seed)
    test = make_task(exp.task, 500, exp.length, seed=exp.seed + 1)
    cfg = task.model_config(exp.cell, exp.hidden)
    be = rnnlab.get_backend(backend)
    params = be.from_numpy(rnnlab.init_params(cfg, seed=exp.seed, init=exp.init))
    tcfg = TrainConfig(num_epochs=exp.epochs, lr=exp.lr, batch_size=exp.batch_size,
                       optimizer=exp.optimizer, clip_theta=exp.clip, seed=exp.seed)
    result = Result(exp, task.baseline)

    def on_epoch(s):
        result.losses.append(s.test_loss)
        if verbose:
            print(f"  {exp.name}: epoch {s.epoch} loss {s.test_loss:.4f}", flush=True)

    start = time.perf_counter()
    try:
        train_task(be, cfg, params, task, tcfg, test=test, truncate=exp.truncate, on_epoch=on_epoch)
    except NonFiniteError as exc:
        result.diverged = str(exc)
        result.losses.append(float("nan"))
        if verbose:
            print(f"  {exp.name}: {exc}", flush=True)
    result.seconds = time.perf_counter() - start
    return result


def table_row(r: Result) -> str:
    e = r.experiment
    loss = "diverged" if r.diverged else f"{r.final:.4f}"
    ratio = "" if math.isnan(r.final) else f"{r.final / r.baseline:.2f}"
    return (f"| {e.length} | {e.task} | {e.cell} | {e.truncate or 'none'} | {loss} | {ratio} | "
            f"{r.seconds:.0f} | {e.seed} | {e.settings} |")


def markdown_table(results: list, backend: str = "numpy") -> str:
    """The table of ``results``, with the line that says how it was made."""
    baselines = sorted({(r.experiment.task, r.experiment.length, r.baseline) for r in results})
    said = "; ".join(f"{t} T={n}: {b:.4f}" for t, n, b in baselines)
    return "\n".join([
        (f"Made by `python examples/memory_tasks.py --table` on the {backend} backend, one "
         "thread per run, on a 2-core machine shared with other work (the seconds are "
         f"that machine's). Baselines: {said}."),
        "",
        HEADER,
        *(table_row(r) for r in results),
    ])


def write_table(path: Path, table: str) -> None:
    """Put ``table`` between the marker comments of ``path``, leaving the rest as it is."""
    text = Path(path).read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise SystemExit(f"{path} must hold one {START} and, after it, one {END}")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    Path(path).write_text(pattern.sub(lambda m: f"{START}\n{table}\n{END}", text),
                          encoding="utf-8")


def table_rows_of(text: str) -> list:
    """The rows between the markers of a page, as lists of cells (the tests read them)."""
    inside = text.split(START, 1)[1].split(END, 1)[0]
    rows = [line for line in inside.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


# The experiments of the table in docs/memory_tasks.md, in its order. The adding problem at
# T=100 and T=200 (the LSTM and the GRU at T=200: about 4 minutes each for 40 epochs on a
# shared 2-core machine, within the 10 minutes a run may take); the copy task at T=20
# (T + 20 = 40 steps), where the GRU learns in 60 epochs and the LSTM in a few hundred.
# Truncation shorter than the lag (adding: 10 steps, where the lags are 50 to 99 at T=100;
# copy: 21, every answer T + 10 = 30 steps after its symbol) and at least as long (adding:
# 100, the whole sequence; copy: 31, every symbol within reach of its answer). The IRNN
# rows after the first ones are the settings tried for it (docs/memory_tasks.md).
ADDING = {"task": "adding", "epochs": 40}
COPY = {"task": "copy", "length": 20, "epochs": 60}
CELLS = ("rnn", "irnn", "lstm", "gru")
TABLE = (
    *(Experiment(length=100, cell=c, **ADDING) for c in CELLS),
    *(Experiment(length=200, cell=c, **ADDING) for c in CELLS),
    Experiment(length=100, cell="lstm", truncate=10, **ADDING),
    Experiment(length=100, cell="lstm", truncate=100, **ADDING),
    Experiment(length=30, cell="irnn", **ADDING),
    Experiment(length=100, cell="irnn", lr=0.001, **ADDING),
    Experiment("adding", 100, "irnn", lr=0.0001, epochs=300),
    Experiment("adding", 100, "irnn", lr=0.0001, epochs=300, seed=1),
    Experiment("adding", 100, "irnn", optimizer="sgd", lr=0.01, epochs=100),
    *(Experiment(cell=c, **COPY) for c in ("rnn", "irnn", "gru")),
    Experiment("copy", 20, "lstm", epochs=200),
    *(Experiment(cell=c, truncate=21, **COPY) for c in CELLS),
    Experiment(cell="gru", truncate=31, **COPY),
)


def _run(args):  # one experiment in a worker process
    return run_experiment(*args)


def run_table(experiments, backend: str, verbose: bool, jobs: int = 1) -> list:
    """Every experiment's result, in their order; ``jobs`` runs that many at once (each
    on its own core: the seconds of a run are then those of a busier machine)."""
    args = [(e, backend, verbose) for e in experiments]
    if jobs == 1:
        results = []
        for a in args:
            results.append(_run(a))
            print(table_row(results[-1]), flush=True)
        return results
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(_run, a) for a in args]
        for f in as_completed(futures):
            print(table_row(f.result()), flush=True)
        return [f.result() for f in futures]


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
    p.add_argument("--table", action="store_true",
                   help="run the experiments of TABLE and write their table into --docs")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="with --table: run only these experiments, print, write nothing")
    p.add_argument("--docs", type=Path, default=DOCS, help="the page --table writes into")
    p.add_argument("--jobs", type=int, default=1, help="with --table: runs at once (default 1)")
    args = p.parse_args()
    if args.table:
        chosen = [e for e in TABLE if args.only is None or e.name in args.only]
        unknown = set(args.only or ()) - {e.name for e in TABLE}
        if unknown:
            p.error(f"no experiment named {', '.join(sorted(unknown))}; the names are "
                    f"{', '.join(e.name for e in TABLE)}")
        print(HEADER, flush=True)
        results = run_table(chosen, args.backend, args.verbose, args.jobs)
        if args.only is None:
            write_table(args.docs, markdown_table(results, args.backend))
            print("wrote", args.docs)
        return 0
    if args.quick:
        args.length, args.cells, args.hidden, args.epochs, args.examples = 10, ["lstm"], 16, 15, 1000
        args.task, args.truncate = "adding", []
    baseline = make_task(args.task, 1, args.length).baseline
    print(f"{args.task}, T={args.length}: baseline {baseline:.4f}")
    print(HEADER)
    results, curves = {}, {}
    for cell, k in [(cell, None) for cell in args.cells] + [(args.cells[0], k) for k in args.truncate]:
        r = run_experiment(Experiment(args.task, args.length, cell, k, args.hidden, args.epochs,
                                      args.examples, args.batch_size, args.lr, seed=args.seed),
                           args.backend, args.verbose)
        results[cell, k] = r.final
        curves[cell if k is None else f"{cell} truncate={k}"] = r.losses
        print(table_row(r), flush=True)
    if args.plot:
        from rnnlab.plot import plot_task_losses  # matplotlib only when a plot is asked for

        print("drew", plot_task_losses(curves, baseline, args.plot,
                                       f"{args.task}, T={args.length}, H={args.hidden}"))
    if args.quick:  # the gated cell must have learned the task
        assert results["lstm", None] < 0.25 * baseline, results
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
