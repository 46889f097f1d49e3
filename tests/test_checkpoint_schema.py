"""Loading checks every metadata field and every array (rnnlab.checkpoint_schema).

Each case below writes a checkpoint whose digest is valid (as code other than
rnnlab's, or a hand edit followed by a new digest, would), with one field or array
wrong, and asserts a CheckpointError naming it: never a traceback, never a silent
reinterpretation ("nope" read as the history ['n', 'o', 'p', 'e']), never a NaN Adam
moment loaded as "the last good checkpoint". Saving refuses the same faults.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

import rnnlab.checkpoint as ck
from rnnlab.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnnlab.checkpoint_schema import OPTIMIZER_ARRAYS
from rnnlab.config import OPTIMIZERS, ModelConfig
from rnnlab.data import Vocab
from rnnlab.errors import CheckpointError, VocabError
from rnnlab.numpy_backend.optim import make_optimizer
from rnnlab.params import init_params
from rnnlab.train import TrainConfig

V, H = 5, 4


def valid_checkpoint() -> Checkpoint:
    cfg = ModelConfig("rnn", V, H)
    params = init_params(cfg, seed=0)
    opt = make_optimizer("adam", params, 0.1)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    state = opt.state_dict()
    state["name"] = "adam"
    state["arrays"] = {k: np.array(v) for k, v in state["arrays"].items()}
    return Checkpoint(model=cfg, params=params, vocab=Vocab(list("abcd")), epoch=2,
                      train=TrainConfig(optimizer="adam", lr=0.1).to_dict(), optimizer=state,
                      history=[{"epoch": 1, "train_ppl": 4.5, "val_ppl": None, "num_tokens": 10},
                               {"epoch": 2, "train_ppl": 4.0, "val_ppl": 4.2, "num_tokens": 10}],
                      rng=ck.rng_metadata(0), extra={"corpus": "notes.txt", "dtype": "float32"},
                      arrays={"grad_norms": np.array([[0.5, 1.0], [1.0, 0.8]])})


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """(metadata, arrays) of a valid checkpoint file."""
    path = save_checkpoint(tmp_path_factory.mktemp("valid") / "c", valid_checkpoint())
    from safetensors.numpy import load

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(json.loads(data[8:8 + n])["__metadata__"]["rnnlab"])
    return meta, load(data)


def write_raw(path, meta: dict, arrays: dict):
    """A checkpoint file with a valid digest over whatever it holds."""
    from safetensors.numpy import save

    meta_json = json.dumps(meta, sort_keys=True)
    header = {"rnnlab": meta_json, "rnnlab_digest": ck._digest(meta_json, arrays)}
    path.write_bytes(save(arrays, metadata=header))
    return path


def test_the_valid_checkpoint_loads(raw, tmp_path):
    meta, arrays = raw
    ckpt = load_checkpoint(write_raw(tmp_path / "ok.safetensors", meta, arrays))
    assert ckpt.epoch == 2 and ckpt.optimizer["step"] == 1 and len(ckpt.history) == 2


def _set(path: str, value):
    """A change to the metadata at a dotted path ("train.lr", "history.0.epoch")."""
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


_DELETE = object()

META_CASES = [
    ("epoch", "three", r"metadata field 'epoch' is 'three', expected a non-negative integer"),
    ("epoch", -1, r"metadata field 'epoch' is -1, expected a non-negative integer"),
    ("epoch", 2.0, r"metadata field 'epoch' is 2\.0, expected a non-negative integer"),
    ("epoch", True, r"metadata field 'epoch' is True"),
    ("history", "nope", r"metadata field 'history' is 'nope', expected a list of per-epoch dicts"),
    ("history.0", [1, 2], r"metadata field 'history\[0\]' is \[1, 2\], expected a JSON object"),
    ("history.1.train_ppl", "4.0", r"'history\[1\]\.train_ppl' is '4\.0', expected a number"),
    ("history.1.epoch", 0, r"'history\[1\]\.epoch' is 0, expected a positive integer"),
    ("history.0.val_ppl", "x", r"'history\[0\]\.val_ppl' is 'x', expected a number or null"),
    ("train", "sgd", r"metadata field 'train' is 'sgd', expected a JSON object"),
    ("train.lr", "1", r"metadata field 'train\.lr' is invalid: lr must be a positive finite "
                      r"number, got '1'"),
    ("train.use_random_iter", "no", r"'train\.use_random_iter' is invalid: .* True or False"),
    ("train.batch_size", -4, r"'train\.batch_size' is invalid: batch_size must be a positive"),
    ("train.seed", -1, r"'train\.seed' is invalid: seed must be a non-negative integer"),
    ("train.bogus", 1, r"metadata field 'train' has unknown key\(s\) bogus"),
    ("model.dropout", "x", r"'model\.dropout' is invalid: dropout must be a number in \[0, 1\)"),
    ("model.num_hiddens", "4", r"'model\.num_hiddens' is invalid: num_hiddens must be a positive"),
    ("model.cell", _DELETE, r"metadata field 'model' lacks cell"),
    ("vocab", "<unk>abcd", r"metadata field 'vocab' is '<unk>abcd', expected a non-empty list"),
    ("vocab.2", 7, r"metadata field 'vocab\[2\]' is 7, expected a string"),
    ("optimizer.step", -3, r"metadata field 'optimizer\.step' is -3, expected a non-negative"),
    ("optimizer.name", "rmsprop", r"metadata field 'optimizer\.name' is 'rmsprop', expected one of"),
    ("optimizer.name", "sgd", r"'optimizer\.name' is 'sgd' but 'train\.optimizer' is 'adam'"),
    ("optimizer", [], r"metadata field 'optimizer' is \[\], expected a JSON object"),
    ("rng", None, r"metadata field 'rng' is None, expected a JSON object"),
    ("rng.seed", "a", r"metadata field 'rng\.seed' is 'a', expected a non-negative integer"),
    ("extra", ["x"], r"metadata field 'extra' is \['x'\], expected a JSON object"),
    ("extra.dtype", "float16", r"metadata field 'extra\.dtype' is 'float16', expected one of"),
    ("extra.world_size", 0, r"metadata field 'extra\.world_size' is 0, expected a positive"),
    ("extra.options", "all", r"metadata field 'extra\.options' is 'all', expected a JSON object"),
    ("surprise", 1, r"unknown metadata field\(s\) surprise"),
]


@pytest.mark.parametrize("field, value, match", META_CASES,
                         ids=[f"{f}={'<deleted>' if v is _DELETE else repr(v)}"[:40] for f, v, _ in META_CASES])
def test_a_wrong_metadata_field_is_named(raw, tmp_path, field, value, match):
    meta, arrays = copy.deepcopy(raw[0]), raw[1]
    _set(field, value)(meta)
    path = write_raw(tmp_path / "bad.safetensors", meta, arrays)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert re.search(match, str(info.value)), str(info.value)


def _nan(a):
    a = a.copy()
    a.flat[1] = np.nan
    return a


ARRAY_CASES = [
    ("optim.m.W_xh", _nan, r"optimiser array 'm\.W_xh' holds 1 NaN or infinite value"),
    ("optim.v.b_q", lambda a: a - 1.0, r"optimiser array 'v\.b_q' holds a negative value"),
    ("optim.v.W_hh", lambda a: a[:2], r"optimiser array 'v\.W_hh' has shape \(2, 4\), expected "
                                      r"\(4, 4\)"),
    ("optim.m.W_hq", lambda a: a.astype(np.int32), r"'m\.W_hq' must be a float32 or float64"),
    ("optim.m.b_h", None, r"adam optimiser state has no m\.b_h"),
    ("optim.z.b_h", lambda a: np.zeros(H, np.float32), r"unexpected arrays z\.b_h"),
    ("array.grad_norms", _nan, r"array 'grad_norms' holds 1 NaN"),
    ("array.grad_norms", lambda a: a.ravel(), r"'grad_norms' has shape \(4,\), expected"),
    ("param.W_hh", _nan, r"parameter 'W_hh' holds NaN or infinite values"),
    ("weights.W_hh", lambda a: np.zeros(2), r"unknown array\(s\) weights\.W_hh"),
]


@pytest.mark.parametrize("key, change, match", ARRAY_CASES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(ARRAY_CASES)])
def test_every_array_is_checked(raw, tmp_path, key, change, match):
    meta, arrays = raw[0], dict(raw[1])
    if change is None:
        del arrays[key]
    else:
        arrays[key] = change(arrays.get(key, arrays["optim.m.b_h"]))
    with np.errstate(invalid="ignore"):
        path = write_raw(tmp_path / "bad.safetensors", meta, arrays)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert re.search(match, str(info.value)), str(info.value)


def test_optimiser_arrays_table_matches_the_optimisers():
    """OPTIMIZER_ARRAYS names exactly the arrays each optimiser's state_dict holds."""
    params = init_params("rnn", V, H)
    assert set(OPTIMIZER_ARRAYS) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        arrays = make_optimizer(name, params, 0.1).state_dict()["arrays"]
        assert arrays.keys() == {f"{s}.{p}" for s in OPTIMIZER_ARRAYS[name] for p in params}, name


# ---------------------------------------------------------------------- saving


SAVE_CASES = [
    (lambda c: setattr(c, "params", {k: v.tolist() for k, v in c.params.items()}),
     r"refusing to save a checkpoint: parameter 'W_xh' must be a float32 or float64 NumPy "
     r"array, got list"),
    (lambda c: setattr(c, "params", list(c.params.values())),
     r"params must be a non-empty dict of NumPy arrays"),
    (lambda c: setattr(c, "epoch", -1), r"metadata field 'epoch' is -1"),
    (lambda c: c.history.append({"epoch": 3, "note": object()}),
     r"metadata field 'metadata\.history\[2\]\.note' is <object object at .*> of type object"),
    (lambda c: c.history.append({"epoch": 3, "train_ppl": np.arange(3)}),
     r"'metadata\.history\[2\]\.train_ppl' is ndarray of shape \(3,\)"),
    (lambda c: setattr(c, "history", "nope"), r"metadata field 'history' is 'nope'"),
    (lambda c: c.optimizer["arrays"].update({"m.W_xh": c.optimizer["arrays"]["m.W_xh"] * np.nan}),
     r"optimiser array 'm\.W_xh' holds 20 NaN"),
    (lambda c: setattr(c, "train", {**c.train, "lr": "fast"}),
     r"metadata field 'train\.lr' is invalid"),
    (lambda c: setattr(c, "vocab", ["<unk>", "a"]), r"vocab must be a rnnlab Vocab, got list"),
    (lambda c: setattr(c, "extra", {"note": {1: 2}}), r"'metadata\.extra\.note' has a key 1"),
]


@pytest.mark.parametrize("change, match", SAVE_CASES, ids=[str(i) for i in range(len(SAVE_CASES))])
def test_saving_refuses_what_loading_would(tmp_path, change, match):
    ckpt = valid_checkpoint()
    with np.errstate(invalid="ignore"):
        change(ckpt)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(tmp_path / "c", ckpt)
    assert re.search(match, str(info.value)), str(info.value)
    assert not (tmp_path / "c").exists()


def test_numpy_scalars_in_the_metadata_are_saved_as_numbers(tmp_path):
    """The history of a loop written by hand holds np.float64 and np.int64: saved as the
    numbers they are, and loaded back equal."""
    ckpt = valid_checkpoint()
    ckpt.history.append({"epoch": np.int64(3), "train_ppl": np.float32(3.5), "val_ppl": None})
    ckpt.epoch = np.int64(3)
    got = load_checkpoint(save_checkpoint(tmp_path / "c", ckpt))
    assert got.epoch == 3 and got.history[-1] == {"epoch": 3, "train_ppl": 3.5, "val_ppl": None}
    assert type(got.history[-1]["epoch"]) is int


def test_a_vocabulary_of_non_strings_is_refused():
    """Vocab([1, 2, 3]) used to build, and save a checkpoint that could never load."""
    with pytest.raises(VocabError, match=r"token 1 \(int\) is not a string"):
        Vocab([1, 2, 3])
    with pytest.raises(VocabError, match=r"reserved token 7 \(int\) is not a string"):
        Vocab(list("ab"), reserved_tokens=[7])
    assert len(Vocab([["a", "b"], ["b"]])) == 3  # lines of tokens, as d2l's Vocab takes
