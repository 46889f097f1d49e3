"""What ``rnnlab train`` writes into its run directory: the latest checkpoint,
``best.safetensors`` and the plots.

The best epoch so far is kept in memory (a copy of the parameters and the optimiser's
state, about 0.1 ms) and written with the next checkpoint, at the end, and when the run
stops (Ctrl-C, ``kill``, a diverged run), not after every epoch that improves: early in
a run that is every epoch, and a write (a few ms, more on a slow disk) costs several
percent of an epoch of d2l's model. ``best.safetensors`` is always written before the
latest checkpoint, so the history a checkpoint holds never names a best epoch that
``best.safetensors`` lacks, and a resume keeps it right.

A save stages both files (written and fsynced under temporary names) before it renames
either: a full disk leaves the folder as it was before that save, best model included.

The folder is rnnlab's only where it may be: ``check_out_folder`` refuses, before a run
starts, to write through a directory, a pipe or a link loop at one of the run's names,
to replace the best model of a run whose checkpoint is missing, or to replace a
``perplexity.png`` (``grad_norm.png``) that rnnlab did not draw, unless ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import time
from pathlib import Path

import numpy as np

from ..checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    Checkpoint,
    commit_staged,
    discard_staged,
    encode_checkpoint,
    load_checkpoint,
    stage_bytes,
)
from ..errors import ConfigError, RnnlabError, SaveError
from ..plot import PLOT_SOFTWARE

PLOT_NAMES = ("perplexity.png", "grad_norm.png")
TASK_METRICS, TASK_FIGURE = "metrics.json", "task.png"  # a memory-task run's files (train_task)
TASK_RUN = "memory task"  # metrics.json's "run": a file of rnnlab's, which a new run may replace


def path_kind(path: Path) -> str | None:
    """What is at ``path``, following links: None (nothing, or a dangling link, which a
    rename replaces), "file", or the words for what a run cannot use there."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return "file"
    return "a directory" if stat.S_ISDIR(mode) else "a pipe, device or socket"


def first_missing(out: Path) -> Path | None:
    """The outermost folder of out's path that does not exist yet, or None."""
    missing = None
    for folder in [out, *out.parents]:
        if folder.exists():
            return missing
        missing = folder
    return missing


def remove_empty(out: Path, made: Path) -> None:
    """rmdir out and its parents up to made, each only if empty (made by this run)."""
    for folder in [out, *out.parents]:
        try:
            folder.rmdir()
        except OSError:  # not empty (plots were written), or gone already
            return
        if folder == made:
            return


def drawn_by_rnnlab(path: Path) -> bool:
    """A PNG whose text chunk says rnnlab drew it (``rnnlab.plot`` marks every plot)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)  # matplotlib writes its text chunks before the image data
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + PLOT_SOFTWARE.encode() in head


def holds_task_run(out: Path) -> bool:
    """``out`` holds the metrics of a memory-task run (rnnlab train --task) as rnnlab
    writes them; a metrics.json of anything else is not one."""
    try:
        data = json.loads((out / TASK_METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("run") == TASK_RUN


def check_out_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written, a run folder rnnlab cannot write as its own.

    Every name the run writes must be absent or a regular file (a directory named
    ``best.safetensors`` would otherwise be written into). A new run without
    ``--overwrite`` replaces nothing that is not rnnlab's: not a ``best.safetensors``
    left without its checkpoint (a save stopped by a full disk), not a user's own
    ``perplexity.png``. (A checkpoint there is refused by the caller, with --resume.)"""
    where = f"--out {str(out)!r}"
    # (--resume reads the checkpoint first, and says what is wrong with it)
    for name in ((), (CHECKPOINT_NAME,))[not resume] + (BEST_NAME, *PLOT_NAMES):
        kind = path_kind(out / name)
        if kind not in (None, "file"):
            raise ConfigError(f"{where}: {name} is {kind}, not a file rnnlab wrote, and the run "
                              "writes that name; move it away, or choose another --out")
    if not resume and holds_task_run(out) and not (out / CHECKPOINT_NAME).exists():
        raise ConfigError(f"{where} holds {TASK_METRICS}, a memory-task run (rnnlab train "
                          "--task), which a corpus run would not replace but sit beside; "
                          "choose another --out")
    if resume or overwrite or (out / CHECKPOINT_NAME).exists():
        return
    if (out / BEST_NAME).exists():
        raise ConfigError(f"{where} holds {BEST_NAME}, the best model of an earlier run, without "
                          f"its {CHECKPOINT_NAME} (a save that failed or was stopped); `rnnlab "
                          f"generate {out / BEST_NAME}` still reads it: add --overwrite to start "
                          "a new run in its place, or choose another --out")
    check_plots_are_ours(out, PLOT_NAMES, "the run", ", or add --overwrite")


def check_plots_are_ours(out: Path, names, who: str = "rnnlab", fix: str = "") -> None:
    """Refuse to replace a PNG of these ``names`` in ``out`` that rnnlab did not draw, or
    to write through a directory or a link loop there."""
    where = f"--out {str(out)!r}"
    for name in names:
        kind = path_kind(out / name)
        if kind not in (None, "file"):
            raise ConfigError(f"{where}: {name} is {kind}, not a plot rnnlab drew; move it "
                              "away, or choose another --out")
    foreign = [n for n in names if (out / n).exists() and not drawn_by_rnnlab(out / n)]
    if foreign:
        one = len(foreign) == 1
        raise ConfigError(f"{where}: {' and '.join(foreign)} {'is' if one else 'are'} not a "
                          f"plot rnnlab drew, and {who} would replace {'it' if one else 'them'}; "
                          f"move {'it' if one else 'them'} away, choose another --out{fix}")


def same_run(a: Checkpoint, b: Checkpoint) -> bool:
    """Two checkpoints of one run: the same run id (checkpoints of older runs, without
    one: the same model, vocabulary, corpus and seed)."""
    ids = a.extra.get("run_id"), b.extra.get("run_id")
    if None not in ids:
        return ids[0] == ids[1]
    return (a.model == b.model and a.vocab == b.vocab and a.train.get("seed") == b.train.get("seed")
            and a.extra.get("corpus_sha256") == b.extra.get("corpus_sha256"))


def best_of_another_run(out: Path, ckpt: Checkpoint) -> bool:
    """``out``'s best.safetensors is readable and belongs to another run than ``ckpt``
    (a resumed run replaces it at its first save, with its own best or with none)."""
    try:
        return (out / BEST_NAME).is_file() and not same_run(load_checkpoint(out / BEST_NAME),
                                                            ckpt)
    except RnnlabError:  # unreadable: left alone, not judged
        return False


class PlotClock:
    """When the plots of a checkpoint are redrawn: while drawing them has taken at most
    ``share`` of the run's wall time (drawing two PNGs with matplotlib takes about half a
    second, several epochs of d2l's model), so on a long run they follow the checkpoints
    and on a short one they wait; the caller always draws them at the end."""

    def __init__(self, share: float = 0.01, first_guess_s: float = 0.5):
        self.share = share  # at most 1% of the wall time goes to drawing
        self.start = time.perf_counter()
        self.spent = 0.0  # seconds spent drawing so far
        self.last = first_guess_s  # the last drawing's seconds (a guess before the first)

    def due(self) -> bool:
        elapsed = time.perf_counter() - self.start
        return self.spent + self.last <= self.share * elapsed

    @contextlib.contextmanager
    def drawing(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.last = time.perf_counter() - t0
            self.spent += self.last


class RunWriter:
    """The files of one run directory, ``out``, written as the run goes.

    ``fields``: the checkpoint's fields that stay the same for the whole run (model,
    vocab, train, rng, extra). ``history`` and ``norm_log`` are the run's own lists, which
    only grow: a snapshot records their lengths, not copies. ``plot_title`` None: no
    plots (``--no-plot``). Only the process that owns ``out`` (rank 0) calls the methods
    that write; every process keeps ``last_saved``.
    """

    def __init__(self, out: Path, ckpt_path: Path, be, params: dict, optimizer,
                 optimizer_name: str, fields: dict, history: list, norm_log: list,
                 start_epoch: int, num_epochs: int, clip_theta, plot_title: str | None):
        self.out, self.ckpt_path = out, ckpt_path
        self.be, self.params = be, params
        self.optimizer, self.optimizer_name = optimizer, optimizer_name
        self.fields = fields
        self.history, self.norm_log = history, norm_log
        self.start_epoch, self.num_epochs = start_epoch, num_epochs
        self.clip_theta, self.plot_title = clip_theta, plot_title
        self.last_saved = None  # the epoch of this command's last checkpoint
        self.best_pending = []  # [the snapshot of a best epoch not yet in best.safetensors]
        self.plots = []  # the plots' paths, once drawn
        self.no_matplotlib = False
        self.plot_clock = PlotClock()  # the plots take under 1% of the run; always drawn at the end
        # --overwrite, or a resume beside another run's best.safetensors: that file goes
        # with this run's first save (not before: a save that fails leaves the folder as it was)
        self.stale_best = False

    def snapshot(self, epoch: int) -> tuple:
        """The run after ``epoch`` epochs, for a write now or later: copies of the
        parameters and the optimiser state, and the lengths of the history and of the
        gradient-norm log (both only grow)."""
        state = self.optimizer.state_dict()
        state["name"] = self.optimizer_name
        state["arrays"] = {k: np.asarray(v) for k, v in self.be.to_numpy(state["arrays"]).items()}
        return epoch, self.be.to_numpy(self.params), state, len(self.history), len(self.norm_log)

    def encode(self, snap: tuple) -> bytes:
        """The checkpoint file's bytes of a snapshot."""
        epoch, arrays, state, n_history, n_norms = snap
        norms = np.array(self.norm_log[:n_norms], dtype=np.float64).reshape(-1, 2)  # (n, 2)
        return encode_checkpoint(Checkpoint(params=arrays, epoch=epoch, optimizer=state,
                                            history=self.history[:n_history],
                                            arrays={"grad_norms": norms}, **self.fields))

    def write(self, files: list) -> None:
        """[(path, snapshot)], together: every file staged before any is renamed, so a
        failure (a full disk) leaves each of them as it was."""
        staged = []
        try:
            for path, snap in files:
                staged.append((stage_bytes(path, self.encode(snap)), path))
            while staged:
                tmp, path = staged[0]
                commit_staged(tmp, path)
                staged.pop(0)
        finally:
            for tmp, _ in staged:
                discard_staged(tmp)

    def keep_best(self, epoch: int) -> None:
        """The run after ``epoch`` is the best so far: kept, written with the next save."""
        self.best_pending[:] = [self.snapshot(epoch)]

    def best_files(self) -> list:
        return [(self.out / BEST_NAME, self.best_pending[0])] if self.best_pending else []

    def write_best(self) -> None:
        """best.safetensors, when a better epoch came since it was last written."""
        if self.best_pending:  # (cleared once written: a stop mid-write writes it again)
            self.write(self.best_files())
            self.best_pending.clear()
            self.stale_best = False

    def save(self, epoch: int, last: bool = False) -> None:
        """The run after ``epoch`` epochs to the latest checkpoint (the best epoch before
        it); the plots with it while they are cheap, always with the ``last``."""
        try:
            best = self.best_files()
            self.write(best + [(self.ckpt_path, self.snapshot(epoch))])
            self.best_pending.clear()
            if self.stale_best and not best:  # a replaced run's best model: not this run's
                (self.out / BEST_NAME).unlink(missing_ok=True)
            self.stale_best = False
        except SaveError as exc:  # a full disk: say what is kept and how to go on
            good = self.last_saved or self.start_epoch
            kept = ("the checkpoint" if exc.filename == str(self.ckpt_path)  # or best.safetensors
                    else f"and {self.ckpt_path.name}") + f" after epoch {good}"
            err = SaveError(
                f"{exc}" + (f" ({kept}); free some space, then run the same command with "
                            "--resume to continue from it" if good else
                            "; free some space and run the command again"))
            err.errno, err.strerror, err.filename = exc.errno, exc.strerror, exc.filename
            raise err from None
        if self.plot_title is not None and self.history and not self.no_matplotlib and (
                last or epoch == self.num_epochs or self.plot_clock.due()):
            self.draw()

    def draw(self) -> None:
        """perplexity.png, and grad_norm.png once there are gradient norms."""
        from ..plot import plot_grad_norms, plot_perplexity  # lazy: matplotlib is optional

        title = self.plot_title
        try:
            with self.plot_clock.drawing():
                self.plots[:] = [plot_perplexity(self.history, self.out / "perplexity.png",
                                                 title=title)]
                if self.norm_log:
                    x, n = zip(*self.norm_log)
                    self.plots.append(plot_grad_norms(x, n, self.clip_theta,
                                                      self.out / "grad_norm.png", title=title))
        except ImportError:  # matplotlib is optional: say so once, keep training
            self.no_matplotlib = True
            print("note: matplotlib is not installed, so no perplexity.png; "
                  "pip install matplotlib", file=sys.stderr, flush=True)
