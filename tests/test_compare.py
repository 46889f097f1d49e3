"""``rnnlab compare``: several runs' perplexity curves in one picture, read from their
checkpoints; bad runs and outputs are refused in tests/test_bad_input.py (cli-compare-*)."""

from __future__ import annotations

import re

import pytest

from cli_run import run
from rnnlab.checkpoint import load_checkpoint

pytest.importorskip("matplotlib")

TINY = ["--max-tokens", "600", "--batch-size", "4", "--num-steps", "8", "--no-plot",
        "--no-progress", "--num-preds", "3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, time_machine_dir):
    """Three short runs: rnn H=8 for 3 epochs, lstm H=12 for 4, gru H=8 for 2 epochs."""
    import os

    old = os.environ.get("RNNLAB_DATA")
    os.environ["RNNLAB_DATA"] = str(time_machine_dir)
    from rnnlab import cli

    folder = tmp_path_factory.mktemp("runs")
    try:
        for cell, hidden, epochs in (("rnn", 8, 3), ("lstm", 12, 4), ("gru", 8, 2)):
            assert cli.main(["train", "--cell", cell, "--hidden", str(hidden), "--epochs",
                             str(epochs), *TINY, "--out", str(folder / cell)]) == 0
    finally:
        if old is None:
            os.environ.pop("RNNLAB_DATA")
        else:
            os.environ["RNNLAB_DATA"] = old
    return folder


def test_compare_draws_every_run_and_names_them(runs, tmp_path, capsys):
    out = tmp_path / "pictures" / "cells.png"  # its folder is created
    paths = [str(runs / c) for c in ("rnn", "lstm", "gru")]
    status, stdout, err = run(capsys, "compare", *paths, "--out", out)
    assert status == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = stdout.splitlines()
    assert lines[-1] == f"plot  {out}"
    for path, line, cell in zip(paths, lines, ("rnn", "lstm", "gru")):
        assert line.startswith(f"{path}  {cell} H=")  # one summary line per run, in order


def _figure(runs, names):
    from rnnlab.cli.compare import run_label
    from rnnlab.plot import compare_figure

    curves = []
    for name in names:
        ckpt = load_checkpoint(runs / name)
        curves.append((run_label(name, ckpt), ckpt.history))
    return compare_figure(curves, title="cells compared")


def test_the_figure_has_a_curve_and_a_legend_row_per_run(runs):
    import matplotlib.pyplot as plt

    fig = _figure(runs, ["rnn", "lstm", "gru"])
    try:
        val_ax, train_ax = fig.axes
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert [re.sub(r";.*", "", t) for t in legend] == [
            "rnn: rnn H=8, 3 epochs", "lstm: lstm H=12, 4 epochs", "gru: gru H=8, 2 epochs"]
        assert all("best validation" in t for t in legend)
        # training: one curve per run, as many points as epochs; validation: a curve and
        # the star of its best epoch
        assert [len(line.get_xdata()) for line in train_ax.get_lines()] == [3, 4, 2]
        assert len(val_ax.get_lines()) == 6
        colors = {line.get_color() for line in train_ax.get_lines()}
        assert len(colors) == 3  # one colour per run
        assert fig._suptitle.get_text() == "cells compared"
        assert val_ax.get_title() and train_ax.get_title()
        fig.canvas.draw()
        for ax in (val_ax, train_ax):  # whole epochs only, never 2.5
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
        # plain numbers on the log axis (20, 25), not 2×10¹ (mathtext: $...$)
        labels = [t.get_text() for t in val_ax.get_yticklabels(which="both") if t.get_text()]
        assert labels and all(re.fullmatch(r"[0-9.]+", s) for s in labels), labels
    finally:
        plt.close(fig)


def test_one_run_alone_is_drawn(runs, tmp_path, capsys):
    status, stdout, err = run(capsys, "compare", runs / "gru", "--out", tmp_path / "gru.png")
    assert status == 0, err
    assert (tmp_path / "gru.png").is_file()
    assert stdout.splitlines()[-1] == f"plot  {tmp_path / 'gru.png'}"


def test_a_refused_run_writes_no_picture(runs, tmp_path, capsys):
    """Every run is read before drawing: a bad one among good ones leaves no PNG."""
    out = tmp_path / "c.png"
    status, _, err = run(capsys, "compare", runs / "rnn", tmp_path / "nowhere", "--out", out)
    assert status == 2 and len(err) == 1 and "no run at" in err[0]
    assert not out.exists()


def test_compare_is_in_the_help(capsys):
    status, stdout, _ = run(capsys, "--help")
    assert status == 0 and re.search(r"^\s+compare\s+draw the perplexity curves", stdout, re.M)


def test_a_long_runs_perplexity_plot_ticks_whole_epochs(monkeypatch, tmp_path):
    """perplexity.png of `rnnlab train` over 20 epochs: ticks at whole epochs (never 2.5)."""
    import matplotlib.pyplot as plt

    from rnnlab import plot

    figures = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: figures.append(fig) or path)
    history = [{"epoch": e, "train_ppl": 20 / e ** 0.5, "val_ppl": 21 / e ** 0.4} for e in
               range(1, 21)]
    plot.plot_perplexity(history, tmp_path / "p.png")
    (ax,) = figures[0].axes
    figures[0].canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(figures[0])
