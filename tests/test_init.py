"""Initialisation: d2l's N(0, 0.01²) for one layer, torch.nn's U(±1/√H) for stacked models."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, resolve_init


def test_d2l_init_is_unchanged_by_the_option():
    cfg = ModelConfig("lstm", 28, 64)
    a, b = init_params(cfg, seed=3), init_params(cfg, seed=3, init="d2l")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not a["b_f"].any() and 0.008 < a["W_hf"].std() < 0.012


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_init_is_uniform_within_one_over_sqrt_h(cell):
    H = 64
    cfg = ModelConfig(cell, 28, H, num_layers=2, bidirectional=True)
    p = init_params(cfg, seed=0, dtype=np.float64, init="torch")
    for name, v in p.items():
        fan = 2 * H if name in ("W_hq", "b_q") else H  # nn.Linear reads H*D features
        bound = 1 / np.sqrt(fan)
        assert np.abs(v).max() <= bound, name
        assert np.abs(v).max() > 0.8 * bound or v.size < 50, name  # fills the interval
        assert abs(v.std() - bound / np.sqrt(3)) < 0.2 * bound, name  # U(-b, b): std b/√3
    assert all(p[k].any() for k in p if k.startswith("b_"))  # biases drawn too, as torch.nn does


def test_auto_picks_d2l_for_one_layer_and_torch_for_stacked():
    assert resolve_init("auto", ModelConfig("lstm", 5, 4)) == "d2l"
    assert resolve_init("auto", ModelConfig("lstm", 5, 4, num_layers=2)) == "torch"
    assert resolve_init("d2l", ModelConfig("lstm", 5, 4, num_layers=3)) == "d2l"
    with pytest.raises(ConfigError, match="'xavier'"):
        TrainConfig(init="xavier")
    with pytest.raises(ConfigError, match="'xavier'"):
        init_params("lstm", 5, 4, init="xavier")


def test_cli_records_init_and_refuses_a_conflicting_resume(tmp_path, time_machine_dir,
                                                            monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    out = tmp_path / "run"
    base = ["train", "--cell", "lstm", "--num-layers", "2", "--hidden", "8", "--max-tokens",
            "1500", "--batch-size", "4", "--num-steps", "8", "--out", str(out), "--no-plot",
            "--no-progress", "--val-fraction", "0"]
    assert cli.main(base + ["--epochs", "1"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.train["init"] == "auto"
    assert ckpt.params["b_i"].any()  # stacked: torch's init, biases drawn
    capsys.readouterr()
    assert cli.main(base + ["--epochs", "2", "--resume", "--init", "d2l"]) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "auto" in err
