"""`rnnlab train` adds little to the training loop: the plots are redrawn only while they
take at most 1% of the run (always at the end), and the progress bar is drawn at tqdm's
pace, not once more per batch."""

from __future__ import annotations

import pytest

from rnnlab import cli
from rnnlab.cli import train as cli_train
from rnnlab.cli.train import PlotClock

TINY = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
        "--no-progress", "--num-preds", "5", "--cell", "rnn"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def test_plot_clock_keeps_drawing_under_its_share(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(cli_train.time, "perf_counter", lambda: now[0])
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
    monkeypatch.setattr(cli_train, "PlotClock", lambda: PlotClock(share=1e9))
    code = cli.main(["train", "--epochs", "4", "--checkpoint-every", "2", "--out",
                     str(tmp_path / "run"), *TINY])
    capsys.readouterr()
    assert code == 0
    assert drawn == [2, 4]  # with every checkpoint


def test_the_bar_is_not_redrawn_once_more_per_batch(capsys, tmp_path, monkeypatch):
    """set_postfix(refresh=True) would force a terminal write per batch."""
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
