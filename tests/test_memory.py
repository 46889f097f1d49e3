"""rnnlab.memory predicts the memory of one training step; measurement agrees within 15%.

numpy: the prediction of one ``loss_and_grads`` call's peak against ``tracemalloc`` (NumPy
reports every array buffer to it). torch: the predicted activations against the
storages autograd actually saves (``torch.autograd.graph.saved_tensors_hooks``), on the
scratch path and the nn path. Parameters, gradients and optimiser state are exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.memory import estimate_memory
from rnnlab.numpy_backend.measure import measure_numpy_step
from rnnlab.numpy_backend.optim import make_optimizer
from rnnlab.params import init_params

TOLERANCE = 0.15

CONFIGS = [  # (cfg, B, T)
    (ModelConfig("rnn", 28, 64), 8, 10),
    (ModelConfig("lstm", 28, 64), 8, 10),
    (ModelConfig("lstm", 28, 96, num_layers=2), 16, 12),
    (ModelConfig("gru", 28, 64), 8, 10),
    (ModelConfig("gru", 30, 48, gru_form="torch"), 6, 9),
    (ModelConfig("lstm", 20, 32, num_layers=2, bidirectional=True), 4, 7),
    (ModelConfig("rnn", 60, 32, num_layers=2), 4, 7),
]


@pytest.mark.parametrize("cfg,B,T", CONFIGS, ids=lambda x: str(x) if not isinstance(x, ModelConfig)
                         else f"{x.cell}-L{x.num_layers}{'-bi' if x.bidirectional else ''}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_step_peak_matches_tracemalloc(cfg, B, T, dtype):
    measured = measure_numpy_step(cfg, B, T, dtype)
    predicted = estimate_memory(cfg, B, T, backend="numpy", dtype=dtype).step_peak
    assert abs(predicted / measured - 1) < TOLERANCE, (predicted, measured)


def test_the_d2l_configuration_is_predicted_closely():
    cfg = ModelConfig("lstm", 28, 256)
    measured = measure_numpy_step(cfg, 32, 35)
    est = estimate_memory(cfg, 32, 35)
    assert abs(est.step_peak / measured - 1) < 0.05
    # activations dominate a step: the window's gates and states, not the weights
    assert est.activations > 5 * est.parameters


def test_parameters_gradients_and_optimizer_state_are_exact():
    cfg = ModelConfig("lstm", 28, 32, num_layers=2)
    params = init_params(cfg, seed=0, dtype=np.float64)
    nbytes = sum(p.nbytes for p in params.values())
    for name in ("sgd", "adagrad", "adam"):
        est = estimate_memory(cfg, 4, 5, optimizer=name, dtype="float64")
        opt = make_optimizer(name, params, 0.1)
        state = sum(np.asarray(a).nbytes for a in opt.state_dict()["arrays"].values())
        assert est.parameters == est.gradients == nbytes
        assert est.optimizer_state == state
        assert est.total == est.parameters + est.optimizer_state + est.step_peak


def test_float64_doubles_float32_and_activations_grow_with_the_window():
    cfg = ModelConfig("gru", 28, 64)
    a = estimate_memory(cfg, 8, 10, dtype="float32")
    b = estimate_memory(cfg, 8, 10, dtype="float64")
    assert b.parameters == 2 * a.parameters
    assert abs(b.step_peak / a.step_peak - 2) < 0.05  # token ids stay int64
    # the caches are (T, B, ·) arrays next to fixed-size weight copies: linear in T
    a20, a40 = (estimate_memory(cfg, 8, T).activations for T in (20, 40))
    assert a40 - a20 == 2 * (a20 - a.activations)


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(num_steps=-1), dict(backend="jax"),
                                 dict(optimizer="lbfgs"), dict(dtype="float16"),
                                 dict(backend="torch", impl="cudnn")])
def test_bad_input_is_refused(bad):
    kwargs = dict(batch_size=2, num_steps=3)
    kwargs.update(bad)
    with pytest.raises(ConfigError):
        estimate_memory(ModelConfig("lstm", 5, 4), **kwargs)


def test_cli_memory_prints_both_backends_and_a_measurement(capsys):
    assert main(["memory", "--cell", "rnn", "--hidden", "32", "--batch-size", "4",
                 "--num-steps", "5", "--measure", "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "torch (scratch)" in out
    assert "activations kept for backward" in out and "measured step peak" in out


def test_retain_freed_memory_takes_effect_on_glibc():
    """In a child process (it changes the allocator process-wide): True on Linux glibc."""
    import os
    import platform
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])  # this rnnlab, from whatever folder
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    code = "from rnnlab.memory import retain_freed_memory; print(retain_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    expected = "True" if platform.libc_ver()[0] == "glibc" else out.stdout.strip()
    assert out.stdout.strip() == expected


# ------------------------------------------------------------------------------- torch


def saved_tensor_bytes(cfg, B, T, impl):
    """Bytes of the distinct non-parameter storages autograd saves in one loss_and_grads."""
    torch = pytest.importorskip("torch")
    import rnnlab

    be = rnnlab.get_backend("torch", device="cpu", impl=impl)
    params = be.from_numpy(init_params(cfg, seed=0))
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    Y = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        be.loss_and_grads(cfg, params, X, Y, be.begin_state(cfg, B))
    param_storages = {p.untyped_storage().data_ptr() for p in params.values()}
    return sum(n for ptr, n in seen.items() if ptr not in param_storages)


@pytest.mark.parametrize("impl", ["scratch", "nn"])
@pytest.mark.parametrize("cfg,B,T", [
    (ModelConfig("rnn", 28, 64), 8, 10),
    (ModelConfig("lstm", 28, 64), 8, 10),
    (ModelConfig("lstm", 28, 96, num_layers=2), 16, 12),
    (ModelConfig("gru", 28, 64, gru_form="torch"), 8, 10),
], ids=["rnn", "lstm", "lstm-L2", "gru"])
def test_torch_activations_match_autograds_saved_tensors(cfg, B, T, impl):
    measured = saved_tensor_bytes(cfg, B, T, impl)
    predicted = estimate_memory(cfg, B, T, backend="torch", impl=impl).activations
    assert abs(predicted / measured - 1) < TOLERANCE, (predicted, measured)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("cell,hidden,vocab,batch,steps", [
    ("rnn", 1, 2, 1, 1), ("lstm", 256, 28, 32, 35), ("gru", 2048, 5000, 1, 1),
    ("lstm", 8, 5000, 1, 1)])
def test_memory_table_says_where_the_gradients_are_counted(backend, cell, hidden, vocab, batch, steps):
    """The total adds parameters, optimiser state and the step's peak; the gradients line
    is not in that sum because the backward pass makes them inside its workspace: the
    table says so, and the workspace does hold them."""
    est = estimate_memory(ModelConfig(cell, vocab, hidden), batch, steps, backend=backend)
    assert est.gradients <= est.workspace
    assert est.total == est.parameters + est.optimizer_state + est.step_peak
    assert "gradients (inside the backward workspace)" in est.table()
