"""The ``rnnlab`` command: help, errors, train / resume, generate, inspect, plots."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from cli_run import numbers, run
from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint
from rnnlab.data import split_after

DOCS = Path(__file__).resolve().parents[1] / "docs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# a tiny run: 600 training tokens, V = 28, H = 8, a second or less per command
TINY = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
        "--no-plot", "--no-progress", "--num-preds", "5"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, time_machine_dir):
    """A trained tiny LSTM, shared by the generate tests (read-only)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNLAB_DATA", str(time_machine_dir))
    out = tmp_path_factory.mktemp("tiny") / "run"
    try:
        code = cli.main(["train", "--cell", "lstm", "--epochs", "3", "--optimizer", "adam",
                         "--lr", "0.02", "--out", str(out), *TINY])
    finally:
        mp.undo()
    assert code == 0
    return out


# ------------------------------------------------------------------------------ help


def subcommands() -> dict:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", list(subcommands()))
def test_help_explains_every_option_and_the_cli_reference_lists_it(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    flat = " ".join(out.split())
    reference = cli_section(command)
    for action in subcommands()[command]._actions:
        for option in action.option_strings:
            assert option in out, (command, option)
            if option not in ("-h", "--help"):
                assert action.help and len(action.help) > 8, (command, option)
                assert f"`{option}" in reference, f"docs/cli.md, rnnlab {command}: no {option}"
        if not action.option_strings and action.dest != "help":  # a positional
            assert action.dest in flat


def cli_section(command: str) -> str:
    """The part of docs/cli.md under the heading ## `rnnlab <command>`."""
    text = (DOCS / "cli.md").read_text()
    head = f"## `rnnlab {command}`"
    assert head in text, f"docs/cli.md has no section {head}"
    return text.split(head, 1)[1].split("\n## ", 1)[0]


def test_every_subcommand_has_help(capsys):
    for name in subcommands():
        code, out, _ = run(capsys, name, "--help")
        assert code == 0 and out.startswith(f"usage: rnnlab {name}")
        assert cli_section(name)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("argv,message", [
    (["--temperature", "-1.5"], "argument --temperature: expected a non-negative finite number"),
    (["--top-p", "0"], "argument --top-p: expected a number in (0, 1], got 0"),
    (["--top-p", "1.5"], "argument --top-p: expected a number in (0, 1], got 1.5"),
    (["--top-p", "0.9", "--strategy", "greedy"], "--temperature, --top-k and --top-p apply to "
                                                  "--strategy sample, not greedy"),
    (["--temperature", "nan"], "argument --temperature"),
    (["--top-k", "0"], "argument --top-k: expected a positive integer, got 0"),
    (["--top-k", "29"], "--top-k 29 is larger than the vocabulary of 28 tokens"),
    (["--top-k", "3", "--strategy", "greedy"], "apply to --strategy sample, not greedy"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--prefix", "time!"], "'!'"),
])
def test_generate_errors_are_one_line_with_status_2(capsys, tiny_run, argv, message):
    code, out, err = run(capsys, "generate", tiny_run, *argv)
    assert code == 2 and out == ""
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("argv,message", [
    (["train", "--hidden", "0"], "argument --hidden: expected a positive integer, got 0"),
    (["train", "--val-fraction", "1"], "argument --val-fraction: expected a number in [0, 1)"),
    (["train", "--cell", "transformer"], "argument --cell: invalid choice: 'transformer'"),
    (["train", "--epochs"], "argument --epochs: expected one argument"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["inspect", "--cells", "rnn", "mlp"], "argument --cells: invalid choice: 'mlp'"),
    (["train", "--bogus", "1"], "rnnlab train: error: unrecognized arguments: --bogus 1 "
                                "(see rnnlab train --help)"),
    (["generate", "--top-q"], "rnnlab generate: error: unrecognized arguments: --top-q "
                              "(see rnnlab generate --help)"),
])
def test_usage_errors_are_one_line_with_status_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and len(err) == 1 and message in err[0], err


# --------------------------------------------------------------------------- generate


def test_generate_greedy_is_deterministic_and_sampling_follows_the_seed(capsys, tiny_run):
    texts = {}
    for name, argv in {"greedy": [], "greedy2": [],
                       "s1": ["--temperature", "1.5", "--seed", "1"],
                       "s1b": ["--temperature", "1.5", "--seed", "1"],
                       "s2": ["--temperature", "1.5", "--seed", "2"],
                       "k1": ["--top-k", "1", "--seed", "4"]}.items():
        code, out, err = run(capsys, "generate", tiny_run, "--prefix", "the ",
                             "--num-preds", "60", *argv)
        assert code == 0, err
        texts[name] = out.rstrip("\n")
    assert texts["greedy"] == texts["greedy2"] and texts["s1"] == texts["s1b"]
    assert texts["s1"] != texts["s2"]  # 60 draws at temperature 1.5 from ~28 characters
    assert texts["k1"] == texts["greedy"]  # top-1 sampling is greedy decoding
    assert all(t.startswith("the ") and len(t) == 64 for t in texts.values())


def test_temperature_0_is_greedy_and_top_p_1_is_plain_sampling(capsys, tiny_run):
    greedy = run(capsys, "generate", tiny_run, "--num-preds", "60")
    assert run(capsys, "generate", tiny_run, "--num-preds", "60", "--temperature", "0") == greedy
    assert run(capsys, "generate", tiny_run, "--num-preds", "60", "--temperature", "0",
               "--top-p", "0.5", "--seed", "3") == greedy
    plain = run(capsys, "generate", tiny_run, "--num-preds", "60", "--temperature", "1.5",
                "--seed", "2")
    assert run(capsys, "generate", tiny_run, "--num-preds", "60", "--temperature", "1.5",
               "--top-p", "1", "--seed", "2") == plain
    cut = run(capsys, "generate", tiny_run, "--num-preds", "60", "--temperature", "1.5",
              "--top-p", "0.3", "--seed", "2")
    assert cut[0] == 0 and cut[1] != plain[1]  # a nucleus of a few tokens: another text


def test_generate_on_torch_gives_the_numpy_text(capsys, tiny_run):
    pytest.importorskip("torch")
    for argv in ([], ["--temperature", "0.8", "--top-k", "5", "--seed", "7"],
                 ["--temperature", "1.2", "--top-p", "0.8", "--seed", "7"]):
        outs = [run(capsys, "generate", tiny_run, "--backend", b, "--num-preds", "40", *argv)
                for b in ("numpy", "torch")]
        assert outs[0][0] == outs[1][0] == 0
        assert outs[0][1] == outs[1][1], argv


# ----------------------------------------------------------------------- train, resume


def test_validation_comes_after_the_training_tokens():
    full = np.arange(20_000) % 28
    train, val = split_after(full, 10_000, 0.1)
    assert len(train) == 10_000 and len(val) == 1_000
    assert np.shares_memory(val, full) and np.array_equal(val, full[10_000:11_000])
    train, val = split_after(full, -1, 0.1)  # the whole corpus: its last tenth
    assert len(train) == 18_000 and np.array_equal(val, full[18_000:])
    train, val = split_after(full[:10_500], 10_000, 0.1)  # not enough after: the last part
    assert len(train) == 9_000 and np.array_equal(val, full[9_000:10_000])
    train, val = split_after(full, 10_000, 0.0)
    assert len(train) == 10_000 and len(val) == 0


def test_train_prints_validation_and_writes_valid_pngs(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    argv = [a for a in TINY if a != "--no-plot"]
    code, text, err = run(capsys, "train", "--cell", "rnn", "--epochs", "2", "--out", out,
                          "--sample-every", "1", *argv)
    assert code == 0, err
    assert "600 tokens, validation on 60 held-out tokens" in text
    assert re.search(r"epoch    1/2  train ppl +[\d.]+  val ppl +[\d.]+ +[\d,]+ tokens/s", text)
    assert "  sample: time traveller" in text
    for name in ("perplexity.png", "grad_norm.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
        import matplotlib.image

        assert matplotlib.image.imread(out / name).shape[2] in (3, 4)
    ckpt = load_checkpoint(out)
    assert [h["epoch"] for h in ckpt.history] == [1, 2]
    assert all(h["val_ppl"] is not None for h in ckpt.history)
    assert ckpt.arrays["grad_norms"].shape[1] == 2 and len(ckpt.arrays["grad_norms"]) >= 2


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "adagrad-minchar"])
def test_resume_gives_the_numbers_of_an_uninterrupted_run(capsys, tmp_path, optimizer):
    base = ["train", "--cell", "gru", "--optimizer", optimizer, "--lr", "0.02", *TINY]
    assert run(capsys, *base, "--epochs", "4", "--out", tmp_path / "straight")[0] == 0
    assert run(capsys, *base, "--epochs", "2", "--out", tmp_path / "split")[0] == 0
    # the resumed half names only what changes: options left out come from the checkpoint
    code, text, err = run(capsys, "train", "--resume", "--epochs", "4", "--no-progress",
                          "--out", tmp_path / "split")
    assert code == 0, err
    assert "resuming" in text and "epoch    3/4" in text and "epoch    1/4" not in text
    assert numbers(tmp_path / "split") == numbers(tmp_path / "straight")  # bit-identical
    a, b = load_checkpoint(tmp_path / "split"), load_checkpoint(tmp_path / "straight")
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    for k in a.optimizer["arrays"]:
        assert np.array_equal(a.optimizer["arrays"][k], b.optimizer["arrays"][k]), k
    assert np.array_equal(a.arrays["grad_norms"], b.arrays["grad_norms"])


def test_interrupted_run_resumes_from_its_last_checkpoint(capsys, tmp_path, monkeypatch):
    """Ctrl-C during epoch 4 of 5 (checkpoints every 2): exit 130, the checkpoint of epoch
    2 is kept, and the same command with --resume ends with the uninterrupted numbers."""
    import importlib

    train_module = importlib.import_module("rnnlab.train")  # rnnlab.train is the function
    base = ["train", "--cell", "lstm", "--epochs", "5", "--checkpoint-every", "2", *TINY]
    assert run(capsys, *base, "--out", tmp_path / "straight")[0] == 0
    real = train_module.train_epoch

    def interrupted(*args, **kwargs):
        if args[6] == 3:  # the 0-based epoch argument: the fourth epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(train_module, "train_epoch", interrupted)
        code, _, err = run(capsys, *base, "--out", tmp_path / "cut")
    assert code == 130 and "after epoch 2" in err[-1] and "--resume" in err[-1]
    assert load_checkpoint(tmp_path / "cut").epoch == 2
    code, _, err = run(capsys, *base, "--out", tmp_path / "cut", "--resume")
    assert code == 0, err
    assert numbers(tmp_path / "cut") == numbers(tmp_path / "straight")


def test_resume_on_the_other_backend_continues_the_run(capsys, tmp_path):
    pytest.importorskip("torch")
    base = ["train", "--cell", "lstm", "--optimizer", "adam", "--lr", "0.02", "--dtype",
            "float64", *TINY]
    assert run(capsys, *base, "--epochs", "3", "--out", tmp_path / "straight")[0] == 0
    assert run(capsys, *base, "--epochs", "2", "--out", tmp_path / "split")[0] == 0
    code, text, err = run(capsys, "train", "--resume", "--epochs", "3", "--backend", "torch",
                          "--no-progress", "--out", tmp_path / "split")
    assert code == 0, err
    assert "trained on numpy, continuing on torch" in text
    got, want = numbers(tmp_path / "split"), numbers(tmp_path / "straight")
    for g, w in zip(got, want):  # float64 on both: equal to round-off
        assert g["train_ppl"] == pytest.approx(w["train_ppl"], rel=1e-10)
        assert g["val_ppl"] == pytest.approx(w["val_ppl"], rel=1e-10)


def test_resume_with_conflicting_options_names_each(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out", out, *TINY)[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--hidden", "16",
                       "--batch-size", "8", "--random", "--epochs", "2")
    assert code == 2 and len(err) == 1
    for part in ("--hidden 16 (the checkpoint has 8)", "--batch-size 8 (the checkpoint has 4)",
                 "--random (the checkpoint has False)"):
        assert part in err[0]
    # the same value typed again is no conflict
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--hidden", "8", "--epochs",
                       "2", "--cell", "rnn", "--no-progress", "--no-plot")
    assert code == 0, err


def test_resume_without_checkpoint_and_rerun_without_resume_are_refused(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--resume", "--out", tmp_path / "none", *TINY)
    assert code == 2 and len(err) == 1 and "--resume: no checkpoint at" in err[0]
    out = tmp_path / "run"
    assert run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out", out, *TINY)[0] == 0
    code, _, err = run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out", out, *TINY)
    assert code == 2 and "already holds a run: add --resume" in err[0]
    assert run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out", out, "--overwrite",
               *TINY)[0] == 0


# ---------------------------------------------------------------------------- inspect


def test_rnn_gradient_vanishes_faster_than_lstm_and_gru():
    """At d2l's initialisation, k steps back the rnn's ||dL/dH|| has fallen by ~0.08^k
    (tanh' ≈ 1 times ||W_hh|| ≈ 0.01 sqrt(H)), the gated cells' by ~0.5^k (σ(0) = 1/2)."""
    from rnnlab.gradient_reach import available_cells, gradient_flow

    corpus = np.random.default_rng(0).integers(0, 28, 400)
    cells = [c for c in ("rnn", "lstm", "gru") if c in available_cells()]
    flows = gradient_flow(cells, corpus, corpus, 28, num_hiddens=16, window=30, batch_size=4,
                          epochs=0, forget_bias=3.0)
    rel = {label: f.init / f.init[0] for label, f in flows.items()}
    for k in (10, 20, 30):
        assert rel["rnn"][k] < 1e-3 * rel["lstm"][k], k
        if "gru" in rel:
            assert rel["rnn"][k] < 1e-3 * rel["gru"][k], k
        assert rel["lstm"][k] < rel["lstm, b_f = +3"][k], k  # F = σ(3) ≈ 0.95 forgets slowly
    assert flows["rnn"].decay_per_step("init") < 0.2 < 0.4 < flows["lstm"].decay_per_step("init")
    assert 0.9 < flows["lstm, b_f = +3"].decay_per_step("init") < 1.0


def test_per_step_gradients_equal_the_initial_state_gradient_of_the_suffix():
    """dL/dH_t, computed one step at a time, equals dstate_0 of the window after step t
    run from H_t (the definition), for every t."""
    from rnnlab.config import ModelConfig
    from rnnlab.inspect import last_step_dlogits, state_gradient_norms
    from rnnlab.numpy_backend.model import model_backward, model_forward
    from rnnlab.params import init_params

    rng = np.random.default_rng(1)
    cfg = ModelConfig("lstm", 6, 5)
    params = {k: rng.standard_normal(v.shape) * 0.5 for k, v in init_params(cfg).items()}
    X, y = rng.integers(0, 6, (3, 7)), rng.integers(0, 6, 3)
    dH, dC = state_gradient_norms(cfg, params, X, y)
    state = (np.zeros((3, 5)), np.zeros((3, 5)))
    for t in range(7):  # the window X[:, t:] starts from the state after t tokens
        logits, st, cache = model_forward(cfg, params, X[:, t:], state)
        _, d0 = model_backward(last_step_dlogits(logits, y), tuple(np.zeros_like(s) for s in st),
                               cache)
        assert dH[7 - t] == pytest.approx(np.linalg.norm(d0[0]), rel=1e-12)
        assert dC[7 - t] == pytest.approx(np.linalg.norm(d0[1]), rel=1e-12)
        _, state, _ = model_forward(cfg, params, X[:, t:t + 1], state)


def _flow(cell, init_factor, trained_factor, **extra):
    from rnnlab.gradient_reach import GradientFlow

    k = np.arange(101)  # (T+1,)
    return GradientFlow(cell, init=init_factor ** k, trained=trained_factor ** k, extra=extra)


def test_inspect_explains_its_numbers_in_words():
    """The words follow the numbers: an LSTM trained to forget as fast as the RNN is said
    to; a forget bias whose slow units saturate is said to pass almost no gradient."""
    from rnnlab.gradient_reach import explain

    saturated = {"slow_share": 0.92, "entry_slow": 0.01, "entry_fast": 0.16}
    flows = {"rnn": _flow("rnn", 0.08, 0.68), "lstm": _flow("lstm", 0.51, 0.67),
             "lstm, b_f = +3": _flow("lstm", 0.96, 0.65, forget_bias=3.0,
                                     gates_init={}, gates_trained=saturated)}
    text = "\n".join(explain(flows))
    assert all(len(line) <= 92 for line in text.splitlines())
    words = " ".join(text.split())
    assert "×0.68 per step (rnn) leaves 1.4e-06 after 35 steps" in words
    assert "rnn ×0.08: each step multiplies by tanh' times a small W_hh" in words
    assert "lstm ×0.67 shrinks the gradient about as fast as rnn ×0.68" in words
    assert "F = σ(3) = 0.95" in words and "92% of its units keep F > 0.9" in words
    assert "tanh saturates, O·tanh'(C) is 0.010 in them against 0.160" in words
    flows["lstm"] = _flow("lstm", 0.51, 0.9)
    flows["lstm, b_f = +3"].extra["gates_trained"] = dict(saturated, entry_slow=0.15)
    words = " ".join("\n".join(explain(flows)).split())
    assert "lstm ×0.90 shrinks the gradient more slowly than rnn ×0.68" in words
    assert "saturates" not in words


def test_gradient_flow_plot_is_not_squashed_by_a_vanished_gradient(tmp_path, monkeypatch):
    """The rnn at initialisation falls to 1e-110 at k = 100: the y axis stops near 1e-16,
    so the other curves keep the height of the panel."""
    pytest.importorskip("matplotlib")
    import rnnlab.plot as plot

    figs = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: figs.append(fig) or path)
    flows = {"rnn": _flow("rnn", 0.08, 0.68), "lstm": _flow("lstm", 0.51, 0.67)}
    plot.plot_gradient_flow(flows, tmp_path / "g.png", 100, 20)
    for ax in figs[0].axes:
        bottom, top = ax.get_ylim()
        assert 1e-17 < bottom <= 1e-16 and top == 3.0, (bottom, top)
    flows = {"gru": _flow("gru", 0.9, 0.95)}  # nothing falls that far: the axis follows it
    plot.plot_gradient_flow(flows, tmp_path / "g.png", 100, 20)
    assert figs[1].axes[0].get_ylim()[0] == pytest.approx(0.9 ** 100 / 3)


@pytest.mark.parametrize("theta", [None, float("inf")])
def test_grad_norm_plot_of_a_run_without_clipping_shows_no_clipping(tmp_path, monkeypatch, theta):
    """--clip none: no "after clipping" curve, no "% clipped" panel of zeros."""
    pytest.importorskip("matplotlib")
    import rnnlab.plot as plot

    figs = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: figs.append(fig) or path)
    plot.plot_grad_norms([0.5, 1, 1.5, 2], [0.3, 2.0, 0.5, 0.4], theta, tmp_path / "g.png")
    plot.plot_grad_norms([0.5, 1, 1.5, 2], [0.3, 2.0, 0.5, 0.4], 1.0, tmp_path / "g.png")
    unclipped, clipped = figs

    def words(fig):
        return " ".join([ax.get_title() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
                        + [t.get_text() for ax in fig.axes if ax.get_legend()
                           for t in ax.get_legend().get_texts()])

    assert len(unclipped.axes) == 1 and "clipping min" not in words(unclipped)
    assert "% clipped" not in words(unclipped) and "no clipping" in words(unclipped)
    assert len(clipped.axes) == 2 and "after clipping min(||g||, θ)" in words(clipped)
    assert "% clipped" in words(clipped)


def test_inspect_command_writes_pngs_and_prints_the_decay(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--cell", "rnn", "--epochs", "2", "--out", run_dir, *TINY)[0] == 0
    code, text, err = run(capsys, "inspect", "--cells", "rnn", "lstm", "--window", "30",
                          "--hidden", "8", "--batch-size", "4", "--epochs", "1",
                          "--max-tokens", "1200", "--out", tmp_path / "insp", "--run", run_dir)
    assert code == 0, err
    assert re.search(r"^rnn +0\.\d+ ", text, re.M) and re.search(r"^lstm +0\.\d+ ", text, re.M)
    assert "mean forget gate" in text and "% of batches clipped" in text
    assert "how to read it:" in text and "lstm ×" in text
    for name in ("gradient_flow.png", "grad_norm.png"):
        assert (tmp_path / "insp" / name).read_bytes().startswith(PNG_MAGIC), name


def test_train_without_matplotlib_says_so_once_and_still_saves(capsys, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    argv = [a for a in TINY if a != "--no-plot"]
    code, _, err = run(capsys, "train", "--cell", "rnn", "--epochs", "2", "--checkpoint-every",
                       "1", "--out", tmp_path, *argv)
    assert code == 0 and len(err) == 1 and "matplotlib is not installed" in err[0]
    assert (tmp_path / "checkpoint.safetensors").exists()
    assert not (tmp_path / "perplexity.png").exists()


def test_resume_on_a_changed_corpus_is_refused(capsys, tmp_path):
    text = tmp_path / "novel.txt"
    text.write_text("the cat sat on the mat. " * 60, encoding="utf-8")
    args = ["train", "--corpus", text, "--cell", "rnn", "--epochs", "1", "--out", tmp_path / "r",
            "--hidden", "8", "--batch-size", "4", "--num-steps", "8", "--no-plot", "--no-progress"]
    assert run(capsys, *args)[0] == 0
    text.write_text("the dog sat on the log! " * 60, encoding="utf-8")  # other characters
    code, _, err = run(capsys, *args, "--resume", "--epochs", "2")
    assert code == 2 and len(err) == 1
    assert "--corpus" in err[0] and "has changed since the checkpoint was saved" in err[0]


@pytest.mark.parametrize("argv", [["--cell", "gru"], ["--cell", "lstm", "--backend", "torch"],
                                  ["--cell", "rnn", "--num-layers", "2"]])
def test_gradcheck_prints_the_worst_error_of_every_parameter(capsys, argv):
    if "torch" in argv:
        pytest.importorskip("torch")
    code, out, err = run(capsys, "gradcheck", *argv)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("gradcheck ") and "float64" in lines[0]
    rows = [ln.split() for ln in lines[1:-1]]
    assert all(len(r) == 2 and float(r[1]) < 1e-6 for r in rows)
    assert "state[0]" in [r[0] for r in rows] and "W_hq" in [r[0] for r in rows]
    assert lines[-1].startswith("worst relative error") and "(ok," in lines[-1]


def test_train_help_speaks_of_both_token_levels(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train a character- or word-level model" in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "word by word with --token word" in " ".join(out.split())
