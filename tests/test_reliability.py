"""Reliability of the command and the library on odd inputs: clipping switched off,
dropout on one layer, byte-order marks, special files as checkpoints, sizes too large
to allocate, a full disk, extreme temperatures, empty corpus names."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnlab
from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, train

TINY = ["--hidden", "8", "--max-tokens", "400", "--batch-size", "2", "--num-steps", "5",
        "--no-plot", "--no-progress", "--num-preds", "3"]
TEXT = "the time traveller (for so it will be convenient to speak of him) was expounding " * 8


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def run(capsys, *argv) -> tuple[int, str, list]:
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def tiny_model(cell="rnn", hidden=8, **model):
    vocab = rnnlab.Vocab(list(TEXT))
    corpus = np.array(vocab[list(TEXT)])
    cfg = ModelConfig(cell, len(vocab), hidden, **model)
    return corpus, vocab, cfg


# ------------------------------------------------------------------ 12: clipping off


@pytest.mark.parametrize("off", [None, math.inf])
def test_no_clipping_trains_with_the_raw_gradient(off):
    """clip_theta None (or math.inf) is no clipping: the run equals one whose θ is too
    large to ever clip, and no batch counts as clipped."""
    corpus, _, cfg = tiny_model()
    be = rnnlab.get_backend("numpy", dtype="float64")
    runs = []
    for theta in (off, 1e300):
        params = be.from_numpy(init_params(cfg, seed=0, dtype="float64"))
        tcfg = TrainConfig(num_epochs=2, lr=5.0, batch_size=2, num_steps=5, clip_theta=theta)
        runs.append((train(be, cfg, params, corpus, tcfg), params))
    (h_off, p_off), (h_big, p_big) = runs
    assert TrainConfig(clip_theta=off).clip_theta is None
    assert [s.train_ppl for s in h_off] == [s.train_ppl for s in h_big]
    assert all(s.clipped_fraction == 0 for s in h_off) and h_off[0].grad_norm_max > 1
    for k in p_off:
        np.testing.assert_array_equal(p_off[k], p_big[k])


def test_cli_clip_none_is_recorded_and_resumed(capsys, tmp_path):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--clip", "none",
                          "--plot", "--out", out, *[a for a in TINY if a != "--no-plot"])
    assert code == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.train["clip_theta"] is None and ckpt.extra["options"]["clip"] is None
    assert (out / "grad_norm.png").exists()
    assert run(capsys, "train", "--resume", "--out", out, "--epochs", "2")[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "3", "--clip", "1")
    assert code == 2 and "--clip 1.0 (the checkpoint has None)" in err[0], err
    assert run(capsys, "train", "--resume", "--out", out, "--epochs", "3", "--clip", "off")[0] == 0
    code, text, _ = run(capsys, "inspect", "--run", out, "--no-plot", "--epochs", "0",
                        "--cells", "rnn", "--window", "20", "--hidden", "8", "--batch-size", "2")
    assert code == 0 and "no clipping" in text
