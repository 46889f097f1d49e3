"""A run that diverges stops (status 3) even when every number stays finite.

With ``--lr 1e30 --clip 1`` the gradient norm stays near 3 (softmax gradients are
bounded), the parameters reach 1e29 but stay finite in float32, and the loss is 1e29
nats per token: before, every epoch printed ``train ppl inf`` and the run exited 0 with
a checkpoint that generates "edededed". Diverged means, precisely: a batch's mean loss
beyond ln(float64 max) = 709.78 nats, where the perplexity exp(loss) is no longer a
number (a model that learns sits near or below ln V: 3.3 nats for 28 characters), or a
NaN / infinite loss, gradient norm or parameter, or a validation perplexity that
overflows.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rnnlab
from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.errors import NonFiniteError
from rnnlab.params import init_params
from rnnlab.train import MAX_LOSS, TrainConfig, check_diverged, perplexity, train

TEXT = "the time traveller (for so it will be convenient to speak of him) was expounding " * 8

# the issue's eight runs: every cell, every optimiser, both dtypes
COMBOS = [("lstm", "sgd", "float32"), ("rnn", "sgd", "float64"), ("gru", "sgd", "float32"),
          ("lstm", "adam", "float64"), ("rnn", "adam", "float32"), ("gru", "adagrad", "float64"),
          ("lstm", "adagrad", "float32"), ("rnn", "adagrad", "float64")]


def corpus_and_vocab():
    vocab = rnnlab.Vocab(list(TEXT))
    return np.array(vocab[list(TEXT)]), vocab


@pytest.mark.parametrize("cell, optimizer, dtype", COMBOS)
def test_a_huge_learning_rate_stops_the_run(cell, optimizer, dtype):
    corpus, vocab = corpus_and_vocab()
    cfg = ModelConfig(cell, len(vocab), 32)
    be = rnnlab.get_backend("numpy", dtype=dtype)
    params = be.from_numpy(init_params(cfg, seed=0, dtype=dtype))
    tcfg = TrainConfig(num_epochs=3, lr=1e30, clip_theta=1.0, batch_size=2, num_steps=5,
                       optimizer=optimizer)
    with np.errstate(all="ignore"), pytest.raises(NonFiniteError) as info:
        train(be, cfg, params, corpus, tcfg, val_corpus=corpus[:200])
    msg = str(info.value)
    assert re.search(r"(diverged|became \S+) at epoch 1, batch \d+", msg), msg


def test_the_threshold_is_where_perplexity_overflows():
    assert math.isfinite(perplexity(MAX_LOSS)) and perplexity(MAX_LOSS + 1e-9) == math.inf
    check_diverged(MAX_LOSS, "here")  # the last finite perplexity is not divergence
    check_diverged(math.log(1e6), "here")  # a uniform guess over a million tokens
    with pytest.raises(NonFiniteError, match=r"diverged at here: the loss is 710 nats"):
        check_diverged(710.0, "here")
    for bad in (math.nan, math.inf):
        with pytest.raises(NonFiniteError, match=r"loss became (nan|inf) at here"):
            check_diverged(bad, "here")


def test_a_validation_perplexity_that_overflows_stops_the_run(monkeypatch):
    import importlib

    train_module = importlib.import_module("rnnlab.train")
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: math.inf)
    corpus, vocab = corpus_and_vocab()
    cfg = ModelConfig("rnn", len(vocab), 8)
    be = rnnlab.get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=0))
    with pytest.raises(NonFiniteError, match=r"diverged at epoch 1: the validation perplexity"):
        train(be, cfg, params, corpus, TrainConfig(num_epochs=2, batch_size=2, num_steps=5),
              val_corpus=corpus[:100])


def run_cli(capsys, *argv):
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    return status, capsys.readouterr().err.strip().splitlines()


def test_cli_divergence_exits_3_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                   capsys, time_machine_dir):
    """Epoch 1 is fine and saved; in epoch 2 the loss becomes 1e29 (finite): status 3, one
    line naming epoch 2 and the batch, and epoch 1's checkpoint stays on disk."""
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    from rnnlab.numpy_backend import NumpyBackend

    real = NumpyBackend.loss_and_grads
    calls = {"n": 0}

    def diverging(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls["n"] += 1
        return (1e29,) + tuple(out[1:]) if calls["n"] > 45 else out  # 39 batches per epoch

    monkeypatch.setattr(NumpyBackend, "loss_and_grads", diverging)
    status, err = run_cli(capsys, "train", "--cell", "lstm", "--hidden", "8", "--epochs", "3",
                          "--max-tokens", "400", "--batch-size", "2", "--num-steps", "5",
                          "--checkpoint-every", "1", "--no-plot", "--no-progress",
                          "--out", tmp_path / "run")
    assert status == 3 and len(err) == 1, err
    assert re.search(r"^rnnlab: error: the run diverged at epoch 2, batch 7: the loss is 1e\+29 "
                     r"nats per token.*; the last good checkpoint, after epoch 1, is kept at "
                     r".*run/checkpoint\.safetensors$", err[0]), err[0]
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.epoch == 1 and all(h["train_ppl"] < 100 for h in ckpt.history)


def test_cli_issue_command_exits_3(tmp_path, capsys, time_machine_dir, monkeypatch):
    """The issue's command, verbatim but for the output options."""
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    status, err = run_cli(capsys, "train", "--cell", "lstm", "--lr", "1e30", "--clip", "1",
                          "--hidden", "32", "--epochs", "3", "--max-tokens", "1000",
                          "--batch-size", "2", "--num-steps", "5", "--no-plot", "--no-progress",
                          "--out", tmp_path / "run")
    assert status == 3 and len(err) == 1, err
    assert "diverged at epoch 1, batch 2" in err[0] and "no checkpoint was saved" in err[0]
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()
