"""Determinism (issue 7): the same seed gives bit-identical numbers.

Every loss and gradient norm of every batch, and the final parameters, are compared
with ``==`` (no tolerance): twice in one process on the numpy backend and on the torch
backend on the CPU (both implementations), and once across separate processes. What is
and is not deterministic on a GPU is in docs/determinism.md; the GPU test here skips
without CUDA. Resuming from a checkpoint is held to the same standard by
tests/test_kill_resume.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.data import load_corpus
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, train

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (model options, training options): every cell, both partitions, every optimiser,
# stacked layers with dropout (masks drawn per batch from the seed), float64
CASES = {
    "rnn-sequential-sgd": (dict(cell="rnn"), dict(optimizer="sgd", lr=1.0)),
    "lstm-random-adam": (dict(cell="lstm"), dict(optimizer="adam", lr=0.01, use_random_iter=True)),
    "gru-2layers-dropout-adagrad": (dict(cell="gru", num_layers=2, dropout=0.3),
                                    dict(optimizer="adagrad", lr=0.1)),
    "lstm-float64": (dict(cell="lstm", dtype="float64"), dict(optimizer="sgd", lr=1.0)),
}


def run(backend: str, case: str, corpus, vocab_size: int, seed: int = 0, impl: str = "scratch",
        epochs: int = 2):
    """Train short epochs; return every (loss, norm) and the final parameters."""
    model, opts = CASES[case]
    model = dict(model)
    dtype = model.pop("dtype", "float32")
    cfg = ModelConfig(vocab_size=vocab_size, num_hiddens=16, **model)
    options = {"dtype": dtype}
    if backend == "torch":
        options.update(device="cpu", impl=impl)
    be = rnnlab.get_backend(backend, **options)
    params = be.from_numpy(init_params(cfg, seed=seed, dtype=dtype))
    steps = []
    history = train(be, cfg, params, corpus,
                    TrainConfig(num_epochs=epochs, batch_size=4, num_steps=8, seed=seed,
                                threads=1, **opts),  # a fixed count: docs/determinism.md
                    on_batch=lambda e, i, n, loss, norm: steps.append((loss, norm)))
    return steps, [h.train_ppl for h in history], be.to_numpy(params)


@pytest.fixture(scope="module")
def corpus(time_machine_dir):
    return load_corpus("timemachine", 1200, data_dir=time_machine_dir)


def assert_identical(a, b) -> None:
    steps_a, ppl_a, params_a = a
    steps_b, ppl_b, params_b = b
    assert len(steps_a) > 20
    assert steps_a == steps_b  # every batch's loss and norm, bit for bit
    assert ppl_a == ppl_b
    for name in params_a:
        np.testing.assert_array_equal(params_a[name], params_b[name], err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_same_seed_bit_identical(case, corpus):
    tokens, vocab = corpus
    assert_identical(run("numpy", case, tokens, len(vocab)), run("numpy", case, tokens, len(vocab)))


def test_another_seed_gives_other_numbers(corpus):
    """The seed is not ignored: it changes the parameters and the partition."""
    tokens, vocab = corpus
    a = run("numpy", "lstm-random-adam", tokens, len(vocab), seed=0)
    b = run("numpy", "lstm-random-adam", tokens, len(vocab), seed=1)
    assert a[0][0] != b[0][0] and a[1] != b[1]


@pytest.mark.parametrize("case, impl", [("rnn-sequential-sgd", "scratch"),
                                        ("lstm-random-adam", "scratch"), ("lstm-random-adam", "nn"),
                                        ("lstm-float64", "nn"),
                                        ("gru-2layers-dropout-adagrad", "scratch")])
def test_torch_cpu_same_seed_bit_identical(case, impl, corpus):
    pytest.importorskip("torch")
    tokens, vocab = corpus
    tokens = tokens[:700]  # torch's per-step overhead: one epoch of 21 batches is enough
    assert_identical(run("torch", case, tokens, len(vocab), impl=impl, epochs=1),
                     run("torch", case, tokens, len(vocab), impl=impl, epochs=1))


SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_determinism import run
from rnnlab.data import load_corpus
tokens, vocab = load_corpus("timemachine", 1200, data_dir={data!r})
steps, ppl, params = run("numpy", {case!r}, tokens, len(vocab))
print(json.dumps({{"steps": [[a.hex(), b.hex()] for a, b in steps],
                   "params": {{k: v.tobytes().hex() for k, v in params.items()}}}}))
"""


def test_numpy_bit_identical_across_processes(corpus, time_machine_dir):
    """Two fresh interpreters and this one: the same bits (a fresh process has another
    hash seed, other memory addresses, other dict insertion history)."""
    case = "gru-2layers-dropout-adagrad"
    script = SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), data=str(time_machine_dir),
                           case=case)
    outs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, cwd=str(ROOT), timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
    tokens, vocab = corpus
    steps, _, params = run("numpy", case, tokens, len(vocab))
    assert outs[0]["steps"] == [[a.hex(), b.hex()] for a, b in steps]
    assert outs[0]["params"] == {k: v.tobytes().hex() for k, v in params.items()}


@pytest.mark.cuda
def test_cuda_deterministic_mode_bit_identical(corpus):
    """On a GPU, with the settings of docs/determinism.md, two runs agree bit for bit."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") is None:
        pytest.skip("set CUBLAS_WORKSPACE_CONFIG=:4096:8 before CUDA starts (docs/determinism.md)")
    tokens, vocab = corpus
    model, opts = CASES["lstm-random-adam"]
    torch.use_deterministic_algorithms(True)
    try:
        results = []
        for _ in range(2):
            cfg = ModelConfig(vocab_size=len(vocab), num_hiddens=16, **model)
            be = rnnlab.get_backend("torch", device="cuda", impl="scratch")
            params = be.from_numpy(init_params(cfg, seed=0))
            steps = []
            train(be, cfg, params, tokens, TrainConfig(num_epochs=2, batch_size=4, num_steps=8, **opts),
                  on_batch=lambda e, i, n, loss, norm: steps.append((loss, norm)))
            results.append((steps, be.to_numpy(params)))
        assert results[0][0] == results[1][0]
        for name in results[0][1]:
            np.testing.assert_array_equal(results[0][1][name], results[1][1][name])
    finally:
        torch.use_deterministic_algorithms(False)
