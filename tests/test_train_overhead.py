"""`rnnlab train` adds little to the training loop: the plots are redrawn only while they
take at most 1% of the run (always at the end), the progress bar is drawn at tqdm's
pace, not once more per batch, and the best epoch is written with the checkpoints, not
after every epoch that improves."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint
from rnnlab.cli import run_writer, train as cli_train
from rnnlab.cli.run_writer import PlotClock

TINY = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
        "--no-progress", "--num-preds", "5", "--cell", "rnn"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def test_plot_clock_keeps_drawing_under_its_share(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(run_writer.time, "perf_counter", lambda: now[0])
    clock = PlotClock(share=0.01, first_guess_s=0.5)
    now[0] += 10.0  # 10 s in: a 0.5 s drawing would be 5% of the run
    assert not clock.due()
    now[0] += 40.0  # 50 s in: 0.5 s is 1%
    assert clock.due()
    with clock.drawing():
        now[0] += 0.8  # the drawing took 0.8 s
    assert clock.spent == pytest.approx(0.8) and clock.last == pytest.approx(0.8)
    assert not clock.due()  # 1.6 s of drawing in 50.8 s would be 3%
    now[0] = 100.0 + 161.0  # 1.6 s in 161 s is under 1%
    assert clock.due()


def count_drawings(monkeypatch):
    pytest.importorskip("matplotlib")
    import rnnlab.plot

    drawn = []
    real = rnnlab.plot.plot_perplexity

    def counting(history, path, **kwargs):
        drawn.append(len(history))
        return real(history, path, **kwargs)

    monkeypatch.setattr(rnnlab.plot, "plot_perplexity", counting)
    return drawn


def test_a_short_run_draws_its_plots_once_at_the_end(capsys, tmp_path, monkeypatch):
    drawn = count_drawings(monkeypatch)
    code = cli.main(["train", "--epochs", "4", "--checkpoint-every", "1", "--out",
                     str(tmp_path / "run"), *TINY])
    capsys.readouterr()
    assert code == 0
    assert drawn == [4]  # not after epochs 1-3: drawing would be most of this run's time
    assert (tmp_path / "run" / "perplexity.png").stat().st_size > 1000


def test_plots_follow_the_checkpoints_when_they_are_cheap(capsys, tmp_path, monkeypatch):
    drawn = count_drawings(monkeypatch)
    monkeypatch.setattr(run_writer, "PlotClock", lambda: PlotClock(share=1e9))
    code = cli.main(["train", "--epochs", "4", "--checkpoint-every", "2", "--out",
                     str(tmp_path / "run"), *TINY])
    capsys.readouterr()
    assert code == 0
    assert drawn == [2, 4]  # with every checkpoint


def test_the_bar_is_not_redrawn_once_more_per_batch(capsys, tmp_path, monkeypatch):
    """set_postfix(refresh=True) would force a terminal write per batch; and the loss is
    formatted for the bar only when tqdm redraws it (every 0.1 s), not for every batch."""
    tqdm = pytest.importorskip("tqdm")
    calls = []
    real = tqdm.tqdm.set_postfix

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("refresh", True))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tqdm.tqdm, "set_postfix", spy)
    monkeypatch.setattr(cli_train.sys.stderr, "isatty", lambda: True, raising=False)
    argv = [a for a in TINY if a != "--no-progress"]
    code = cli.main(["train", "--epochs", "1", "--no-plot", "--out", str(tmp_path / "run"), *argv])
    capsys.readouterr()
    assert code == 0
    assert calls and not any(calls)
    assert len(calls) <= 4  # of 18 batches (a few ms each): the epoch's first, and redraws


def record_saves(monkeypatch) -> list:
    """(file name, epoch) of every checkpoint `rnnlab train` writes, in order."""
    saved = []
    real = run_writer.RunWriter.write

    def recording(self, files):  # [(path, snapshot)], renamed into place together
        real(self, files)
        saved.extend((Path(path).name, snap[0]) for path, snap in files)

    monkeypatch.setattr(run_writer.RunWriter, "write", recording)
    return saved


def test_the_best_epoch_is_written_with_the_checkpoints_not_every_epoch(capsys, tmp_path,
                                                                       monkeypatch):
    """Validation improves in most of the first epochs; best.safetensors is written with
    each checkpoint (before it, so a checkpoint's history never names a best epoch that
    best.safetensors lacks) and holds the best epoch, not once per improving epoch."""
    saved = record_saves(monkeypatch)
    out = tmp_path / "run"
    code = cli.main(["train", "--epochs", "6", "--checkpoint-every", "3", "--no-plot",
                     "--lr", "2", "--out", str(out), *TINY])
    capsys.readouterr()
    assert code == 0
    latest = load_checkpoint(out)
    vals = [h["val_ppl"] for h in latest.history]
    improved = [e for e in range(1, 7) if vals[e - 1] < min(vals[:e - 1], default=math.inf)]
    assert len(improved) >= 3, vals  # the property below is about a run that improves often
    assert [name for name, _ in saved if name == "best.safetensors"] != []
    assert len([1 for name, _ in saved if name == "best.safetensors"]) <= 2 < len(improved)
    for k, (name, epoch) in enumerate(saved):  # each best write goes with a checkpoint
        if name == "best.safetensors":
            assert saved[k + 1][0] == "checkpoint.safetensors" and epoch <= saved[k + 1][1]
    best = load_checkpoint(out / "best.safetensors")
    assert best.epoch == improved[-1]
    assert best.history == latest.history[:best.epoch]


def test_a_stopped_run_still_writes_its_best_epoch(capsys, tmp_path, monkeypatch):
    """Ctrl-C in epoch 4, before any checkpoint: best.safetensors still holds the best of
    the first three epochs, equal to what a run of three epochs keeps."""
    train_module = importlib.import_module("rnnlab.train")  # rnnlab.train is the function
    base = ["train", "--checkpoint-every", "10", "--no-plot", "--lr", "2", "--threads", "1",
            *TINY]
    assert cli.main([*base, "--epochs", "3", "--out", str(tmp_path / "three")]) == 0
    real = train_module.train_epoch

    def interrupted(*args, **kwargs):
        if args[6] == 3:  # the 0-based epoch: Ctrl-C during the fourth epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    code = cli.main([*base, "--epochs", "5", "--out", str(tmp_path / "cut")])
    capsys.readouterr()
    assert code == 130 and not (tmp_path / "cut" / "checkpoint.safetensors").exists()
    best = load_checkpoint(tmp_path / "cut" / "best.safetensors")
    ref = load_checkpoint(tmp_path / "three" / "best.safetensors")
    assert best.epoch == ref.epoch
    for name, value in ref.params.items():
        np.testing.assert_array_equal(best.params[name], value, err_msg=name)
