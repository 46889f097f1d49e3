"""``rnnlab train --resume`` restores every option of the run (the RUN_OPTIONS registry).

A resume continues the run as it was started: options left out are the run's, not the
command line's defaults; an option that made the numbers and is given again must match;
an option that only shapes what comes next (epochs, checkpoint interval, plots, samples,
backend) may change. A checkpoint that does not record an option that made the numbers
is refused, naming it, never resumed with a default in its place.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

from cli_run import numbers, run
from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.cli import run_record

TINY = ["--hidden", "8", "--max-tokens", "600", "--no-progress"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def interrupt_at(monkeypatch, epoch0: int):
    """Ctrl-C at the start of 0-based epoch ``epoch0``."""
    train_module = importlib.import_module("rnnlab.train")
    real = train_module.train_epoch

    def interrupted(*args, **kwargs):
        if args[6] == epoch0:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)


def test_a_resume_keeps_the_runs_output_options(capsys, tmp_path, monkeypatch):
    """The issue's run: --checkpoint-every 1 and --no-plot, resumed with only --resume and
    --out. Every epoch is still saved (killed before epoch 4: epoch 3's checkpoint, not the
    default interval's), no PNG appears, and samples, log interval, prefix and length are
    the run's."""
    out = tmp_path / "run"
    first = ["train", "--cell", "rnn", "--batch-size", "4", "--num-steps", "10", "--epochs",
             "6", "--checkpoint-every", "1", "--no-plot", "--sample-every", "1", "--log-every",
             "2", "--prefix", "the", "--num-preds", "7", "--out", out, *TINY]
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        assert run(capsys, *first)[0] == 130
    assert load_checkpoint(out).epoch == 1
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        code, text, err = run(capsys, "train", "--resume", "--out", out)
    assert code == 130, err
    assert load_checkpoint(out).epoch == 3  # saved after epochs 2 and 3: the interval is 1
    assert not list(out.glob("*.png"))  # --no-plot is the run's
    samples = re.findall(r"sample: (.*)", text)
    assert len(samples) == 2 and all(s.startswith("the") and len(s) == 3 + 7 for s in samples)
    assert "epoch    2/6" in text and "epoch    3/6" not in text  # --log-every 2
    record = load_checkpoint(out).extra["options"]
    assert record["batch_size"] == 4 and record["num_steps"] == 10 and record["no_plot"] is True
    # the run finishes with the numbers of a run never interrupted
    assert run(capsys, "train", "--resume", "--out", out)[0] == 0
    assert run(capsys, *first[:-len(TINY) - 2], "--out", tmp_path / "straight", *TINY)[0] == 0
    assert numbers(out) == numbers(tmp_path / "straight")


def test_overridable_options_replace_the_recorded_ones(capsys, tmp_path):
    out = tmp_path / "run"
    base = ["train", "--cell", "rnn", "--batch-size", "4", "--num-steps", "8", "--out", out,
            *TINY]
    assert run(capsys, *base, "--epochs", "1", "--checkpoint-every", "1", "--no-plot")[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2",
                       "--checkpoint-every", "5", "--plot", "--log-every", "3")
    assert code == 0, err
    record = load_checkpoint(out).extra["options"]
    assert (record["epochs"], record["checkpoint_every"], record["no_plot"],
            record["log_every"]) == (2, 5, False, 3)
    assert (out / "perplexity.png").exists()
    # a run option given again with its own value is no conflict; with another, it is
    assert run(capsys, "train", "--resume", "--out", out, "--epochs", "3", "--num-steps", "8",
               "--dtype", "float32")[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "4", "--dtype",
                       "float64", "--max-tokens", "700", "--seed", "1")
    assert code == 2 and len(err) == 1
    for part in ("--dtype float64 (the checkpoint has float32)",
                 "--max-tokens 700 (the checkpoint has 600)", "--seed 1 (the checkpoint has 0)"):
        assert part in err[0], err


def _rewrite(path, **changes):
    """Save the checkpoint at ``path`` again with fields replaced (a valid digest)."""
    ckpt = load_checkpoint(path)
    for k, v in changes.items():
        setattr(ckpt, k, v)
    save_checkpoint(path, ckpt)


def test_a_checkpoint_without_train_metadata_is_not_resumed_with_defaults(capsys, tmp_path):
    """train = {} and no options record (a checkpoint from Python, or an old one): the
    run's B=4, T=10 cannot be known, so the resume names each missing option instead
    of training on with B=32, T=35; given on the command line, they are used."""
    out = tmp_path / "run"
    args = ["train", "--cell", "rnn", "--batch-size", "4", "--num-steps", "10", "--epochs", "1",
            "--out", out, *TINY]
    assert run(capsys, *args)[0] == 0
    ckpt = load_checkpoint(out)
    extra = {k: v for k, v in ckpt.extra.items() if k != "options"}
    _rewrite(out, train={}, extra=extra)
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2")
    assert code == 2 and len(err) == 1, err
    for flag, field in (("--batch-size", "train.batch_size"), ("--num-steps", "train.num_steps"),
                        ("--lr", "train.lr"), ("--seed", "train.seed")):
        assert f"{flag} (no {field})" in err[0], err
    assert "--hidden" not in err[0] and "--corpus" not in err[0]  # recorded elsewhere
    # partial: only what is missing is named
    _rewrite(out, train={k: v for k, v in ckpt.train.items() if k != "num_steps"}, extra=extra)
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2")
    assert code == 2 and "does not record --num-steps (no train.num_steps);" in err[0], err
    code, text, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2",
                          "--num-steps", "10")
    assert code == 0, err
    resumed = load_checkpoint(out)
    assert resumed.train["batch_size"] == 4 and resumed.train["num_steps"] == 10
    assert resumed.extra["options"]["batch_size"] == 4


@pytest.mark.parametrize("dest, value", [("checkpoint_every", "1"), ("no_plot", "yes"),
                                         ("batch_size", 0), ("lr", True), ("cell", "cnn"),
                                         ("prefix", 3), ("epochs", 2.5)])
def test_a_recorded_option_of_the_wrong_type_is_refused(capsys, tmp_path, dest, value):
    out = tmp_path / "run"
    assert run(capsys, "train", "--cell", "rnn", "--batch-size", "4", "--num-steps", "8",
               "--epochs", "1", "--out", out, *TINY)[0] == 0
    ckpt = load_checkpoint(out)
    _rewrite(out, extra={**ckpt.extra, "options": {**ckpt.extra["options"], dest: value}})
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2")
    flag = run_record.RUN_OPTIONS[dest].flag
    assert code == 2 and len(err) == 1, err
    assert f"the recorded {flag} is {value!r}, which is not a valid value" in err[0], err


def test_every_train_option_is_registered(monkeypatch):
    """An option in none of RUN_OPTIONS, INVOCATION_OPTIONS and TASK_OPTIONS (a memory
    task's, which no checkpoint records) stops the parser from being built, so a new
    option cannot be forgotten by --resume."""
    parser = cli.build_parser()  # builds: today every option is registered
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    dests = {a.dest for a in sub.choices["train"]._actions}
    assert dests == (set(run_record.RUN_OPTIONS) | run_record.INVOCATION_OPTIONS
                     | run_record.TASK_OPTIONS)
    monkeypatch.delitem(run_record.RUN_OPTIONS, "checkpoint_every")
    with pytest.raises(RuntimeError, match=r"\['checkpoint_every'\] are in none of RUN_OPTIONS"):
        cli.build_parser()


def test_the_options_record_holds_every_run_option(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", "--cell", "gru", "--batch-size", "4", "--num-steps", "8",
               "--epochs", "1", "--out", out, *TINY)[0] == 0
    record = load_checkpoint(out).extra["options"]
    assert set(record) == set(run_record.RUN_OPTIONS)
    assert record["cell"] == "gru" and record["hidden"] == 8 and record["no_progress"] is True
    assert np.isclose(record["val_fraction"], 0.1)
