"""``rnnlab train --task``: a memory task from the command line, its files and refusals, and
the gradient reach it records (``gradient_reach.loss_state_gradient_norms``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import run

from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError, NonFiniteError
from rnnlab.gradient_reach import (
    loss_state_gradient_norms,
    relative_reach,
    state_gradient_norms,
)
from rnnlab.numpy_backend.functional import softmax_cross_entropy, squared_error
from rnnlab.numpy_backend.model import model_forward
from rnnlab.params import init_params
from rnnlab.tasks import adding_problem, copy_task

# ------------------------------------------------------------------- the reach computation


def loss_with_state_moved(cfg, params, X, Y, step_weights, t, delta):
    """The task's weighted loss with H_t (the state after t steps) moved by ``delta``
    (B, H): the forward run step by step, step t's logits read off the moved state."""
    B, T = X.shape[:2]
    state = tuple(np.zeros((B, cfg.num_hiddens)) for _ in range(cfg.num_states))
    logits = []
    for s in range(T + 1):
        if s == t:
            state = (state[0] + delta,) + state[1:]
            if t > 0:  # step t's logits come from H_t
                logits[-1] = state[0] @ params["W_hq"] + params["b_q"]
        if s < T:
            out, state, _ = model_forward(cfg, params, X[:, s:s + 1], state)
            logits.append(out)
    loss = softmax_cross_entropy if cfg.head == "softmax" else squared_error
    return loss(np.concatenate(logits), Y.T.reshape(-1), np.repeat(step_weights, B))[0]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "irnn"])
@pytest.mark.parametrize("which", ["adding", "copy"])
def test_reach_equals_the_norm_of_a_finite_difference_gradient(cell, which):
    """||dL/dH_t|| for every t, against central differences of the task's own loss with
    H_t moved (float64, a tiny model: B = 3, H = 4); the copy task reads ten steps, so
    several steps' own logits add to the gradient coming back from later steps."""
    task = adding_problem(3, 6, seed=0) if which == "adding" else copy_task(3, 2, seed=0)
    cfg = task.model_config(cell, 4)
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape) * 0.5 for k, v in init_params(cfg).items()}
    X, Y, w = task.X, task.Y, task.step_weights
    norms = loss_state_gradient_norms(cfg, params, X, Y, w)
    B, T = X.shape[:2]
    assert norms.shape == (T + 1,)
    eps = 1e-6
    for t in range(T + 1):
        grad = np.zeros((B, 4))  # (B, H)
        for i in range(B):
            for j in range(4):
                d = np.zeros((B, 4))
                d[i, j] = eps
                grad[i, j] = (loss_with_state_moved(cfg, params, X, Y, w, t, d)
                              - loss_with_state_moved(cfg, params, X, Y, w, t, -d)) / (2 * eps)
        assert norms[t] == pytest.approx(np.linalg.norm(grad), rel=1e-5, abs=1e-9), t


def test_reach_of_a_last_step_loss_is_what_inspect_measures():
    """With the cross-entropy read at the last step alone (weight T: the mean over the B
    rows), the norms are state_gradient_norms', step t = T - k."""
    rng = np.random.default_rng(2)
    cfg = ModelConfig("gru", 7, 5)
    params = {k: rng.standard_normal(v.shape) * 0.5 for k, v in init_params(cfg).items()}
    X, Y = rng.integers(0, 7, (4, 9)), rng.integers(0, 7, (4, 9))
    w = np.zeros(9)
    w[-1] = 9
    ours = loss_state_gradient_norms(cfg, params, X, Y, w)
    theirs, _ = state_gradient_norms(cfg, params, X, Y[:, -1])
    np.testing.assert_allclose(ours[::-1], theirs, rtol=1e-12)
    rel = relative_reach(ours, w)  # by steps back, as a share of ||dL/dH_T||
    assert rel[0] == 1.0 and rel[-1] == pytest.approx(ours[0] / ours[-1], rel=1e-15)


def test_reach_refuses_arrays_of_the_wrong_shape():
    task = adding_problem(3, 5)
    cfg = task.model_config("lstm", 4)
    params = init_params(cfg)
    with pytest.raises(ConfigError, match=r"numeric step_weights of shape \(5,\)"):
        loss_state_gradient_norms(cfg, params, task.X, task.Y, np.ones(4))
    with pytest.raises(ConfigError, match=r"\(B, T, In\) reals; got <U3 \(\)"):
        loss_state_gradient_norms(cfg, params, "abc", task.Y, task.step_weights)
    with pytest.raises(ConfigError, match="cfg must be a ModelConfig"):
        loss_state_gradient_norms("lstm", params, task.X, task.Y, task.step_weights)


# ------------------------------------------------------------------------------- the command


def test_an_lstm_run_on_the_adding_problem_writes_its_files_and_beats_the_baseline(
        capsys, tmp_path):
    out = tmp_path / "adding"
    code, text, err = run(capsys, "train", "--task", "adding", "--length", 10, "--cell", "lstm",
                          "--hidden", 16, "--examples", 1000, "--epochs", 15, "--reach-every", 5,
                          "--out", out)
    assert code == 0, err
    lines = text.splitlines()
    assert lines[1].startswith("baseline 0.1667 = Var(u1 + u2) = 1/6")
    epochs = [x for x in lines if x.startswith("epoch ")]
    assert len(epochs) == 15 and "of the baseline" in epochs[0]
    assert "reach" in epochs[4] and "reach" not in epochs[3]  # recorded after epoch 5
    data = json.loads((out / "metrics.json").read_text())
    final = data["history"][-1]["test_loss"]
    assert final < 0.25 * data["baseline"]
    assert data["finished"] and data["verdict"].startswith(f"lstm reached {final:.4g}")
    assert data["verdict"].endswith("it learned the task")
    assert any(x == data["verdict"] for x in lines)
    assert (out / "task.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" or pytest.importorskip(
        "matplotlib") is None
    reach = data["reach"]
    assert reach["epochs"] == [0, 5, 10, 15]  # at initialisation, then every 5 epochs
    rel = np.array(reach["relative_by_steps_back"])  # (4, T+1)
    assert rel.shape == (4, 11) and np.all(rel[:, 0] == 1.0)  # the loss is read at the last step
    norms = np.array(reach["norms_by_step"])
    np.testing.assert_allclose(rel, norms[:, ::-1] / norms[:, -1:], rtol=1e-12)
    assert any(x.startswith("gradient reach (lstm): after epoch 15") for x in lines)


def test_the_last_epoch_is_always_recorded_and_0_turns_the_reach_off(capsys, tmp_path):
    common = ("train", "--task", "adding", "--length", 4, "--hidden", 4, "--examples", 50,
              "--epochs", 3)
    code, _, _ = run(capsys, *common, "--reach-every", 2, "--out", tmp_path / "a")
    assert code == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["reach"]["epochs"] == [0, 2, 3]
    code, text, _ = run(capsys, *common, "--reach-every", 0, "--out", tmp_path / "b", "--no-plot")
    assert code == 0 and "reach:" not in text and "gradient reach" not in text
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["reach"]["epochs"] == []
    assert not (tmp_path / "b" / "task.png").exists()


def test_a_copy_run_truncated_shorter_than_the_lag_stays_at_the_baseline(capsys, tmp_path):
    """truncate = T + 1: no answer's gradient reaches a step that saw a symbol."""
    code, text, err = run(capsys, "train", "--task", "copy", "--length", 5, "--truncate", 6,
                          "--cell", "lstm", "--hidden", 16, "--examples", 200, "--batch-size",
                          20, "--epochs", 4, "--reach-every", 0, "--out", tmp_path / "copy")
    assert code == 0, err
    data = json.loads((tmp_path / "copy" / "metrics.json").read_text())
    assert data["history"][-1]["test_loss"] > 0.99 * data["baseline"]
    assert "BPTT truncated at 6 steps" in text.splitlines()[0]
    assert data["verdict"].endswith("it stayed at the baseline, and learned nothing a model "
                                    "without memory cannot")


def test_the_verdict_says_what_the_loss_means():
    from rnnlab.cli.train_task import verdict

    assert verdict("lstm", 0.003, 1 / 6) == ("lstm reached 0.003, 1.8% of the baseline 0.1667: "
                                             "it learned the task")
    assert verdict("rnn", 0.17, 1 / 6).endswith("it stayed at the baseline, and learned nothing "
                                                 "a model without memory cannot")
    assert "not learned yet" in verdict("gru", 0.05, 1 / 6)
    assert "above the baseline" in verdict("irnn", 0.5, 1 / 6)
    assert "stayed at the baseline" in verdict("rnn", 0.186, 1 / 6)  # 112%: noise


@pytest.mark.parametrize("argv,message", [
    (["--task", "copy", "--corpus", "x.txt"],
     "--corpus cannot act with --task copy: a task's examples are generated from --seed"),
    (["--task", "adding", "--num-steps", "20"], "--num-steps cannot act with --task adding"),
    (["--task", "adding", "--resume"],
     "--resume cannot act with --task adding: a task run writes no checkpoint"),
    (["--task", "adding", "--val-fraction", "0.2"], "--val-fraction cannot act"),
    (["--task", "adding", "--lr-decay", "0.9"], "--lr-decay cannot act"),
    (["--task", "adding", "--prefix", "a"], "--prefix cannot act"),
    (["--task", "adding", "--num-layers", "2"], "--num-layers cannot act"),
    (["--task", "adding", "--checkpoint-every", "2"], "--checkpoint-every cannot act"),
    (["--truncate", "5"], "--truncate 5 sets up a memory task: give --task adding or --task copy"),
    (["--length", "20"], "--length 20 sets up a memory task"),
    (["--reach-every", "2"], "--reach-every 2 sets up a memory task"),
    (["--task", "adding", "--length", "10", "--truncate", "10"],
     "--truncate 10 cuts nothing: the adding task's sequences have 10 steps"),
    (["--task", "copy", "--length", "5", "--truncate", "40"],
     "--truncate 40 cuts nothing: the copy task's sequences have 25 steps"),
    (["--task", "adding", "--length", "1"],
     "--length 1: the adding problem marks one step in each half of its T steps"),
    (["--task", "adding", "--examples", "10"], "--examples 10 is fewer than --batch-size 50"),
    (["--task", "adding", "--impl", "nn"], "--impl nn needs --backend torch"),
    (["--task", "adding", "--out", " "], "--out is ' ', an empty name"),
    (["--task", "sorting"], "argument --task: invalid choice: 'sorting'"),
    (["--task", "adding", "--reach-every", "-1"],
     "argument --reach-every: expected a non-negative integer"),
])
def test_options_that_cannot_act_are_refused_in_one_line(capsys, tmp_path, monkeypatch, argv,
                                                        message):
    monkeypatch.chdir(tmp_path)  # the default --out, runs/<task>-<cell>, would be made here
    code, out, err = run(capsys, "train", *argv)
    assert code == 2 and out == "", out
    assert len(err) == 1 and message in err[0], err
    assert "Traceback" not in err[0] and not (tmp_path / "runs").exists()


def test_the_run_folder_is_the_runs_own(capsys, tmp_path):
    """A second run needs --overwrite; a metrics.json or a PNG of the user's, and a text
    run's checkpoint, are never replaced; a text run will not join a task run's folder."""
    common = ("train", "--task", "adding", "--length", 4, "--hidden", 4, "--examples", 50,
              "--epochs", 1, "--reach-every", 0)
    out = tmp_path / "run"
    assert run(capsys, *common, "--out", out)[0] == 0
    code, _, err = run(capsys, *common, "--out", out)
    assert code == 2 and "already holds a task run (metrics.json): add --overwrite" in err[0]
    assert run(capsys, *common, "--out", out, "--overwrite")[0] == 0
    code, _, err = run(capsys, "train", "--epochs", 1, "--out", out)  # a text run
    assert code == 2 and "holds metrics.json, a memory-task run" in err[0], err

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"accuracy": 0.9}')
    code, _, err = run(capsys, *common, "--out", mine)
    assert code == 2 and "metrics.json is not a task run's metrics" in err[0], err
    assert (mine / "metrics.json").read_text() == '{"accuracy": 0.9}'
    (mine / "metrics.json").unlink()
    (mine / "task.png").write_bytes(b"\x89PNG\r\n\x1a\nmine")
    code, _, err = run(capsys, *common, "--out", mine)
    assert code == 2 and "task.png is not a plot rnnlab drew" in err[0], err

    text_run = tmp_path / "text"
    text_run.mkdir()
    (text_run / "checkpoint.safetensors").write_bytes(b"")
    code, _, err = run(capsys, *common, "--out", text_run, "--overwrite")
    assert code == 2 and "holds checkpoint.safetensors, a text-corpus run" in err[0], err
    assert sorted(p.name for p in text_run.iterdir()) == ["checkpoint.safetensors"]


# ----------------------------------------------------------------------- inspect: the IRNN


def test_inspect_knows_the_irnn_and_reports_a_training_that_diverges():
    """At initialisation the IRNN's gradient passes back almost unchanged (W_hh = I, ReLU'
    = 1 where on), the rnn's vanishes; a cell whose training diverges keeps its panel at
    initialisation and says why, instead of stopping the whole comparison."""
    from rnnlab.gradient_reach import available_cells, explain, gradient_flow

    assert "irnn" in available_cells()
    corpus = np.random.default_rng(0).integers(0, 28, 2000)
    flows = gradient_flow(["rnn", "irnn"], corpus, corpus, 28, num_hiddens=16, window=30,
                          batch_size=4, epochs=0, forget_bias=0)
    assert flows["irnn"].decay_per_step("init") > 0.9
    assert flows["rnn"].decay_per_step("init") < 0.2
    assert "irnn ×0.9" in " ".join(explain(flows))
    flows = gradient_flow(["irnn"], corpus, corpus, 28, num_hiddens=16, window=30, batch_size=4,
                          epochs=3, lr=0.1, forget_bias=0)  # Adam at 0.1: it overflows
    assert flows["irnn"].trained is None and "diverged" in flows["irnn"].extra["diverged"]
    assert np.isnan(flows["irnn"].decay_per_step("trained"))


def _one_epoch_then(error):
    """train_task that trains one epoch for real, then stops with ``error``."""
    from rnnlab import tasks

    def fake(be, cfg, params, task, tcfg, **kw):
        from dataclasses import replace

        tasks.train_task(be, cfg, params, task, replace(tcfg, num_epochs=1), **kw)
        raise error

    return fake


@pytest.mark.parametrize("error,status,words", [
    (KeyboardInterrupt(), 130, "interrupted; the metrics of the 1 epoch done are in"),
    (NonFiniteError("loss became nan at epoch 2, batch 1"), 3,
     ("rnnlab: error: loss became nan at epoch 2, batch 1; the metrics of the 1 epoch before "
      "it are in")),
])
def test_a_stopped_run_keeps_the_metrics_of_its_epochs(capsys, tmp_path, monkeypatch, error,
                                                       status, words):
    monkeypatch.setattr("rnnlab.cli.train_task.train_task", _one_epoch_then(error))
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--task", "adding", "--length", 4, "--hidden", 4,
                       "--examples", 50, "--epochs", 3, "--out", out)
    assert code == status and len(err) == 1 and words in err[0], err
    data = json.loads((out / "metrics.json").read_text())
    assert len(data["history"]) == 1 and data["reach"]["epochs"] == [0, 1]
    assert data["finished"] is False and data["verdict"] is None


def test_the_reach_picture_takes_vanished_and_overflowed_gradients(tmp_path):
    """0 (a gradient that vanished below float64) sits at the colour scale's floor, and
    inf or NaN (an IRNN whose state overflowed) is left blank, not an error."""
    pytest.importorskip("matplotlib")
    from rnnlab.plot import plot_task_run

    reach = np.array([[1.0, 1e-3, 0.0], [1.0, np.inf, np.nan]])  # (2 records, T+1 = 3)
    path = plot_task_run({"irnn": [0.2, 0.3]}, 1 / 6, tmp_path / "task.png", [0, 2], reach)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = plot_task_run({"irnn": [0.2, 0.3]}, 1 / 6, tmp_path / "all.png", [0, 1],
                         np.full((2, 3), np.nan))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_torch_run_gives_the_numpy_runs_numbers(capsys, tmp_path):
    """The same task, seed and options on the torch backend (autograd) in float64: the
    held-out losses and the reach (read with the NumPy model on the torch run's
    parameters) are the NumPy run's, to rounding."""
    pytest.importorskip("torch")
    common = ("train", "--task", "adding", "--length", 5, "--hidden", 4, "--examples", 100,
              "--epochs", 2, "--dtype", "float64", "--no-plot")
    data = {}
    for backend in ("numpy", "torch"):
        extra = ("--device", "cpu") if backend == "torch" else ()
        code, _, err = run(capsys, *common, "--backend", backend, *extra,
                           "--out", tmp_path / backend)
        assert code == 0, err
        data[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())
    losses = {b: [h["test_loss"] for h in d["history"]] for b, d in data.items()}
    np.testing.assert_allclose(losses["torch"], losses["numpy"], rtol=1e-8)
    np.testing.assert_allclose(data["torch"]["reach"]["norms_by_step"],
                               data["numpy"]["reach"]["norms_by_step"], rtol=1e-8)
