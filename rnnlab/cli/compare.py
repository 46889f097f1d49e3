"""``rnnlab compare``: the perplexity curves of several runs in one picture."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..errors import ConfigError
from ..runs import find_runs, summary


def add_parser(sub) -> None:
    """Register ``rnnlab compare`` on the subcommand parsers ``sub``."""
    c = sub.add_parser("compare", help="draw the perplexity curves of several runs in one PNG",
                       description="Read the history each run's checkpoint keeps and draw "
                                   "their validation and training perplexity per epoch side "
                                   "by side, one colour per run, the legend naming each "
                                   "run's cell, hidden size and epochs: rnn, lstm and gru "
                                   "trained on the same text, or one cell at two sizes. "
                                   "Prints one line per run and the PNG's path.")
    c.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories of rnnlab train (runs/rnn runs/lstm ...) or their "
                        "checkpoint files; one run alone is drawn too")
    c.add_argument("--out", default="compare.png",
                   help="the PNG to write (default compare.png); its folder is created")
    c.set_defaults(func=cmd_compare)


def check_run(run: str) -> Path:
    """The checkpoint of ``run`` (a run directory or a checkpoint file), or a one-line
    refusal naming what ``run`` is instead."""
    path = Path(run)
    if not path.exists():
        raise ConfigError(f"no run at {run}: give a run directory of rnnlab train (runs/lstm) "
                          "or a checkpoint file")
    if path.is_dir() and not (path / CHECKPOINT_NAME).exists():
        inside = find_runs(path)
        if inside:
            names = " ".join(str(p) for p in inside[:4]) + (" ..." if len(inside) > 4 else "")
            raise ConfigError(f"{run} is not a run but a folder of runs: name the runs to "
                              f"compare, rnnlab compare {names}")
        raise ConfigError(f"{run} is not a run: it holds no {CHECKPOINT_NAME}; give a run "
                          "directory of rnnlab train (runs/lstm) or a checkpoint file")
    return path


def check_out(out: str) -> Path:
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the PNG's file name ({out}/compare.png)")
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: the picture is a PNG; give a name ending in .png")
    return path


def run_label(run: str, ckpt) -> str:
    """'runs/lstm: lstm H=256, 2 layers, 500 epochs', the legend's name of a run."""
    m = ckpt.model
    layers = f", {m.num_layers} layers" if m.num_layers > 1 else ""
    epochs = len(ckpt.history)
    return f"{run.rstrip('/') or run}: {m.cell} H={m.num_hiddens}{layers}, {epochs} " \
           f"epoch{'s' if epochs != 1 else ''}"


def cmd_compare(args) -> int:
    out = check_out(args.out)
    curves = []
    for run in args.runs:  # every run is read before anything is drawn
        ckpt = load_checkpoint(check_run(run))
        history = [h for h in ckpt.history
                   if isinstance(h, dict) and isinstance(h.get("train_ppl"), (int, float))]
        if not history:
            raise ConfigError(f"{run}: its checkpoint records no epochs (it was not written by "
                              "rnnlab train, or before its first epoch); nothing to draw")
        curves.append((run_label(run, ckpt), history))
        print(f"{run}  {summary(ckpt)}", flush=True)
    from ..plot import plot_compare  # lazy: matplotlib, only when drawing

    try:
        path = plot_compare(curves, out, title="perplexity per epoch: "
                            + ", ".join(label.split(":")[0] for label, _ in curves))
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("matplotlib"):
            raise
        raise ConfigError("rnnlab compare draws with matplotlib, which is not installed: "
                          "pip install matplotlib") from None
    print(f"plot  {path}", flush=True)
    return 0
