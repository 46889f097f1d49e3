"""``rnnlab train --task adding|copy``: a cell on a long-range memory task, from the shell.

The experiment of ``rnnlab.tasks`` as a command: the examples are generated from
``--seed`` (``--examples`` to train on, 500 more held out, from the next seed), the loss
is read where the answer is, and every epoch line says the held-out loss against the
task's baseline, the loss of the best answer without memory. ``--reach-every N`` also
records, every N epochs on 50 of the held-out examples, how far back the gradient of the
task's loss reaches (``gradient_reach.loss_state_gradient_norms``), and the figure draws
it beside the loss.

The run folder holds ``metrics.json`` (every epoch, every reach record, the verdict) and
``task.png``, under the rules of a corpus run's folder (``run_writer``): one run at a
time (``RunLock``), nothing of the user's replaced without ``--overwrite``. A task run
writes no checkpoint: its models train in seconds to minutes, and it is not resumable.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from ..checkpoint import BEST_NAME, CHECKPOINT_NAME, atomic_write_bytes
from ..errors import EXIT_NONFINITE, ConfigError, NonFiniteError
from ..gradient_reach import loss_state_gradient_norms, relative_reach
from ..memory import check_training_fits
from ..params import init_params
from ..runlock import RunLock
from ..tasks import COPY_LENGTH, COPY_SYMBOLS, make_task, train_task
from ..threads import thread_tuner
from ..train import TrainConfig
from ..version import __version__
from .common import check_backend_options, check_run_dir, make_backend, one_line
from .run_record import TASK_OPTIONS
from .run_writer import (
    TASK_FIGURE,
    TASK_METRICS,
    TASK_RUN,
    check_plots_are_ours,
    first_missing,
    holds_task_run,
    path_kind,
    remove_empty,
)
from .signals import describe, interrupt_status, say

TEST_EXAMPLES = 500  # held-out examples, generated from --seed + 1
REACH_EXAMPLES = 50  # the first held-out examples: the fixed batch the reach is read on
TINY = 1e-8  # a gradient this much smaller than where the loss is read teaches nothing

# a task run's defaults where a corpus run's (d2l's) do not fit it: Adam at 0.01, as in
# examples/memory_tasks.py and the docs' tables; the others are the corpus run's
TASK_DEFAULTS = {"hidden": 64, "epochs": 20, "lr": 0.01, "optimizer": "adam", "batch_size": 50,
                 "examples": 2000, "reach_every": 1}
LENGTH_DEFAULTS = {"adding": 50, "copy": 10}

# the corpus run's options that cannot act on a task run, and why (one line each)
CANNOT_ACT = {
    ("corpus", "token", "min_freq", "max_tokens"):
        "a task's examples are generated from --seed, not read from a text",
    ("num_steps", "random"):
        "each example is one whole sequence of the task's steps from a zero state (cut "
        "its BPTT with --truncate k)",
    ("val_fraction", "val_every", "patience"):
        f"the held-out loss is measured after every epoch on {TEST_EXAMPLES} examples of "
        "its own",
    ("lr_decay", "lr_decay_after", "lr_schedule"):
        "a task run trains at a constant --lr",
    ("resume", "checkpoint_every"):
        "a task run writes no checkpoint, only its metrics and figure: there is nothing "
        "to resume",
    ("sample_every", "prefix", "num_preds"):
        "a task's model writes no text to sample",
    ("num_layers", "dropout"):
        "a task run trains one layer, the one the gradient reach is read on",
    ("dist_timeout",):
        "a task run trains in one process",
}


def check_task_options(args) -> None:
    """Refuse, with one line, an option that cannot act on a memory task, or a task
    option given to a corpus run."""
    explicit = getattr(args, "explicit", set())
    if args.task is None:
        given = [d for d in ("length", "truncate", "examples", "reach_every") if d in explicit]
        if given:
            flag = "--" + given[0].replace("_", "-")
            extra = (" (a text's BPTT is cut at the edges of its --num-steps windows)"
                     if given[0] == "truncate" else "")
            raise ConfigError(f"{flag} {getattr(args, given[0])} sets up a memory task: give "
                              f"--task adding or --task copy with it, or leave it out{extra}")
        return
    for dests, why in CANNOT_ACT.items():
        for dest in dests:
            if dest in explicit:
                raise ConfigError(f"--{dest.replace('_', '-')} cannot act with --task "
                                  f"{args.task}: {why}; leave it out")


def apply_task_defaults(args) -> None:
    """The task run's defaults for the options not given (see TASK_DEFAULTS)."""
    explicit = getattr(args, "explicit", set())
    for dest, value in TASK_DEFAULTS.items():
        if dest not in explicit:
            setattr(args, dest, value)
    if "length" not in explicit:
        args.length = LENGTH_DEFAULTS[args.task]


def resolve_task_init(init: str, cell: str) -> str:
    """``--init auto`` on a task: torch.nn's U(±1/√H) for the gated cells, d2l's small
    normal weights for rnn and irnn (whose W_hh starts at the identity either way)."""
    if init != "auto":
        return init
    return "torch" if cell in ("lstm", "gru") else "d2l"


def baseline_words(task) -> str:
    """What the baseline is, in words."""
    if task.name == "adding":
        return (f"baseline {task.baseline:.4f} = Var(u1 + u2) = 1/6, the squared error of always "
                "answering 1: the best a model without memory can do")
    return (f"baseline {task.baseline:.4f} = {COPY_LENGTH} log {COPY_SYMBOLS} / "
            f"{task.num_steps}, a uniform guess among the {COPY_SYMBOLS} symbols at the "
            f"{COPY_LENGTH} answers: the best a model without memory can do")


def verdict(cell: str, loss: float, baseline: float) -> str:
    """The run's result in one line: learned, part of the way, or stayed at the baseline."""
    ratio = loss / baseline
    share = f"{100 * ratio:.0f}%" if ratio >= 0.1 else f"{100 * ratio:.2g}%"
    if not math.isfinite(ratio):
        words = "the loss is not a number"
    elif ratio <= 0.1:
        words = "it learned the task"
    elif ratio > 1.5:  # (a run at the baseline wanders 10-20% around it)
        words = "above the baseline: it has not yet learned even the answer without memory"
    elif ratio >= 0.9:
        words = "it stayed at the baseline, and learned nothing a model without memory cannot"
    else:
        words = "below the baseline, but the task is not learned yet (more --epochs?)"
    return f"{cell} reached {loss:.4g}, {share} of the baseline {baseline:.4g}: {words}"


def reach_words(cell: str, epochs: list, reach: list, num_steps: int, truncate) -> list[str]:
    """What the reach picture shows, in words, read off the first and last records."""
    first, last = np.asarray(reach[0]), np.asarray(reach[-1])  # (T+1,) by steps back
    k = num_steps - 1  # H_1: the state that has read the first step only
    lines = [f"gradient reach ({cell}): after epoch {epochs[-1]} the gradient of the loss "
             f"reaches the first step ({k} steps before the last) at {last[k]:.1e} of its "
             "size where the loss is read"
             + (f", against {first[k]:.1e} at initialisation" if len(reach) > 1 else "")]
    small = np.flatnonzero(last[:num_steps] < TINY)  # the steps back below TINY, H_0 left out
    lines.append(f"  it falls below {TINY:.0e} of that size from {small[0]} steps back"
                 if len(small) else f"  it stays above {TINY:.0e} of that size all the way back")
    if truncate is not None:
        lines.append(f"  (the whole gradient; the updates, truncated at {truncate} steps, used "
                     f"only its first {truncate} steps back from each step the loss is read at)")
    return lines


def epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def check_task_out_folder(out: Path, overwrite: bool) -> None:
    """The run folder is rnnlab's to write a task run into: nothing but a file at its
    names, no corpus run's checkpoint beside it, and (without --overwrite) no earlier
    task run or PNG of the user's replaced."""
    where = f"--out {str(out)!r}"
    for name in (TASK_METRICS, TASK_FIGURE):
        kind = path_kind(out / name)
        if kind not in (None, "file"):
            raise ConfigError(f"{where}: {name} is {kind}, not a file rnnlab wrote, and the run "
                              "writes that name; move it away, or choose another --out")
    held = [n for n in (CHECKPOINT_NAME, BEST_NAME) if (out / n).exists()]
    if held:
        raise ConfigError(f"{where} holds {held[0]}, a text-corpus run, which a task run would "
                          "not replace but sit beside; choose another --out")
    if overwrite:
        return
    if holds_task_run(out):
        raise ConfigError(f"{where} already holds a task run ({TASK_METRICS}): add --overwrite "
                          "to start again in its place, or choose another --out")
    if (out / TASK_METRICS).exists():
        raise ConfigError(f"{where}: {TASK_METRICS} is not a task run's metrics, and the run "
                          "would replace it; move it away, choose another --out, or add "
                          "--overwrite")
    check_plots_are_ours(out, [TASK_FIGURE], "the run", ", or add --overwrite")


def run_task(args, launch) -> int:
    """``rnnlab train --task ...``; ``launch``: torchrun's, refused (one process)."""
    check_task_options(args)
    if launch is not None:
        raise ConfigError(f"--task {args.task} trains in one process: run it without torchrun")
    apply_task_defaults(args)
    if args.out is not None and not args.out.strip():
        raise ConfigError(f"--out is {args.out!r}, an empty name: give the run's folder, or "
                          f"leave --out out for runs/{args.task}-{args.cell}")
    if args.examples < args.batch_size:
        raise ConfigError(f"--examples {args.examples} is fewer than --batch-size "
                          f"{args.batch_size}: an epoch would have no batch")
    if args.task == "adding" and args.length < 2:
        raise ConfigError(f"--length {args.length}: the adding problem marks one step in each "
                          "half of its T steps, so T must be at least 2")
    task = make_task(args.task, args.examples, args.length, seed=args.seed)
    test = make_task(args.task, TEST_EXAMPLES, args.length, seed=args.seed + 1)
    if args.truncate is not None and args.truncate >= task.num_steps:
        raise ConfigError(f"--truncate {args.truncate} cuts nothing: the {args.task} task's "
                          f"sequences have {task.num_steps} steps (--length {args.length}); "
                          f"give k below {task.num_steps}, or leave it out for full BPTT")
    cfg = task.model_config(args.cell, args.hidden, gru_form=args.gru_form)
    check_backend_options(args.backend, args.impl, args.device, cfg.cell, cfg.gru_form)
    tcfg = TrainConfig(num_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       num_steps=task.num_steps, clip_theta=args.clip, optimizer=args.optimizer,
                       seed=args.seed, threads=args.threads)
    check_training_fits(cfg, tcfg.batch_size, task.num_steps, args.backend, tcfg.optimizer,
                        args.dtype, args.impl, hint="use a smaller --hidden, --batch-size or "
                                                    "--length")
    out = Path(args.out or f"runs/{args.task}-{args.cell}")
    lock, made = RunLock(out), first_missing(out)
    try:
        check_run_dir(out)
        lock.acquire()  # one run per folder, as a corpus run's (rnnlab.runlock)
        check_task_out_folder(out, args.overwrite)
        return _train(args, task, test, cfg, tcfg, out)
    finally:
        # a run that wrote nothing (refused, or stopped in its first epoch) leaves no
        # trace: its lock file goes, and the folders it made if still empty
        saved = (out / TASK_METRICS).exists()
        if lock.held and not saved:
            lock.path.unlink(missing_ok=True)
        lock.release()
        if made is not None and not saved:
            remove_empty(out, made)


def _train(args, task, test, cfg, tcfg, out: Path) -> int:
    be = make_backend(args)
    params = be.from_numpy(init_params(cfg, seed=args.seed, dtype=args.dtype,
                                       init=resolve_task_init(args.init, cfg.cell)))
    steps = task.num_steps
    cut = "full BPTT" if args.truncate is None else f"BPTT truncated at {args.truncate} steps"
    clip = "no clipping" if tcfg.clip_theta is None else f"clip {tcfg.clip_theta:g}"
    name = "the adding problem" if task.name == "adding" else "the copy task"
    print(f"training {cfg.cell} (H={cfg.num_hiddens}) on {name}, T={args.length} ({steps} "
          f"steps): {args.examples:,} examples, {TEST_EXAMPLES} held out; {cut}; "
          f"{tcfg.optimizer} lr {tcfg.lr:g}, {clip}; backend {be.name} "
          f"({getattr(be, 'device', 'cpu')}, {args.dtype})", flush=True)
    print(baseline_words(task), flush=True)
    every = args.reach_every
    if every:
        when = "every epoch" if every == 1 else f"every {every} epochs"
        print(f"reach: ||dL/dH_1|| / its largest where the loss is read, on {REACH_EXAMPLES} "
              f"held-out examples, {when} and at initialisation (float64)", flush=True)
    probe = slice(0, REACH_EXAMPLES)
    history, reach_epochs, reach_norms, reach_rel = [], [], [], []

    def record_reach(epoch: int) -> None:
        numpy_params = be.to_numpy(params)
        norms = loss_state_gradient_norms(cfg, numpy_params, test.X[probe], test.Y[probe],
                                          task.step_weights)  # (T+1,) by step
        reach_epochs.append(epoch)
        reach_norms.append(norms)
        reach_rel.append(relative_reach(norms, task.step_weights))  # (T+1,) by steps back

    def record(verdict_line: str | None = None, finished: bool = False) -> None:
        options = {d: getattr(args, d) for d in (
            "cell", "hidden", "gru_form", "epochs", "lr", "optimizer", "batch_size", "clip",
            "seed", "init", "backend", "device", "impl", "dtype", *sorted(TASK_OPTIONS))}
        data = {"rnnlab": __version__, "run": TASK_RUN, "task": task.name,
                "length": args.length, "num_steps": steps, "baseline": task.baseline,
                "test_examples": TEST_EXAMPLES, "options": options,
                "history": [vars(h) for h in history],
                "reach": {"examples": REACH_EXAMPLES, "epochs": reach_epochs,
                          "norms_by_step": [n.tolist() for n in reach_norms],
                          "relative_by_steps_back": [r.tolist() for r in reach_rel]},
                "verdict": verdict_line, "finished": finished}
        atomic_write_bytes(out / TASK_METRICS, json.dumps(data, indent=1).encode())

    def on_epoch(stats) -> None:
        history.append(stats)
        e = stats.epoch
        if every and (e % every == 0 or e == tcfg.num_epochs):
            record_reach(e)
        record()  # every epoch: a run stopped later keeps what it did
        if e % args.log_every == 0 or e == tcfg.num_epochs:
            reach = f"  reach {reach_rel[-1][steps - 1]:.1e}" if reach_epochs and \
                reach_epochs[-1] == e else ""
            share = stats.test_loss / task.baseline
            share = f"{share:.2f}" if share >= 0.1 else f"{share:.2g}"  # 0.0032, not 0.00
            print(f"epoch {e:4d}/{tcfg.num_epochs}  loss {stats.loss:.4f}  held-out "
                  f"{stats.test_loss:.4f} ({share} of the baseline)  grad norm "
                  f"{stats.grad_norm_mean:.3f}{reach}", flush=True)

    def draw() -> list:
        if args.no_plot or not history:
            return []
        from ..plot import plot_task_run  # lazy: matplotlib is optional

        label = cfg.cell if args.truncate is None else f"{cfg.cell} truncate={args.truncate}"
        title = (f"{cfg.cell}, H={cfg.num_hiddens}, {task.name} T={args.length}, {cut}, "
                 f"{tcfg.optimizer} lr={tcfg.lr:g}")
        try:
            return [plot_task_run({label: [h.test_loss for h in history]}, task.baseline,
                                  out / TASK_FIGURE, reach_epochs,
                                  np.array(reach_rel) if reach_rel else None, title=title)]
        except ImportError:  # matplotlib is optional: the metrics are written anyway
            print(f"note: matplotlib is not installed, so no {TASK_FIGURE}; pip install "
                  "matplotlib", file=sys.stderr, flush=True)
            return []

    with thread_tuner(tcfg.threads, be):  # auto: one thread, the fastest for models this small
        if every:
            record_reach(0)
        try:
            train_task(be, cfg, params, task, tcfg, test=test, truncate=args.truncate,
                       on_epoch=on_epoch)
        except NonFiniteError as exc:
            kept = (f"the metrics of the {epochs(len(history))} before it are in "
                    f"{out / TASK_METRICS}" if history else "no epoch finished")
            if history:
                draw()
            print(f"rnnlab: error: {one_line(exc)}; {kept}", file=sys.stderr)
            return EXIT_NONFINITE
        except KeyboardInterrupt as exc:
            kept = (f"the metrics of the {epochs(len(history))} done are in {out / TASK_METRICS} "
                    "(a task run is not resumable: run it again to train longer)" if history
                    else "no epoch finished")
            say(f"{describe(exc)}; {kept}")
            return interrupt_status(exc)
    final = history[-1].test_loss
    line = verdict(cfg.cell, final, task.baseline)
    record(line, finished=True)
    print(line)
    if reach_epochs:
        print("\n".join(reach_words(cfg.cell, reach_epochs, reach_rel, steps, args.truncate)))
    print(f"metrics {out / TASK_METRICS}" + "".join(f"\nplot    {p}" for p in draw()),
          flush=True)
    return 0
