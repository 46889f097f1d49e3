"""Training loop, prediction and the main CLI flow on the NumPy backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.data import load_corpus
from rnnlab.errors import ConfigError, CorpusError, VocabError
from rnnlab.generate import predict
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, epoch_rng, train, train_epoch
from rnnlab.data import SeqDataLoader


@pytest.fixture(scope="module")
def small_corpus(time_machine_dir):
    return load_corpus("timemachine", 3000, data_dir=time_machine_dir)


@pytest.mark.parametrize("cell,random_iter", [("rnn", False), ("lstm", False), ("lstm", True)])
def test_short_training_lowers_perplexity(small_corpus, cell, random_iter):
    corpus, vocab = small_corpus
    cfg = ModelConfig(cell, len(vocab), 32)
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=0))
    tcfg = TrainConfig(num_epochs=12, lr=2.0 if cell == "lstm" else 1.0, batch_size=8,
                       num_steps=16, use_random_iter=random_iter)
    seen = []
    history = train(be, cfg, params, corpus, tcfg, on_epoch=seen.append)
    assert [h.epoch for h in history] == list(range(1, 13)) and seen == history
    assert history[-1].train_ppl < 0.75 * history[0].train_ppl  # from ~25 down
    assert all(h.tokens_per_s > 0 and h.num_tokens > 0 for h in history)
    assert history[0].train_ppl < len(vocab) + 2  # starts near uniform: ppl ~ V


def test_sequential_training_carries_state_and_truncates(small_corpus):
    """train_epoch == a hand-written loop that carries the detached state between batches."""
    corpus, vocab = small_corpus
    cfg = ModelConfig("lstm", len(vocab), 8)
    be = get_backend("numpy", dtype="float64")
    tcfg = TrainConfig(num_epochs=1, lr=0.5, batch_size=4, num_steps=10)
    loader = SeqDataLoader(corpus, 4, 10, use_random_iter=False)
    p1 = be.from_numpy(init_params(cfg, seed=1, dtype=np.float64))
    stats = train_epoch(be, cfg, p1, be.make_optimizer("sgd", p1, 0.5), loader, tcfg, 0)
    p2 = be.from_numpy(init_params(cfg, seed=1, dtype=np.float64))
    state, total, n = be.begin_state(cfg, 4), 0.0, 0
    for X, Y in loader.epoch(epoch_rng(0, 0)):
        loss, grads, state = be.loss_and_grads(cfg, p2, X, Y, state)  # carried, not reset
        be.clip_grads(grads, 1.0)
        be.sgd(p2, grads, 0.5)
        total, n = total + loss * X.size, n + X.size
    assert stats.train_ppl == pytest.approx(math.exp(total / n), rel=1e-12)
    for k in p1:
        np.testing.assert_allclose(p1[k], p2[k], rtol=1e-12)


def test_same_seed_same_numbers_different_seed_different(small_corpus):
    corpus, vocab = small_corpus
    cfg = ModelConfig("rnn", len(vocab), 16)
    be = get_backend("numpy")

    def run(seed):
        params = be.from_numpy(init_params(cfg, seed=seed))
        tcfg = TrainConfig(num_epochs=2, batch_size=4, num_steps=8, seed=seed)
        return [h.train_ppl for h in train(be, cfg, params, corpus, tcfg)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_predict_is_greedy_and_checks_the_prefix(small_corpus):
    corpus, vocab = small_corpus
    cfg = ModelConfig("lstm", len(vocab), 16)
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=0))
    text = predict("time traveller", 10, be, cfg, params, vocab)
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 10
    assert text == predict("time traveller", 10, be, cfg, params, vocab)
    # warm-up: the prefix sets the state; stepping it one token at a time gives the same text
    state = be.begin_state(cfg, 1)
    for ch in "time travelle":
        _, state = be.forward(cfg, params, np.array([[vocab[ch]]]), state)
    logits, _ = be.forward(cfg, params, np.array([[vocab["r"]]]), state)
    assert text[len("time traveller")] == vocab.to_tokens(int(np.argmax(logits[0])))
    with pytest.raises(VocabError, match="'!'"):
        predict("time!", 5, be, cfg, params, vocab)
    with pytest.raises(ConfigError, match="temperature"):
        predict("time", 5, be, cfg, params, vocab, strategy="sample", temperature=-1.0)
    sampled = predict("time", 30, be, cfg, params, vocab, strategy="sample", seed=5)
    assert sampled == predict("time", 30, be, cfg, params, vocab, strategy="sample", seed=5)


def test_corpus_too_short_for_batch_is_a_clear_error():
    corpus = np.arange(50) % 5
    cfg = ModelConfig("rnn", 5, 4)
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg))
    with pytest.raises(CorpusError, match=r"50 tokens; batch_size=32 and num_steps=35 need at least"):
        train(be, cfg, params, corpus, TrainConfig(num_epochs=1))


def test_cli_train_then_generate(tmp_path, time_machine_dir, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    out = tmp_path / "run"
    code = cli.main(["train", "--cell", "rnn", "--hidden", "16", "--epochs", "2", "--max-tokens",
                     "2000", "--batch-size", "4", "--num-steps", "8", "--out", str(out),
                     "--no-progress", "--no-plot", "--num-preds", "12"])
    text = capsys.readouterr().out
    assert code == 0
    assert "epoch    1/2  train ppl" in text and "tokens/s" in text
    assert "time traveller" in text and (out / "checkpoint.safetensors").exists()
    assert cli.main(["generate", str(out), "--prefix", "the ", "--num-preds", "7"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("the ") and len(line) == 11


def test_cli_missing_corpus_file_is_one_line_error(tmp_path, capsys):
    code = cli.main(["train", "--corpus", str(tmp_path / "nope.txt"), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope.txt" in err[0]
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_cli_failed_start_leaves_no_lock_and_no_folders(tmp_path, capsys):
    """A run that stops before its first checkpoint leaves no .rnnlab.lock and removes the
    folders it made; a folder the user made before stays, empty."""
    code = cli.main(["train", "--corpus", "nope.txt", "--epochs", "1", "--out", "a/b/c"])
    assert code == 2 and not any(tmp_path.iterdir())
    (tmp_path / "mine").mkdir()
    code = cli.main(["train", "--corpus", "nope.txt", "--epochs", "1", "--out", "mine/run"])
    assert code == 2 and sorted(tmp_path.rglob("*")) == [tmp_path / "mine"]
    capsys.readouterr()


def test_cli_device_cuda_without_cuda_leaves_nothing(tmp_path, time_machine_dir, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    code = cli.main(["train", "--backend", "torch", "--device", "cuda", "--epochs", "1"])
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no runs/lstm/.rnnlab.lock


def test_predict_refuses_a_bidirectional_model(small_corpus):
    corpus, vocab = small_corpus
    cfg = ModelConfig("gru", len(vocab), 4, bidirectional=True)
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=0))
    with pytest.raises(ConfigError, match="bidirectional model reads the future"):
        predict("time", 3, be, cfg, params, vocab)
