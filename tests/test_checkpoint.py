"""Checkpoints: exact round trips, every refusal named, atomic writes, across backends."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from rnnlab import checkpoint as ck
from rnnlab.checkpoint import (Checkpoint, atomic_write_bytes, check_resume, load_checkpoint,
                               rng_metadata, save_checkpoint)
from rnnlab.config import ModelConfig
from rnnlab.data import Vocab
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.generate import predict
from rnnlab.numpy_backend import NumpyBackend
from rnnlab.params import init_params

VOCAB = Vocab.from_list(["<unk>", " ", "e", "t", "a", "h", "i", "m"])  # V = 8


def make_checkpoint(cell="lstm", dtype=np.float32, H=5, seed=0, optimizer="adam"):
    """A checkpoint with random (not initial) parameters and a real optimiser state."""
    cfg = ModelConfig(cell, len(VOCAB), H)
    rng = np.random.default_rng(seed)
    params = {k: (rng.standard_normal(v.shape) * 0.3).astype(dtype)
              for k, v in init_params(cfg, seed=seed).items()}
    be = NumpyBackend(dtype=dtype)
    opt = be.make_optimizer(optimizer, params, 0.01)
    for _ in range(2):
        opt.step({k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()})
    state = opt.state_dict()
    state["name"] = optimizer
    history = [{"epoch": 1, "train_ppl": 7.5, "val_ppl": 8.25, "tokens_per_s": 1e5},
               {"epoch": 2, "train_ppl": 6.5, "val_ppl": None, "tokens_per_s": 1.5e5}]
    return Checkpoint(model=cfg, params=params, vocab=VOCAB, epoch=2,
                      train={"lr": 0.01, "batch_size": 4, "seed": seed, "optimizer": optimizer},
                      optimizer=state, history=history, rng=rng_metadata(seed),
                      extra={"corpus": "timemachine"},
                      arrays={"grad_norms": rng.random((6, 2))})


def write_raw(path, arrays: dict, meta: dict) -> None:
    """A file with a *valid* digest over whatever it holds: to reach the checks behind it."""
    from safetensors.numpy import save

    meta_json = json.dumps(meta, sort_keys=True)
    header = {"rnnlab": meta_json, "rnnlab_digest": ck._digest(meta_json, arrays)}
    path.write_bytes(save(arrays, metadata=header))


def raw_parts(ckpt: Checkpoint):
    """The arrays and metadata dict that save_checkpoint would write, to edit before writing."""
    from safetensors.numpy import load

    data = ck.encode_checkpoint(ckpt)
    n = int.from_bytes(data[:8], "little")
    return load(data), json.loads(json.loads(data[8:8 + n])["__metadata__"]["rnnlab"])


# ------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_round_trip_is_exact(tmp_path, cell, dtype):
    ckpt = make_checkpoint(cell, dtype)
    path = save_checkpoint(tmp_path / "run", ckpt)  # a directory: its checkpoint.safetensors
    assert path == tmp_path / "run" / "checkpoint.safetensors"
    got = load_checkpoint(tmp_path / "run")
    assert got.model == ckpt.model and got.vocab == ckpt.vocab and got.epoch == 2
    assert got.train == ckpt.train and got.history == ckpt.history and got.rng == ckpt.rng
    assert got.extra["corpus"] == "timemachine" and "rnnlab_version" in got.extra
    for k, v in ckpt.params.items():
        assert got.params[k].dtype == v.dtype and np.array_equal(got.params[k], v), k
    assert got.optimizer["name"] == "adam" and got.optimizer["step"] == 2
    assert set(got.optimizer["arrays"]) == set(ckpt.optimizer["arrays"])
    for k, v in ckpt.optimizer["arrays"].items():
        assert np.array_equal(got.optimizer["arrays"][k], v), k
    assert np.array_equal(got.arrays["grad_norms"], ckpt.arrays["grad_norms"])


def test_optimizer_state_resumes_exactly(tmp_path):
    """Adam restored from a checkpoint takes the same next step as the one never saved."""
    ckpt = make_checkpoint("lstm", np.float64, optimizer="adam")
    save_checkpoint(tmp_path / "c.safetensors", ckpt)
    got = load_checkpoint(tmp_path / "c.safetensors")
    be = NumpyBackend(dtype="float64")
    p1 = {k: v.copy() for k, v in ckpt.params.items()}
    p2 = be.from_numpy(got.params)
    o1 = be.make_optimizer("adam", p1, 0.01)
    o1.load_state_dict(ckpt.optimizer)
    o2 = be.make_optimizer("adam", p2, 0.01)
    o2.load_state_dict(got.optimizer)
    g = {k: np.random.default_rng(9).standard_normal(v.shape) for k, v in p1.items()}
    o1.step(g)
    o2.step(g)
    for k in p1:
        assert np.array_equal(p1[k], p2[k]), k


def test_rng_metadata_says_everything_derives_from_the_seed():
    rng = rng_metadata(7)
    assert rng["seed"] == 7 and rng["scheme"] == "derived"
    assert "[seed, e]" in rng["batches"] and "nothing" in rng["carried"]


# -------------------------------------------------------------------------- refusals


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, make_checkpoint())
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_file_is_refused(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(saved)


def test_other_format_version_is_refused(saved, monkeypatch):
    monkeypatch.setattr(ck, "FORMAT_VERSION", 2)
    save_checkpoint(saved, make_checkpoint())
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="format version 2; this rnnlab reads format version 1"):
        load_checkpoint(saved)


def test_checkpoint_of_another_cell_is_refused(saved, tmp_path):
    with pytest.raises(CheckpointError, match="holds a lstm model, not a gru model"):
        load_checkpoint(saved, cell="gru")
    # metadata that claims another cell than its arrays hold (digest intact)
    arrays, meta = raw_parts(make_checkpoint("lstm"))
    meta["model"]["cell"] = "rnn"
    write_raw(tmp_path / "x.safetensors", arrays, meta)
    with pytest.raises(CheckpointError, match="arrays do not fit a rnn model.*missing W_xh"):
        load_checkpoint(tmp_path / "x.safetensors")


def test_vocabulary_that_does_not_fit_the_model_is_refused(saved, tmp_path):
    arrays, meta = raw_parts(make_checkpoint())
    meta["vocab"] = meta["vocab"][:5]
    write_raw(tmp_path / "x.safetensors", arrays, meta)
    with pytest.raises(CheckpointError, match="vocabulary has 5 tokens but the lstm model "
                                              "expects vocab_size 8"):
        load_checkpoint(tmp_path / "x.safetensors")
    other = Vocab.from_list(["<unk>", " ", "e", "t", "a", "h", "i", "x"])
    with pytest.raises(CheckpointError, match="another vocabulary.*token 7 is 'm' in the "
                                              "checkpoint, 'x' expected"):
        load_checkpoint(saved, vocab=other)
    with pytest.raises(CheckpointError, match="8 tokens in the checkpoint, 3 expected"):
        load_checkpoint(saved, vocab=Vocab.from_list(["<unk>", "a", "b"]))


def test_saving_an_inconsistent_checkpoint_is_refused(tmp_path):
    bad = make_checkpoint()
    bad.vocab = Vocab.from_list(["<unk>", "a"])
    with pytest.raises(CheckpointError, match="refusing to save.*2 tokens"):
        save_checkpoint(tmp_path / "c.safetensors", bad)
    assert not any(tmp_path.iterdir())


def test_array_byte_flipped_by_hand_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x01  # one bit of the last array's data
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 digest.*edited by hand"):
        load_checkpoint(saved)


def test_metadata_edited_by_hand_is_refused(saved):
    data = saved.read_bytes()
    edited = data.replace(b'\\"epoch\\": 2', b'\\"epoch\\": 9')  # JSON inside the JSON header
    assert edited != data and len(edited) == len(data)
    saved.write_bytes(edited)
    with pytest.raises(CheckpointError, match="SHA-256 digest.*edited by hand"):
        load_checkpoint(saved)


def test_metadata_that_is_not_json_is_refused(tmp_path):
    from safetensors.numpy import save

    arrays = {"param.b_q": np.zeros(3, np.float32)}
    (tmp_path / "x.safetensors").write_bytes(save(arrays, metadata={"rnnlab": "{not json"}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "x.safetensors")


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint\n",
                                     b"\x80\x04\x95pickle\x00\x00\x00",
                                     bytes(range(256)) * 4])
def test_file_that_is_not_safetensors_is_refused(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(path)


def test_safetensors_file_from_elsewhere_is_refused(tmp_path):
    from safetensors.numpy import save

    (tmp_path / "other.safetensors").write_bytes(save({"w": np.ones(3, np.float32)}))
    with pytest.raises(CheckpointError, match="not an rnnlab checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope.checkpoint.safetensors"):
        load_checkpoint(tmp_path / "nope")


def test_check_resume_names_every_conflict():
    ckpt = make_checkpoint()
    check_resume(ckpt, ckpt.model, VOCAB, dict(ckpt.train))  # the same run: fine
    other = ModelConfig("lstm", len(VOCAB), 7)
    with pytest.raises(ConfigError, match="num_hiddens: checkpoint has 5, asked 7.*batch_size: "
                                          "checkpoint has 4, asked 8"):
        check_resume(ckpt, other, VOCAB, {**ckpt.train, "batch_size": 8})


# ---------------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("failing", ["replace", "fsync", "interrupt"])
def test_failed_write_keeps_the_old_checkpoint_and_no_temp_file(saved, monkeypatch, failing):
    before = saved.read_bytes()

    def boom(*args, **kwargs):
        if failing == "interrupt":
            raise KeyboardInterrupt  # Ctrl-C in the middle of a save
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync" if failing != "replace" else "replace", boom)
    newer = make_checkpoint(seed=1)
    with pytest.raises(KeyboardInterrupt if failing == "interrupt" else OSError):
        save_checkpoint(saved, newer)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]  # no .tmp left
    assert load_checkpoint(saved).epoch == 2


def test_atomic_write_keeps_permissions_and_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"one")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644  # not mkstemp's 0600
        os.chmod(tmp_path / "a.bin", 0o640)
        atomic_write_bytes(tmp_path / "a.bin", b"two")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
        assert (tmp_path / "a.bin").read_bytes() == b"two"
    finally:
        os.umask(old)


# ----------------------------------------------------------------- across backends


def test_checkpoint_moves_between_backends_and_generates_the_same_text(tmp_path):
    """Saved from NumPy, loaded in torch and saved again, loaded in NumPy: the arrays are
    bit-identical, and greedy and seeded sampled text agree on both backends."""
    torch = pytest.importorskip("torch")
    from rnnlab.torch_backend import TorchBackend

    ckpt = make_checkpoint("lstm", np.float64, H=8)
    save_checkpoint(tmp_path / "np.safetensors", ckpt)
    loaded = load_checkpoint(tmp_path / "np.safetensors")
    tb, nb = TorchBackend(dtype="float64"), NumpyBackend(dtype="float64")
    p_t = tb.from_numpy(loaded.params)
    assert all(isinstance(v, torch.Tensor) for v in p_t.values())
    resaved = Checkpoint(model=loaded.model, params=tb.to_numpy(p_t), vocab=loaded.vocab,
                         epoch=loaded.epoch)
    save_checkpoint(tmp_path / "torch.safetensors", resaved)
    back = load_checkpoint(tmp_path / "torch.safetensors")
    for k, v in ckpt.params.items():
        assert np.array_equal(back.params[k], v), k
    p_n = nb.from_numpy(back.params)
    for kwargs in ({}, {"strategy": "sample", "seed": 3},
                   {"strategy": "sample", "temperature": 0.7, "top_k": 4, "seed": 11}):
        t_text = predict("the", 40, tb, loaded.model, p_t, VOCAB, **kwargs)
        n_text = predict("the", 40, nb, back.model, p_n, VOCAB, **kwargs)
        assert t_text == n_text, kwargs


@pytest.mark.cuda
def test_checkpoint_loads_on_gpu_and_generates_the_same_text(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from rnnlab.torch_backend import TorchBackend

    ckpt = make_checkpoint("gru", np.float64, H=8)
    save_checkpoint(tmp_path / "c.safetensors", ckpt)
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    gb, nb = TorchBackend(dtype="float64", device="cuda"), NumpyBackend(dtype="float64")
    p_g = gb.from_numpy(loaded.params)
    assert all(v.is_cuda for v in p_g.values())
    for k, v in gb.to_numpy(p_g).items():
        assert np.array_equal(v, ckpt.params[k]), k
    for kwargs in ({}, {"strategy": "sample", "seed": 5}):
        assert (predict("the", 30, gb, loaded.model, p_g, VOCAB, **kwargs)
                == predict("the", 30, nb, loaded.model, nb.from_numpy(loaded.params), VOCAB,
                           **kwargs))
