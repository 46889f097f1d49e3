"""The bad-input table (issue 7): one row per bad input, documented in docs/errors.md.

Every row asserts two things: the exception is exactly the rnnlab type the table names,
and its message names the file, key, value or shape at fault (a regular expression).
The CLI rows assert the exit status and that stderr is exactly one line naming the cause.
A last test checks that every row id appears in docs/errors.md, so the table and the
documentation cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import sys
from typing import Callable

import numpy as np
import pytest

import rnnlab
import rnnlab.data
import rnnlab.memory
import rnnlab.params
import rnnlab.tasks
import rnnlab.threads
from rnnlab import cli
from rnnlab.checkpoint import Checkpoint, check_resume, load_checkpoint, save_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.data import Tokenizer, Vocab, download, find_time_machine, load_corpus, load_corpus_text
from rnnlab.distributed import launch_env
from rnnlab.errors import (
    BackendError,
    ChecksumError,
    CheckpointError,
    ConfigError,
    CorpusError,
    CorpusNotFoundError,
    NoConventionFitsError,
    NonFiniteError,
    NonFiniteParamError,
    ParamError,
    SaveError,
    ShapeError,
    SubjectError,
    VocabError,
)
from rnnlab.generate import predict, prefix_ids
from rnnlab.numpy_backend.optim import Adam
from rnnlab.params import from_d2l_list, init_params
from rnnlab.train import TrainConfig, evaluate, train

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "errors.md"
V, H, B, T = 5, 4, 2, 3  # the small model of the backend rows


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    """No row reads or fills the user's cache (conftest keeps every test off the network)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))


class Ctx:
    """What a row needs: a temp directory, monkeypatch, a numpy backend and a small rnn."""

    def __init__(self, tmp: pathlib.Path, mp: pytest.MonkeyPatch):
        self.tmp, self.mp = tmp, mp
        self.be = rnnlab.get_backend("numpy")
        rng = np.random.default_rng(7)
        raw = init_params("rnn", V, H, seed=1)
        raw = {k: (rng.standard_normal(v.shape) * 0.5).astype(np.float32) for k, v in raw.items()}
        self.p = self.be.from_numpy(raw)  # random biases too, not zeros
        self.X = rng.integers(0, V, (B, T))  # (B, T)
        self.st = (rng.standard_normal((B, H)).astype(np.float32),)  # (B, H)

    def file(self, name: str, content: bytes) -> pathlib.Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def params(self, **changes) -> dict:
        """The rnn's params with entries replaced (``None`` deletes the key)."""
        out = dict(self.p)
        for k, v in changes.items():
            if v is None:
                out.pop(k)
            else:
                out[k] = v
        return out

    def checkpoint(self, name="run") -> pathlib.Path:
        """A valid small checkpoint file."""
        cfg = ModelConfig("rnn", V, H)
        vocab = Vocab(list("abcd"))
        return save_checkpoint(self.tmp / name, Checkpoint(model=cfg, params=self.be.to_numpy(self.p),
                                                           vocab=vocab, epoch=1))


@pytest.fixture
def ctx(tmp_path, monkeypatch) -> Ctx:
    return Ctx(tmp_path, monkeypatch)


@dataclasses.dataclass(frozen=True)
class Row:
    id: str  # the row's name in docs/errors.md
    run: Callable[[Ctx], object]  # must raise
    exc: type  # exactly this type
    match: str  # regex the message must contain: names the file / key / value / shape


def _deny_reading(c: Ctx, path: pathlib.Path) -> pathlib.Path:
    """``path`` made unreadable: mode 0, or, for root (who reads anything), every
    ``Path.read_bytes`` refused by hand."""
    if os.geteuid() == 0:
        def denied(self):
            raise PermissionError(13, "Permission denied", str(self))

        c.mp.setattr(pathlib.Path, "read_bytes", denied)
    else:
        path.chmod(0)
    return path


def _unreadable(c: Ctx):
    return load_corpus(_deny_reading(c, c.file("secret.txt", b"hidden text")))


def _special(c: Ctx, kind: str):
    """A named pipe or /dev/zero: reading either would never return."""
    if os.name != "posix" or not os.path.exists("/dev/zero"):
        pytest.skip("POSIX pipes and devices")
    if kind == "fifo":
        os.mkfifo(c.tmp / "pipe")
        return load_corpus(c.tmp / "pipe")
    return load_corpus("/dev/zero")


def _download_wrong_sha(c: Ctx):
    src = c.file("served.txt", b"not the time machine")
    dest = c.tmp / "cache" / "timemachine.txt"
    try:
        download(src.as_uri(), dest, sha1="0" * 40)
    finally:
        assert not dest.exists()  # nothing half-checked is kept


def _corrupt(c: Ctx, how: str):
    path = c.checkpoint()
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip":
        data[-3] ^= 0xFF  # a byte of the last array
    path.write_bytes(bytes(data))
    return load_checkpoint(path)


def _plain_safetensors(c: Ctx):
    from safetensors.numpy import save_file

    path = c.tmp / "other.safetensors"
    save_file({"weight": np.zeros(3, np.float32)}, str(path))
    return load_checkpoint(path)


def _other_format_version(c: Ctx):
    import rnnlab.checkpoint as ck

    c.mp.setattr(ck, "FORMAT_VERSION", 99)
    path = c.checkpoint()
    c.mp.undo()
    return load_checkpoint(path)


def _rewritten(c: Ctx, meta_changes=None, array_changes=None, drop=()):
    """A valid small Adam checkpoint re-written with metadata fields or arrays replaced
    (``drop``: metadata fields or arrays deleted) and a valid digest (what code other
    than rnnlab's could write); then loaded."""
    import json

    import rnnlab.checkpoint as ck
    from safetensors.numpy import load, save

    raw = c.be.to_numpy(c.p)
    opt = Adam(raw, 0.1)
    opt.step({k: np.ones_like(v) for k, v in raw.items()})
    state = {**opt.state_dict(), "name": "adam"}
    path = save_checkpoint(c.tmp / "run", Checkpoint(
        model=ModelConfig("rnn", V, H), params=raw, vocab=Vocab(list("abcd")), epoch=1,
        train=TrainConfig(optimizer="adam").to_dict(), optimizer=state,
        history=[{"epoch": 1, "train_ppl": 4.0}]))
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta, arrays = json.loads(json.loads(data[8:n + 8])["__metadata__"]["rnnlab"]), load(data)
    meta.update(meta_changes or {})
    arrays.update(array_changes or {})
    for key in drop:
        (meta if key in meta else arrays).pop(key)
    meta_json = json.dumps(meta, sort_keys=True)
    path.write_bytes(save(arrays, metadata={"rnnlab": meta_json,
                                            "rnnlab_digest": ck._digest(meta_json, arrays)}))
    return load_checkpoint(path)


def _nan_at(a, i=0):
    a = np.array(a)
    a.flat[i] = np.nan
    return a


def _disk_full(c: Ctx):
    """The disk fills up while the second save writes its temporary file."""
    path = c.checkpoint()  # the first save succeeds
    real = os.fsync

    def full(fd):
        if ".checkpoint.safetensors." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        return real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to tell the temporary file's descriptor")
    c.mp.setattr(os, "fsync", full)
    try:
        return c.checkpoint()
    finally:
        c.mp.undo()
        assert load_checkpoint(path).epoch == 1  # the first checkpoint is whole
        assert not list(path.parent.glob(".checkpoint.safetensors.*.tmp"))  # no debris


def _fifo(c: Ctx, name: str = "pipe") -> pathlib.Path:
    """A named pipe: opening it for reading would wait for a writer forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("POSIX named pipes")
    path = c.tmp / name
    os.mkfifo(path)
    return path


def _torch_backend(**options):
    pytest.importorskip("torch")
    return rnnlab.get_backend("torch", **{"device": "cpu", **options})


def _small_model(c: Ctx):
    return ModelConfig("rnn", V, H), c.p, Vocab(list("abcd"))


def _save_ckpt(c: Ctx, params=None, vocab=None):
    cfg = ModelConfig("rnn", V, H)
    params = c.be.to_numpy(c.p) if params is None else params
    vocab = Vocab(list("abcd")) if vocab is None else vocab
    return save_checkpoint(c.tmp / "bad", Checkpoint(model=cfg, params=params, vocab=vocab))


def _resume_other_vocab(c: Ctx):
    ckpt = load_checkpoint(c.checkpoint())
    return check_resume(ckpt, ckpt.model, Vocab(list("abcz")), {})


def _resume_other_hidden(c: Ctx):
    ckpt = load_checkpoint(c.checkpoint())
    return check_resume(ckpt, ModelConfig("rnn", V, 8), ckpt.vocab, {})


def _train_tiny(c: Ctx, text: str, **tc):
    path = c.file("tiny.txt", text.encode())
    corpus, vocab = load_corpus_text(path)
    cfg = ModelConfig("rnn", len(vocab), 4)
    params = c.be.from_numpy(init_params(cfg, seed=0))
    tcfg = TrainConfig(**{"num_epochs": 1, "batch_size": 4, "num_steps": 8, **tc})
    return train(c.be, cfg, params, corpus, tcfg)


def _poisoned(c: Ctx, call: str):
    p = c.params()
    p["W_hh"] = p["W_hh"].copy()
    p["W_hh"][1, 2] = np.nan  # after from_numpy: only the non-finite output reveals it
    if call == "forward":
        return c.be.forward("rnn", p, c.X, c.st)
    return c.be.loss_and_grads("rnn", p, c.X, c.X, c.st)


def _train_poisoned(c: Ctx):
    text = "the quick brown fox jumps over the lazy dog " * 3
    corpus, vocab = load_corpus_text(c.file("fox.txt", text.encode()))
    cfg = ModelConfig("rnn", len(vocab), 4)
    params = c.be.from_numpy(init_params(cfg, seed=0))
    params["b_h"][3] = np.nan
    return train(c.be, cfg, params, corpus, TrainConfig(num_epochs=1, batch_size=2, num_steps=5))


def _train_lr_overflow(c: Ctx):
    text = "the quick brown fox jumps over the lazy dog " * 3
    corpus, vocab = load_corpus_text(c.file("fox.txt", text.encode()))
    cfg = ModelConfig("lstm", len(vocab), 8)
    params = c.be.from_numpy(init_params(cfg, seed=0))
    return train(c.be, cfg, params, corpus,
                 TrainConfig(num_epochs=2, batch_size=2, num_steps=5, lr=1e39, clip_theta=1e30))


def _train_diverging(c: Ctx):
    text = "the quick brown fox jumps over the lazy dog " * 3
    corpus, vocab = load_corpus_text(c.file("fox.txt", text.encode()))
    cfg = ModelConfig("lstm", len(vocab), 32)
    params = c.be.from_numpy(init_params(cfg, seed=0))
    return train(c.be, cfg, params, corpus,
                 TrainConfig(num_epochs=3, batch_size=2, num_steps=5, lr=1e30, clip_theta=1.0))



def _not_json(c: Ctx):
    """A safetensors file whose rnnlab metadata is not JSON (edited in a text editor)."""
    from safetensors.numpy import save

    path = c.tmp / "edited.safetensors"
    path.write_bytes(save({"param.b_q": np.zeros(V, np.float32)},
                          metadata={"rnnlab": "{'epoch': 3", "rnnlab_digest": "0" * 64}))
    return load_checkpoint(path)


def _deep(c: Ctx, **cfg):
    """A two-layer rnn (dropout between its layers), its params and a zero state."""
    cfg = ModelConfig("rnn", V, H, num_layers=2, **cfg)
    return cfg, c.be.from_numpy(init_params(cfg, seed=0)), c.be.begin_state(cfg, B)


def _with_masks(c: Ctx, masks):
    """loss_and_grads of a two-layer rnn with these dropout masks; ``masks`` may be a
    function of the valid masks."""
    from rnnlab.dropout import dropout_masks

    cfg, p, st = _deep(c, dropout=0.5)
    if callable(masks):
        masks = masks(dropout_masks(cfg, T, B, np.random.default_rng(0)))
    return c.be.loss_and_grads(cfg, p, c.X, c.X, st, dropout_masks=masks)


def _weighted(c: Ctx, weights):
    return c.be.loss_and_grads("rnn", c.p, c.X, c.X, c.st, weights=weights)


def _torch_nn_d2l_gru(c: Ctx):
    be = _torch_backend(impl="nn")
    cfg = ModelConfig("gru", V, H)  # gru_form="d2l", the default
    return be.loss_and_grads(cfg, be.from_numpy(init_params(cfg, seed=0)), c.X, c.X,
                             be.begin_state(cfg, B))



def _uninstalled(mp: pytest.MonkeyPatch, package: str, *users: str) -> None:
    """``import package`` fails as where it is not installed; the modules in ``users``
    (and below them) are imported afresh, so they meet the failure."""
    if package == "torch":
        pytest.importorskip("torch")  # the rows that need torch's absence need it here first
    for name in [m for m in sys.modules if m.startswith(users)] if users else []:
        mp.delitem(sys.modules, name)
    mp.setitem(sys.modules, package, None)


def _unreadable_checkpoint(c: Ctx):
    return load_checkpoint(_deny_reading(c, c.checkpoint()))


def _save_with(c: Ctx, **fields):
    return save_checkpoint(c.tmp / "c", Checkpoint(
        model=ModelConfig("rnn", V, H), params=c.be.to_numpy(c.p), vocab=Vocab(list("abcd")),
        **fields))


def _verify(*args, **kwargs):
    from rnnlab.testing import verify

    return verify(*args, **kwargs)


# every verify refusal of code that does not fit its convention ends by saying how any
# code can be checked: wrapped in a Protocol
WRAP_RE = (r"; to check code laid out otherwise, wrap it in an rnnlab\.testing\.Protocol and give "
           r"--convention protocol \(leave --convention out for a skeleton to edit; "
           r"docs/verify\.md, 'Wrap your code in a Protocol'\)$")
MIN_CHAR = str(pathlib.Path(__file__).parents[1] / "examples" / "verify" / "min_char_rnn.py")


def _step(c: Ctx, **grads):
    """One SGD step with the rnn's own gradients, some replaced (``None`` drops one)."""
    opt = c.be.make_optimizer("sgd", c.p, 0.1)
    g = {k: np.zeros_like(v) for k, v in c.p.items()}
    for k, v in grads.items():
        if v is None:
            g.pop(k)
        else:
            g[k] = v
    return opt.step(g)


def _from_nn(**modules):
    torch = pytest.importorskip("torch")
    from rnnlab.torch_backend.nn_map import from_nn_module

    rnn = modules.get("rnn") or torch.nn.RNN(V, H)
    return from_nn_module(ModelConfig("rnn", V, H), rnn, modules.get("linear") or torch.nn.Linear(H, V))


def _torch_half(c: Ctx):
    torch = pytest.importorskip("torch")
    be = _torch_backend()
    params = {k: torch.tensor(v).half() for k, v in c.be.to_numpy(c.p).items()}
    return be.forward("rnn", params, c.X, (torch.zeros(B, H).half(),))


def _regression(c: Ctx, X, Y):
    """loss_and_grads of an IRNN reading 2 reals a step, with the squared-error head."""
    cfg = ModelConfig("irnn", 1, H, input_size=2, head="mse")
    return c.be.loss_and_grads(cfg, c.be.from_numpy(init_params(cfg)), X, Y,
                               c.be.begin_state(cfg, B))


def _truncated_bidirectional(c: Ctx):
    cfg = ModelConfig("rnn", V, H, bidirectional=True)
    return c.be.loss_and_grads(cfg, init_params(cfg), c.X, c.X, c.be.begin_state(cfg, B),
                               truncate=2)


def _connect_without_launcher(c: Ctx):
    pytest.importorskip("torch")
    from rnnlab.torch_backend.distributed import connect

    for name in ("RANK", "WORLD_SIZE"):
        c.mp.delenv(name, raising=False)
    return connect()


ROWS = [
    # ---- corpus files
    Row("corpus-empty", lambda c: load_corpus(c.file("empty.txt", b"")),
        CorpusError, r"'.*empty\.txt' is empty"),
    Row("corpus-blank", lambda c: load_corpus(c.file("blank.txt", b" \n\t\r\n")),
        CorpusError, r"blank\.txt' is whitespace only \(5 bytes\)"),
    Row("corpus-binary", lambda c: load_corpus(c.file("model.bin", b"\x89PNG\r\n\x1a\n\x00\x00")),
        CorpusError, r"model\.bin' looks binary: it has a NUL byte at offset 8"),
    Row("corpus-not-utf8", lambda c: load_corpus(c.file("latin1.txt", "café au lait".encode("latin-1"))),
        CorpusError, r"latin1\.txt' is not valid UTF-8: byte 0xe9 at offset 3"),
    Row("corpus-directory", lambda c: load_corpus(c.tmp),
        CorpusError, r"corpus path '.*' is a directory"),
    Row("corpus-fifo", lambda c: _special(c, "fifo"),
        CorpusError, r"corpus path '.*pipe' is not a regular file \(a device, pipe or socket\)"),
    Row("corpus-device", lambda c: _special(c, "device"),
        CorpusError, r"corpus path '/dev/zero' is not a regular file"),
    Row("corpus-unreadable", _unreadable,
        CorpusError, r"secret\.txt' is not readable: Permission denied"),
    Row("corpus-empty-name", lambda c: load_corpus(""),
        CorpusError, r"corpus path is '', an empty name: give a UTF-8 text file, or 'timemachine'"),
    Row("corpus-path-type", lambda c: load_corpus_text(None),
        ConfigError, r"corpus path must be a str or os\.PathLike, got NoneType"),
    Row("corpus-missing", lambda c: load_corpus(c.tmp / "nothere.txt"),
        CorpusNotFoundError, r"nothere\.txt' does not exist"),
    Row("corpus-too-short", lambda c: _train_tiny(c, "abcdefghij"),
        CorpusError, r"has 10 tokens; batch_size=4 and num_steps=8 need at least 41"),
    Row("corpus-val-too-short",
        lambda c: evaluate(c.be, ModelConfig("rnn", V, H), c.p, np.arange(4) % V, 2, 8),
        CorpusError, r"validation split has 4 tokens, fewer than num_steps \+ 1 = 9"),
    Row("corpus-min-freq-too-high",
        lambda c: load_corpus(c.file("few.txt", b"one two two three"), token="word", min_freq=5),
        CorpusError, r"few\.txt': no word occurs 5 times or more \(min_freq=5\); lower it"),
    Row("corpus-token-kind", lambda c: load_corpus(c.file("ok.txt", b"hello"), token="bytes"),
        ConfigError, r"unknown token kind 'bytes'; choose one of \['char', 'word'\]"),
    Row("corpus-max-tokens-type", lambda c: load_corpus(c.file("ok.txt", b"hello"), "100"),
        ConfigError, r"max_tokens must be an int .* got '100'"),
    Row("corpus-batching-too-short",
        lambda c: next(rnnlab.data.seq_data_iter_sequential(np.arange(20), 4, 5,
                                                            np.random.default_rng(0))),
        CorpusError, r"corpus of 20 tokens is too short for batch_size=4, num_steps=5: "
                     r"sequential partitioning needs at least 26 tokens"),
    Row("corpus-ragged", lambda c: rnnlab.data.train_val_split([[1, 2], [3]], 0.1),
        ShapeError, r"corpus must be a 1-D array of token ids, got a list NumPy cannot read as "
                    r"one: setting an array element with a sequence"),
    Row("timemachine-data-dir-type", lambda c: find_time_machine(3, download=False),
        ConfigError, r"data_dir must be a folder path \(str or pathlib\.Path\) or None, got 3"),
    Row("timemachine-checksum",
        lambda c: find_time_machine(c.file("timemachine.txt", b"edited") and c.tmp, download=False),
        ChecksumError, r"timemachine\.txt' has SHA-1 [0-9a-f]{40}, expected 090b5e7e"),
    Row("timemachine-not-found",
        lambda c: find_time_machine(c.tmp / "data", download=False),
        CorpusNotFoundError, r"timemachine\.txt not found; looked in '.*data/timemachine\.txt', "
                             r"'.*rnnlab/timemachine\.txt' \(data_dir='.*data' does not exist\)\. "
                             r"Offline, copy timemachine\.txt into '.*rnnlab', or set RNNLAB_DATA "
                             r"to the folder that holds it \(or to the file itself\)"),
    Row("download-checksum", _download_wrong_sha,
        ChecksumError, r"served\.txt' has SHA-1 [0-9a-f]{40}, expected 0{40}; not saved"),
    Row("download-unreachable",
        lambda c: download((c.tmp / "gone.txt").as_uri(), c.tmp / "d.txt", "0" * 40),
        CorpusError, r"could not download 'file://.*gone\.txt'"),
    # ---- vocabulary
    Row("vocab-unknown-token", lambda c: Vocab(list("abc")).lookup_strict(list("cab!")),
        VocabError, r"token '!' at position 3 is not in the vocabulary \(4 tokens\)"),
    Row("vocab-index-range", lambda c: Vocab(list("abc")).to_tokens([1, 99]),
        VocabError, r"token index 99 is out of range for a vocabulary of 4 tokens"),
    Row("vocab-not-str", lambda c: Vocab([1, 2, 3]),
        VocabError, r"token 1 \(int\) is not a string"),
    Row("vocab-list-no-unk", lambda c: Vocab.from_list(["a", "b"]),
        VocabError, r"must start with '<unk>', got 'a'"),
    Row("vocab-list-repeat", lambda c: Vocab.from_list(["<unk>", "a", "a"]),
        VocabError, r"entry 2 'a' repeats entry 1"),
    Row("vocab-unhashable", lambda c: Vocab([[["a"]]]),
        VocabError, r"tokens must be strings, or lists of strings \(one per line\): unhashable "
                    r"type: 'list'"),
    Row("predict-prefix-unknown",
        lambda c: predict("ab?", 3, c.be, ModelConfig("rnn", V, H), c.p, Vocab(list("abcd"))),
        VocabError, r"the prefix 'ab\?' has characters that are not in the vocabulary: '\?' "
                    r"\(position 2\); the vocabulary's 5 tokens are <unk>, a-d"),
    Row("resume-other-vocab", _resume_other_vocab,
        ConfigError, r"cannot resume: .*different vocabulary"),
    Row("resume-other-model", _resume_other_hidden,
        ConfigError, r"cannot resume: model num_hiddens: checkpoint has 4, asked 8"),
    # ---- checkpoints
    Row("ckpt-missing", lambda c: load_checkpoint(c.tmp / "none.safetensors"),
        CheckpointError, r"no checkpoint at .*none\.safetensors"),
    Row("ckpt-truncated", lambda c: _corrupt(c, "truncate"),
        CheckpointError, r"run/checkpoint\.safetensors \(\d+ bytes\) is not a readable safetensors"),
    Row("ckpt-not-safetensors", lambda c: load_checkpoint(c.file("notes.safetensors", b"hello\n" * 9)),
        CheckpointError, r"notes\.safetensors \(54 bytes\) is not a readable safetensors"),
    Row("ckpt-edited", lambda c: _corrupt(c, "flip"),
        CheckpointError, r"checkpoint\.safetensors: contents do not match their SHA-256 digest"),
    Row("ckpt-not-rnnlab", _plain_safetensors,
        CheckpointError, r"other\.safetensors is a safetensors file but not an rnnlab checkpoint"),
    Row("ckpt-format-version", _other_format_version,
        CheckpointError, r"checkpoint format version 99; this rnnlab reads format version 1"),
    Row("ckpt-save-vocab-mismatch", lambda c: _save_ckpt(c, vocab=Vocab(list("abcdefg"))),
        CheckpointError, r"vocabulary has 8 tokens but the rnn model expects vocab_size 5"),
    Row("ckpt-save-misshaped",
        lambda c: _save_ckpt(c, params={**c.be.to_numpy(c.p), "W_hh": np.zeros((4, 3), np.float32)}),
        CheckpointError, r"'W_hh' has shape \(4, 3\), expected \(4, 4\)"),
    Row("ckpt-save-nan",
        lambda c: _save_ckpt(c, params={**c.be.to_numpy(c.p), "b_q": np.full(V, np.nan, np.float32)}),
        CheckpointError, r"'b_q' holds NaN"),
    Row("ckpt-meta-type", lambda c: _rewritten(c, {"epoch": "three"}),
        CheckpointError, r"checkpoint\.safetensors: metadata field 'epoch' is 'three', expected a "
                         r"non-negative integer"),
    Row("ckpt-meta-negative", lambda c: _rewritten(c, {"epoch": -1}),
        CheckpointError, r"metadata field 'epoch' is -1, expected a non-negative integer"),
    Row("ckpt-meta-history", lambda c: _rewritten(c, {"history": "nope"}),
        CheckpointError, r"metadata field 'history' is 'nope', expected a list of per-epoch dicts"),
    Row("ckpt-meta-train", lambda c: _rewritten(c, {"train": {"lr": "1", "optimizer": "adam"}}),
        CheckpointError, r"metadata field 'train\.lr' is invalid: lr must be a positive finite "
                         r"number, got '1'"),
    Row("ckpt-meta-unknown", lambda c: _rewritten(c, {"surprise": 1}),
        CheckpointError, r"unknown metadata field\(s\) surprise"),
    Row("ckpt-optimizer-nan",
        lambda c: _rewritten(c, array_changes={"optim.m.W_xh": _nan_at(np.zeros((V, H), np.float32))}),
        CheckpointError, r"optimiser array 'm\.W_xh' holds 1 NaN or infinite value\(s\)"),
    Row("ckpt-optimizer-negative",
        lambda c: _rewritten(c, array_changes={"optim.v.b_h": -np.ones(H, np.float32)}),
        CheckpointError, r"optimiser array 'v\.b_h' holds a negative value \(-1\)"),
    Row("ckpt-save-list-params",
        lambda c: _save_ckpt(c, params={k: v.tolist() for k, v in c.be.to_numpy(c.p).items()}),
        CheckpointError, r"parameter 'W_xh' must be a float32 or float64 NumPy array, got list"),
    Row("ckpt-save-object",
        lambda c: save_checkpoint(c.tmp / "c", Checkpoint(
            model=ModelConfig("rnn", V, H), params=c.be.to_numpy(c.p), vocab=Vocab(list("abcd")),
            history=[{"epoch": 1, "train_ppl": np.ones(2)}])),
        CheckpointError, r"metadata field 'metadata\.history\[0\]\.train_ppl' is ndarray of "
                         r"shape \(2,\)"),
    Row("ckpt-save-disk-full", _disk_full,
        SaveError, r"could not write .*run/checkpoint\.safetensors: No space left on device "
                   r"\(ENOSPC\); the previous file is kept unchanged"),
    Row("ckpt-fifo", lambda c: load_checkpoint(_fifo(c, "pipe.safetensors")),
        CheckpointError, r"pipe\.safetensors is not a regular file \(a pipe, device or socket\)"),
    Row("ckpt-fifo-no-suffix", lambda c: load_checkpoint(_fifo(c, "pipe")),
        CheckpointError, r"pipe is not a regular file \(a pipe, device or socket\)"),
    Row("ckpt-path-type", lambda c: load_checkpoint(None),
        CheckpointError, r"a checkpoint path must be a non-empty str or os\.PathLike, got None"),
    Row("ckpt-other-vocab", lambda c: load_checkpoint(c.checkpoint(), vocab=Vocab(list("abce"))),
        CheckpointError, r"checkpoint\.safetensors was trained with another vocabulary \(token 4 is "
                         r"'d' in the checkpoint, 'e' expected\)"),
    Row("ckpt-other-cell", lambda c: load_checkpoint(c.checkpoint(), cell="lstm"),
        CheckpointError, r"checkpoint\.safetensors holds a rnn model, not a lstm model"),
    Row("ckpt-optimizer-state", lambda c: Adam(c.params(), 0.1).load_state_dict({"step": 3, "arrays": {}}),
        CheckpointError, r"optimiser state has no 'm\.W_xh'"),
    Row("ckpt-meta-not-json", _not_json,
        CheckpointError, r"edited\.safetensors: the rnnlab metadata is not valid JSON \(.*\); the "
                         r"file was edited or corrupted"),
    Row("ckpt-meta-missing", lambda c: _rewritten(c, drop=("vocab",)),
        CheckpointError, r"checkpoint\.safetensors: metadata lacks vocab"),
    Row("ckpt-optimizer-name", lambda c: _rewritten(c, {"train": {"optimizer": "sgd"}}),
        CheckpointError, r"metadata field 'optimizer\.name' is 'adam' but 'train\.optimizer' is "
                         r"'sgd'"),
    Row("ckpt-optimizer-missing", lambda c: _rewritten(c, drop=("optim.m.b_h",)),
        CheckpointError, r"checkpoint\.safetensors: the adam optimiser state has no m\.b_h"),
    Row("ckpt-optimizer-shape",
        lambda c: _rewritten(c, array_changes={"optim.v.W_hh": np.ones((2, H), np.float32)}),
        CheckpointError, r"optimiser array 'v\.W_hh' has shape \(2, 4\), expected \(4, 4\) \(the "
                         r"shape of W_hh\)"),
    Row("ckpt-unknown-array",
        lambda c: _rewritten(c, array_changes={"weights.W_hh": np.ones((H, H), np.float32)}),
        CheckpointError, r"checkpoint\.safetensors: unknown array\(s\) weights\.W_hh; a checkpoint "
                         r"holds param\.\*, optim\.\* and array\.\* only"),
    Row("ckpt-format", lambda c: _rewritten(c, {"format": "other-lab"}),
        CheckpointError, r"checkpoint\.safetensors: format 'other-lab' is not 'rnnlab-checkpoint'"),
    Row("ckpt-no-params", lambda c: _rewritten(c, drop=tuple(f"param.{k}" for k in c.p)),
        CheckpointError, r"checkpoint\.safetensors: holds no parameter arrays \(param\.\*\)"),
    Row("ckpt-optimizer-orphan", lambda c: _rewritten(c, drop=("optimizer",)),
        CheckpointError, r"checkpoint\.safetensors: holds optimiser arrays but no optimiser "
                         r"metadata"),
    Row("ckpt-unreadable", _unreadable_checkpoint,
        CheckpointError, r"cannot read checkpoint .*run/checkpoint\.safetensors: Permission denied"),
    Row("ckpt-save-nan-metadata",
        lambda c: _save_with(c, history=[{"epoch": 1, "train_ppl": float("nan")}]),
        CheckpointError, r"refusing to save a checkpoint: metadata field "
                         r"'metadata\.history\[0\]\.train_ppl' is NaN, which JSON cannot hold"),
    Row("ckpt-save-optimizer-arrays",
        lambda c: _save_with(c, optimizer={"name": "sgd", "step": 0, "arrays": [1]}),
        CheckpointError, r"refusing to save a checkpoint: optimiser arrays must be a dict, got list"),
    # ---- token ids handed to a backend
    Row("tokens-float", lambda c: c.be.forward("rnn", c.p, c.X.astype(float), c.st),
        ShapeError, r"X must hold integer token ids, got dtype float64"),
    Row("tokens-bool", lambda c: c.be.forward("rnn", c.p, c.X > 1, c.st),
        ShapeError, r"X must hold integer token ids, got dtype bool"),
    Row("tokens-negative", lambda c: c.be.forward("rnn", c.p, c.X - 3, c.st),
        ShapeError, r"X holds token id -3, outside the vocabulary \[0, 5\)"),
    Row("tokens-out-of-range", lambda c: c.be.forward("rnn", c.p, c.X + V, c.st),
        ShapeError, r"X holds token id \d+, outside the vocabulary \[0, 5\)"),
    Row("tokens-1d", lambda c: c.be.forward("rnn", c.p, c.X[0], c.st),
        ShapeError, r"X must be a \(batch, steps\) array of token ids, got shape \(3,\)"),
    Row("tokens-3d", lambda c: c.be.forward("rnn", c.p, c.X[None], c.st),
        ShapeError, r"got shape \(1, 2, 3\)"),
    Row("tokens-empty", lambda c: c.be.forward("rnn", c.p, c.X[:, :0], c.st),
        ShapeError, r"X has an empty dimension: shape \(2, 0\)"),
    Row("tokens-ragged", lambda c: c.be.forward("rnn", c.p, [[1, 2, 3], [4]], c.st),
        ShapeError, r"X is not a rectangular array \(list\)"),
    Row("tokens-backend-float", lambda c: c.be.tokens(np.array([[0.5, 1.5]])),
        ShapeError, r"X must hold integer token ids, got dtype float64"),
    Row("targets-shape", lambda c: c.be.loss_and_grads("rnn", c.p, c.X, c.X[:, :2], c.st),
        ShapeError, r"Y has shape \(2, 2\), expected X's shape \(2, 3\)"),
    Row("targets-out-of-range", lambda c: c.be.loss_and_grads("rnn", c.p, c.X, c.X + 9, c.st),
        ShapeError, r"Y holds token id \d+, outside the vocabulary \[0, 5\)"),
    Row("weights-shape",
        lambda c: c.be.loss_and_grads("rnn", c.p, c.X, c.X, c.st, weights=np.ones(4)),
        ShapeError, r"weights must have shape \(6,\) .* got \(4,\)"),
    Row("weights-nan", lambda c: _weighted(c, _nan_at(np.ones(B * T), 2)),
        ShapeError, r"weights hold 1 NaN or infinite value\(s\); a per-token weight is a finite "
                    r"number >= 0"),
    Row("weights-negative", lambda c: _weighted(c, np.array([1, 1, -0.5, 1, 1, 1])),
        ShapeError, r"weights\[2\] is -0\.5; a per-token weight is a finite number >= 0"),
    Row("weights-dtype", lambda c: _weighted(c, np.array(list("abcdef"))),
        ShapeError, r"weights must be real numbers, got dtype <U1"),
    Row("tokens-uint64-huge", lambda c: c.be.tokens(np.array([[2**63]], dtype=np.uint64)),
        ShapeError, r"X holds token id 9223372036854775808, too large for int64"),
    # ---- real inputs and targets (a model with input_size and the squared-error head)
    Row("inputs-ids", lambda c: _regression(c, c.X, np.zeros((B, T))),
        ShapeError, r"X must be a \(batch, steps, 2\) array of real inputs \(the model's "
                    r"input_size is 2\), got shape \(2, 3\)"),
    Row("inputs-nan", lambda c: _regression(c, _nan_at(np.zeros((B, T, 2)), 1), np.zeros((B, T))),
        ShapeError, r"X holds 1 NaN or infinite value\(s\); inputs must be finite"),
    Row("inputs-dtype", lambda c: _regression(c, np.zeros((B, T, 2), dtype=bool), np.zeros((B, T))),
        ShapeError, r"X must hold real numbers \(a \(batch, steps, 2\) array of inputs\), got "
                    r"dtype bool"),
    Row("real-targets-shape", lambda c: _regression(c, np.zeros((B, T, 2)), np.zeros((B, T + 1))),
        ShapeError, r"Y must be a \(batch, steps\) array of real targets, shape \(2, 3\) to "
                    r"match X, got shape \(2, 4\)"),
    Row("real-targets-nan", lambda c: _regression(c, np.zeros((B, T, 2)), _nan_at(np.zeros((B, T)), 0)),
        ShapeError, r"Y holds 1 NaN or infinite value\(s\); targets must be finite"),
    Row("mse-head-width", lambda c: ModelConfig("lstm", V, H, head="mse"),
        ConfigError, r"head='mse' regresses one real number per step, so the output width "
                     r"vocab_size must be 1, got 5"),
    Row("truncate-zero", lambda c: c.be.loss_and_grads("rnn", c.p, c.X, c.X, c.st, truncate=0),
        ConfigError, r"truncate must be a positive integer, got 0"),
    Row("truncate-bidirectional", lambda c: _truncated_bidirectional(c),
        ConfigError, r"truncate stops the gradient k steps back in time, and a bidirectional "
                     r"model's reverse pass runs the other way; use a one-direction model, or "
                     r"truncate=None"),
    # ---- states
    Row("state-not-tuple", lambda c: c.be.forward("rnn", c.p, c.X, c.st[0]),
        ShapeError, r"state must be a tuple of \(B, H\) arrays, got ndarray"),
    Row("state-count", lambda c: c.be.forward("rnn", c.p, c.X, c.st * 2),
        ShapeError, r"state for rnn .* needs 1 arrays .* got 2"),
    Row("state-shape", lambda c: c.be.forward("rnn", c.p, c.X, (np.zeros((B, H + 1), np.float32),)),
        ShapeError, r"state\[0\] has shape \(2, 5\), expected \(2, 4\) \(batch, hidden\)"),
    Row("state-batch", lambda c: c.be.forward("rnn", c.p, c.X[:1], c.st),
        ShapeError, r"state\[0\] has shape \(2, 4\), expected \(1, 4\)"),
    Row("state-list", lambda c: c.be.forward("rnn", c.p, c.X, (c.st[0].tolist(),)),
        ShapeError, r"state\[0\] must be a numpy\.ndarray of shape \(2, 4\), got list"),
    Row("state-nan", lambda c: c.be.forward("rnn", c.p, c.X, (np.full((B, H), np.nan, np.float32),)),
        ShapeError, r"state\[0\] holds NaN"),
    Row("begin-state-batch", lambda c: c.be.begin_state("rnn", 0, H),
        ConfigError, r"batch_size must be a positive integer, got 0"),
    # ---- dropout masks (loss_and_grads of a two-layer model)
    Row("dropout-masks-type", lambda c: _with_masks(c, lambda m: {"layer 1": m[0]}),
        ShapeError, r"dropout_masks must be a tuple of \(T, B, H\*D\) arrays or None, got dict"),
    Row("dropout-masks-count", lambda c: _with_masks(c, lambda m: m * 2),
        ShapeError, r"dropout_masks: a 2-layer model has 1 layer boundaries, got 2 masks"),
    Row("dropout-masks-list", lambda c: _with_masks(c, lambda m: (m[0].tolist(),)),
        ShapeError, r"dropout_masks\[0\] must be an array of shape \(3, 2, 4\), got list"),
    Row("dropout-masks-dtype", lambda c: _with_masks(c, lambda m: (m[0].astype(str),)),
        ShapeError, r"dropout_masks\[0\] must hold real numbers, got dtype <U"),
    Row("dropout-masks-nan", lambda c: _with_masks(c, lambda m: (_nan_at(m[0], 5),)),
        NonFiniteParamError, r"dropout_masks\[0\] holds 1 NaN or infinite value\(s\)"),
    # ---- parameter dicts
    Row("params-missing", lambda c: c.be.forward("rnn", c.params(W_xh=None), c.X, c.st),
        ParamError, r"rnn parameters: missing W_xh"),
    Row("params-missing-output", lambda c: c.be.forward("rnn", c.params(b_q=None), c.X, c.st),
        ParamError, r"parameter 'b_q' is missing for cell 'rnn'"),
    Row("params-extra", lambda c: c.be.forward("rnn", c.params(W_xz=c.p["W_xh"]), c.X, c.st),
        ParamError, r"rnn parameters: unexpected W_xz"),
    Row("params-misshaped",
        lambda c: c.be.loss_and_grads("rnn", c.params(W_hq=np.zeros((H, V + 1), np.float32)), c.X, c.X, c.st),
        ParamError, r"parameter 'W_hq' has shape \(4, 6\), expected \(4, 5\)"),
    Row("params-wrong-ndim", lambda c: c.be.forward("rnn", c.params(W_hh=c.p["W_hh"][0]), c.X, c.st),
        ParamError, r"parameter 'W_hh' has shape \(4,\), expected a non-empty 2-D array"),
    Row("params-int", lambda c: c.be.forward("rnn", {k: v.astype(int) for k, v in c.p.items()}, c.X, c.st),
        ParamError, r"parameter 'W_xh' must be a float32 or float64 NumPy array, got dtype int64"),
    Row("params-mixed-dtype",
        lambda c: c.be.forward("rnn", c.params(b_h=c.p["b_h"].astype(np.float64)), c.X, c.st),
        ParamError, r"parameters mix dtypes \['float32', 'float64'\]"),
    Row("params-not-dict", lambda c: c.be.forward("rnn", list(c.p.values()), c.X, c.st),
        ParamError, r"params must be a dict of arrays, got list"),
    Row("params-other-cell",
        lambda c: c.be.forward("rnn", c.be.from_numpy(init_params("lstm", V, H)), c.X, c.st),
        ParamError, r"parameter 'W_hh' is missing for cell 'rnn'"),
    Row("params-from-numpy-nan",
        lambda c: c.be.from_numpy({**c.be.to_numpy(c.p), "W_hh": np.full((H, H), np.nan)}),
        ParamError, r"parameter 'W_hh' holds 16 NaN or infinite value\(s\)"),
    Row("params-from-numpy-text", lambda c: c.be.from_numpy({**c.p, "b_h": ["a", "b", "c", "d"]}),
        ParamError, r"parameter 'b_h' must hold real numbers, got dtype <U1"),
    Row("params-from-numpy-misshaped",
        lambda c: c.be.from_numpy({**c.p, "W_hh": np.zeros((H, H + 1))}),
        ParamError, r"parameter 'W_hh' has shape \(4, 5\), expected \(4, 4\)"),
    Row("params-nan-loss", lambda c: _poisoned(c, "loss"),
        NonFiniteParamError, r"parameter 'W_hh' holds 1 NaN or infinite value\(s\)"),
    Row("params-nan-forward", lambda c: _poisoned(c, "forward"),
        NonFiniteParamError, r"parameter 'W_hh' holds 1 NaN or infinite value\(s\)"),
    Row("params-d2l-list", lambda c: from_d2l_list(ModelConfig("rnn", V, H), list(c.p.values())[:3]),
        ParamError, r"d2l rnn parameter list has 3 arrays, expected 5"),
    Row("params-d2l-list-shape",
        lambda c: from_d2l_list(ModelConfig("rnn", V, H),
                                [np.zeros((V, H + 1))] + list(c.be.to_numpy(c.p).values())[1:]),
        ParamError, r"d2l list entry 'W_xh' has shape \(5, 5\), expected \(5, 4\)"),
    Row("init-params-config-and-sizes", lambda c: init_params(ModelConfig("rnn", V, H), vocab_size=9),
        ConfigError, r"init_params\(ModelConfig, \.\.\.\): the sizes and options are the config's; "
                     r"pass vocab_size, num_hiddens and the rest only with a cell name"),
    Row("init-params-huge", lambda c: init_params("lstm", 28, 10**12),
        ConfigError, r"the parameters of a lstm with H=1,000,000,000,000, 1 layer\(s\) and V=28 "
                     r"needs about [\d,.]+ \w+, more than the [\d,.]+ \w+ of memory here"),
    Row("init-params-seed", lambda c: init_params("rnn", V, H, seed=-1),
        ConfigError, r"seed must be a non-negative integer, got -1"),
    Row("init-params-dtype", lambda c: init_params("rnn", V, H, dtype=np.float16),
        ConfigError, r"dtype must be float32 or float64, got float16"),
    # ---- clipping
    Row("clip-theta-zero", lambda c: c.be.clip_grads(c.params(), 0.0),
        ConfigError, r"clipping threshold theta must be a positive number \(math\.inf: no clipping\), "
                     r"got 0\.0"),
    Row("clip-theta-nan", lambda c: c.be.clip_grads(c.params(), float("nan")),
        ConfigError, r"theta must be a positive number .*, got nan"),
    Row("clip-grads-not-dict", lambda c: c.be.clip_grads(list(c.p.values()), 1.0),
        ParamError, r"grads must be a dict of arrays, got list"),
    Row("clip-grads-int", lambda c: c.be.clip_grads({"W_hh": np.ones((2, 2), int)}, 1.0),
        ParamError, r"gradient 'W_hh' must be a float NumPy array, got dtype int64"),
    # ---- configuration
    Row("model-cell", lambda c: ModelConfig("cnn", V, H),
        ConfigError, r"unknown cell 'cnn'; expected one of rnn, lstm, gru, irnn"),
    Row("model-hidden", lambda c: ModelConfig("rnn", V, 0),
        ConfigError, r"num_hiddens must be a positive integer, got 0"),
    Row("model-dropout", lambda c: ModelConfig("rnn", V, H, dropout=1.0),
        ConfigError, r"dropout must be a number in \[0, 1\), got 1\.0"),
    Row("model-dropout-one-layer", lambda c: ModelConfig("rnn", V, H, dropout=0.5),
        ConfigError, r"dropout=0\.5 acts between stacked layers, and a model with num_layers=1 "
                     r"has none, so it would never be applied; use num_layers >= 2, or dropout=0"),
    Row("set-threads-auto", lambda c: rnnlab.threads.set_threads("auto"),
        ConfigError, r"set_threads needs a number; 'auto' is for ThreadTuner and train\(\)"),
    Row("memory-gru-nn",
        lambda c: rnnlab.memory.estimate_memory(ModelConfig("gru", V, H), B, T, backend="torch",
                                                impl="nn"),
        ConfigError, r"impl='nn' runs torch\.nn\.GRU, the torch-form GRU, .* not d2l's "
                     r"\(R \* H\) @ W_hh; use gru_form='torch' or impl='scratch'$"),
    Row("torch-nn-gru-d2l", _torch_nn_d2l_gru,
        ConfigError, r"impl='nn' runs torch\.nn\.GRU, which is the torch-form GRU, .*; the d2l "
                     r"form, \(R \* H\) @ W_hh, is another function: use gru_form='torch'"),
    Row("torch-nn-map-d2l-gru",
        lambda c: rnnlab.params.to_torch_nn("gru", init_params("gru", V, H)),
        ConfigError, r"only the torch-form GRU maps onto torch\.nn\.GRU: the d2l form applies "
                     r"the reset gate before the matmul"),
    Row("torch-device-unknown", lambda c: _torch_backend(device="tpu"),
        BackendError, r"unknown device 'tpu'; expected 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    Row("torch-device-unavailable", lambda c: _torch_backend(device="cuda:99"),
        BackendError, r"device 'cuda:99' (was asked for, but CUDA is not available to this "
                      r"PyTorch|does not exist: this machine has \d+ CUDA device\(s\))"),
    Row("optimizer-no-params", lambda c: c.be.make_optimizer("sgd", {}, 0.1),
        ParamError, r"params is an empty dict: there is nothing to optimise"),
    Row("optimizer-step-names", lambda c: _step(c, W_hh=None),
        ParamError, r"grads must have the names of params: missing 'W_hh'"),
    Row("optimizer-step-shape", lambda c: _step(c, W_hh=np.zeros(H, np.float32)),
        ParamError, r"gradient 'W_hh' has shape \(4,\), expected \(4, 4\), the shape of the "
                    r"parameter it updates"),
    Row("optimizer-step-torch",
        lambda c: _torch_backend().make_optimizer("adam", _torch_backend().from_numpy(
            c.be.to_numpy(c.p)), 0.1).step({k: v.tolist() for k, v in c.be.to_numpy(c.p).items()}),
        ParamError, r"gradient 'W_xh' must be a float torch tensor, got list"),
    Row("backend-torch-missing",
        lambda c: _uninstalled(c.mp, "torch", "rnnlab.torch_backend") or rnnlab.get_backend("torch"),
        BackendError, r"the torch backend needs PyTorch \(.*\); install its CPU build with "
                      r"`pip install torch --index-url https://download\.pytorch\.org/whl/cpu` "
                      r"\(for a GPU: the command pytorch\.org gives\)"),
    Row("torch-params-half", _torch_half,
        ParamError, r"parameters must be float32 or float64, got torch\.float16"),
    Row("from-nn-no-bias", lambda c: _from_nn(rnn=__import__("torch").nn.RNN(V, H, bias=False)),
        ConfigError, r"the torch\.nn module has bias=False; rnnlab's cells have biases"),
    Row("from-nn-linear", lambda c: _from_nn(linear=__import__("torch").nn.Linear(H, V, bias=False)),
        ConfigError, r"the output layer must be an nn\.Linear with a bias"),
    # ---- long-range memory tasks
    Row("task-adding-length", lambda c: rnnlab.tasks.adding_problem(100, 1),
        ConfigError, r"length must be an integer >= 2, got 1"),
    Row("task-copy-length", lambda c: rnnlab.tasks.copy_task(100, 0),
        ConfigError, r"length must be a positive integer, got 0"),
    Row("task-name", lambda c: rnnlab.tasks.make_task("parity", 100, 10),
        ConfigError, r"unknown name 'parity'; expected one of adding, copy"),
    Row("task-model-fixed", lambda c: rnnlab.tasks.copy_task(10, 5).model_config("lstm", 8, vocab_size=5),
        ConfigError, r"the copy task sets vocab_size itself \(its model's inputs and outputs are "
                     r"the task's\); leave them out"),
    Row("task-model-mismatch", lambda c: rnnlab.tasks.train_task(
            c.be, ModelConfig("lstm", 10, 4), init_params(ModelConfig("lstm", 10, 4)),
            rnnlab.tasks.adding_problem(20, 5), TrainConfig(num_epochs=1, batch_size=4)),
        ConfigError, r"the adding task needs a model with \(vocab_size, input_size, head\) = "
                     r"\(1, 2, 'mse'\), got \(10, None, 'softmax'\); make it with "
                     r"task.model_config\(cell, num_hiddens\)"),
    Row("task-few-examples", lambda c: rnnlab.tasks.train_task(
            c.be, ModelConfig("lstm", 10, 4), init_params(ModelConfig("lstm", 10, 4)),
            rnnlab.tasks.copy_task(20, 5), TrainConfig(num_epochs=1, batch_size=32)),
        ConfigError, r"the copy task has 20 examples, fewer than batch_size=32; make more "
                     r"examples or use a smaller batch"),
    # ---- rnnlab.testing.verify in Python (the command line's rows are below)
    Row("verify-no-convention-fits",
        lambda c: _verify(str(c.file("mine.py", b"def my_rnn_forward(x, h0):\n    return x\n"))),
        NoConventionFitsError, r"^mine\.py fits none of rnnlab's conventions \(cs231n: mine\.py has none "
                      r"of rnn_step_forward, .*; protocol: mine\.py defines no .*\); to check code "
                      r"laid out otherwise, wrap it in an rnnlab\.testing\.Protocol and give "
                      r"--convention protocol \(leave --convention out for a skeleton to edit; "
                      r"docs/verify\.md, 'Wrap your code in a Protocol'\)$"),
    Row("verify-convention-unknown", lambda c: _verify(MIN_CHAR, "keras"),
        SubjectError, r"unknown convention 'keras'; expected one of cs231n, d2l"),
    Row("verify-no-convention", lambda c: _verify(lambda x: x),
        SubjectError, r"cannot tell the convention of <function .*>: give convention= "
                      r"\(cs231n, d2l, torch\.nn, min-char-rnn, deeplearning\.ai, protocol, "
                      r"torch-tutorial\)"),
    Row("verify-cell", lambda c: _verify(MIN_CHAR, "min-char-rnn", cell="cnn"),
        SubjectError, r"cell 'cnn': expected rnn, lstm or gru"),
    Row("verify-protocol-cell",
        lambda c: _verify(__import__("rnnlab.testing", fromlist=["Protocol"]).Protocol(
            "cnn", lambda params, X, state: None)),
        SubjectError, r"Protocol\.cell is 'cnn'; expected rnn, irnn, lstm or gru"),
    Row("verify-max-examples", lambda c: _verify(MIN_CHAR, "min-char-rnn", max_examples=0),
        ConfigError, r"max_examples must be a positive integer, got 0"),
    Row("verify-example-fraction", lambda c: _verify(MIN_CHAR, "min-char-rnn",
                                                     example="B=1.5 T=2 V=3 H=2 seed=0"),
        ConfigError, r"example 'B=1\.5 T=2 V=3 H=2 seed=0': expected 'B=\.\. T=\.\. D=\.\. "
                     r"H=\.\. seed=\.\.' \(V=\.\. for D\); 'B=1\.5' is not KEY=INTEGER"),
    Row("verify-unknown-keyword", lambda c: _verify(MIN_CHAR, "min-char-rnn", examples=3),
        ConfigError, r"verify\(\) has no argument 'examples'; its arguments are subject, "
                     r"convention, cell, max_examples"),
    Row("testing-constraints-cell", lambda c: __import__(
        "rnnlab.testing", fromlist=["Constraints"]).Constraints("cnn"),
        ConfigError, r"unknown cell 'cnn'; expected one of rnn, irnn, lstm, gru"),
    Row("testing-sizes", lambda c: __import__("rnnlab.testing", fromlist=["sizes"]).sizes(-5, -10),
        ConfigError, r"low must be a non-negative integer, got -5"),
    Row("verify-timeout", lambda c: _verify(MIN_CHAR, "min-char-rnn", timeout=0),
        ConfigError, r"timeout must be a positive number of seconds, got 0"),
    Row("train-lr", lambda c: TrainConfig(lr=float("nan")),
        ConfigError, r"lr must be a positive finite number, got nan"),
    Row("train-clip", lambda c: TrainConfig(clip_theta=-1.0),
        ConfigError, r"clip_theta must be a positive number, or None \(or math\.inf\) for no "
                     r"clipping, got -1\.0"),
    Row("train-token", lambda c: TrainConfig(token="subword"),
        ConfigError, r"unknown token 'subword'; expected one of char, word"),
    Row("train-optimizer", lambda c: TrainConfig(optimizer="rmsprop"),
        ConfigError, r"unknown optimizer 'rmsprop'"),
    Row("train-batch-size", lambda c: TrainConfig(batch_size=0),
        ConfigError, r"batch_size must be a positive integer, got 0"),
    Row("config-unknown-key", lambda c: rnnlab.replace_checked(ModelConfig(), hiden=3),
        ConfigError, r"unknown ModelConfig option\(s\) hiden"),
    Row("backend-unknown", lambda c: rnnlab.get_backend("jax"),
        BackendError, r"unknown backend 'jax'; expected one of numpy, torch"),
    Row("backend-numpy-device", lambda c: rnnlab.get_backend("numpy", device="cuda"),
        ConfigError, r"numpy backend runs on the CPU only, not device 'cuda'"),
    Row("predict-temperature",
        lambda c: predict("ab", 3, c.be, ModelConfig("rnn", V, H), c.p, Vocab(list("abcd")),
                          strategy="sample", temperature=-0.5),
        ConfigError, r"temperature must be a finite number >= 0, got -0\.5"),
    Row("predict-prefix-no-word",
        lambda c: prefix_ids(" ... ", Vocab([["the"]]), Tokenizer("word", time_machine=True)),
        ConfigError, r"the prefix must hold at least one word, got ' \.\.\. '"),
    Row("predict-top-k",
        lambda c: predict("ab", 3, c.be, ModelConfig("rnn", V, H), c.p, Vocab(list("abcd")),
                          strategy="sample", top_k=9),
        ConfigError, r"top_k must be None or an integer between 1 and the vocabulary size 5, "
                     r"got 9"),
    Row("train-bidirectional",
        lambda c: rnnlab.train(c.be, ModelConfig("rnn", V, H, bidirectional=True),
                               c.be.from_numpy(init_params(ModelConfig("rnn", V, H,
                                                                       bidirectional=True))),
                               np.arange(40) % V, TrainConfig(num_epochs=1, batch_size=2,
                                                              num_steps=3)),
        ConfigError, r"a bidirectional model reads the future, so it cannot be trained as a "
                     r"language model"),
    Row("predict-bidirectional",
        lambda c: predict("ab", 3, c.be, ModelConfig("rnn", V, H, bidirectional=True),
                          c.be.from_numpy(init_params(ModelConfig("rnn", V, H, bidirectional=True))),
                          Vocab(list("abcd"))),
        ConfigError, r"a bidirectional model reads the future, so it cannot generate text"),
    Row("train-threads", lambda c: TrainConfig(threads=0),
        ConfigError, r"threads must be 'auto' or a positive integer, got 0"),
    Row("train-numpy-params-torch",
        lambda c: rnnlab.train(_torch_backend(), ModelConfig("rnn", V, H),
                               init_params(ModelConfig("rnn", V, H)), np.arange(40) % V,
                               TrainConfig(num_epochs=1, batch_size=2, num_steps=3)),
        ParamError, r"params are NumPy arrays, but the torch backend trains its own arrays: pass "
                    r"backend\.from_numpy\(params\)"),
    Row("train-corpus-ids",
        lambda c: rnnlab.train(c.be, ModelConfig("rnn", V, H), c.p, np.arange(40),
                               TrainConfig(num_epochs=1, batch_size=2, num_steps=3)),
        ShapeError, r"corpus holds token id 5, outside the model's vocabulary \[0, 5\)"),
    Row("evaluate-num-steps",
        lambda c: rnnlab.evaluate(c.be, ModelConfig("rnn", V, H), c.p, np.arange(40) % V, 2, 0),
        ConfigError, r"num_steps must be a positive integer, got 0"),
    Row("train-config-type",
        lambda c: rnnlab.train(c.be, ModelConfig("rnn", V, H), c.p, np.arange(40) % V, None),
        ConfigError, r"tcfg must be a TrainConfig \(rnnlab\.TrainConfig\(num_epochs=\.\.\., "
                     r"lr=\.\.\.\)\), got None"),
    Row("dropout-masks-shape",
        lambda c: c.be.loss_and_grads(
            ModelConfig("rnn", V, H, num_layers=2, dropout=0.5),
            c.be.from_numpy(init_params(ModelConfig("rnn", V, H, num_layers=2, dropout=0.5))),
            c.X, c.X, (c.st[0], c.st[0]), dropout_masks=(np.ones((T, B + 1, H)),)),
        ShapeError, r"dropout_masks\[0\] has shape \(3, 3, 4\), expected \(3, 2, 4\) \(steps, "
                    r"batch, hidden \* directions\)"),
    Row("predict-num-preds-huge",
        lambda c: predict("ab", 10**23, c.be, *_small_model(c)),
        ConfigError, r"generating num_preds=100,000,000,000,000,000,000,000 tokens needs about"),
    Row("predict-vocab-mismatch",
        lambda c: predict("ab", 3, c.be, ModelConfig("rnn", V, H), c.p, Vocab(list("abcdefg"))),
        ConfigError, r"the vocabulary has 8 tokens but the model's vocab_size is 5"),
    Row("predict-top-k-type",
        lambda c: predict("ab", 3, c.be, *_small_model(c), strategy="sample", top_k=2.5),
        ConfigError, r"top_k must be None or an integer between 1 and the vocabulary size 5, "
                     r"got 2\.5"),
    Row("predict-temperature-type",
        lambda c: predict("ab", 3, c.be, *_small_model(c), strategy="sample", temperature="1"),
        ConfigError, r"temperature must be a finite number >= 0, got '1'"),
    Row("predict-top-p",
        lambda c: predict("ab", 3, c.be, *_small_model(c), strategy="sample", top_p=0),
        ConfigError, r"top_p must be a number in \(0, 1\], got 0"),
    # ---- non-finite training
    Row("train-nonfinite-params", _train_poisoned,
        NonFiniteError, r"parameter 'b_h' holds 1 NaN .* at epoch 1, batch 1"),
    Row("train-nonfinite-loss", _train_lr_overflow,
        NonFiniteError, r"parameter 'W_\w+' holds \d+ NaN or infinite value\(s\) at epoch 1, batch 2"),
    Row("train-diverged", _train_diverging,
        NonFiniteError, r"the run diverged at epoch 1, batch \d+: the loss is \S+ nats per token, "
                        r"beyond 709\.78, where the perplexity exp\(loss\) overflows"),
    # ---- data-parallel training
    Row("train-parallel-backend", lambda c: _train_parallel(c, c.be, batch_size=4),
        ConfigError, r"train\(parallel=\.\.\.\) needs that run's backend"),
    Row("train-parallel-batch-size", lambda c: _train_parallel(c, None, batch_size=3),
        ConfigError, r"batch_size 3 cannot be split evenly over 2 processes"),
    Row("launch-env", lambda c: launch_env({"RANK": "one", "WORLD_SIZE": "2"}),
        ConfigError, r"RANK='one' is not an integer; start data-parallel runs with torchrun"),
    Row("launch-env-inconsistent", lambda c: launch_env({"RANK": "2", "WORLD_SIZE": "2"}),
        ConfigError, r"inconsistent launcher environment: RANK=2, WORLD_SIZE=2, LOCAL_RANK=2, "
                     r"LOCAL_WORLD_SIZE=2"),
    Row("distributed-connect", _connect_without_launcher,
        ConfigError, r"no data-parallel launcher here \(RANK and WORLD_SIZE are not set\); start "
                     r"the run with torchrun"),
]


# ------------------------------------------------ crafted checkpoints, backend options


def _raw_metadata(c: Ctx, edit: Callable[[str], str]):
    """A valid small checkpoint whose metadata JSON text is edited as text (a key given
    twice, a deep nesting: what json.dumps of a dict cannot write) under a valid digest."""
    import json

    import rnnlab.checkpoint as ck
    from safetensors.numpy import load, save

    path = c.checkpoint()
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta_json = edit(json.loads(data[8:n + 8])["__metadata__"]["rnnlab"])
    arrays = load(data)
    path.write_bytes(save(arrays, metadata={"rnnlab": meta_json,
                                            "rnnlab_digest": ck._digest(meta_json, arrays)}))
    return load_checkpoint(path)


def _huge_metadata(c: Ctx):
    """Metadata past the size a checkpoint may hold (the bound made small for the test:
    the real one, 64 MiB, is checked the same way before any parsing)."""
    import rnnlab.checkpoint as ck

    path = c.checkpoint()
    c.mp.setattr(ck, "MAX_METADATA_BYTES", 100)
    return load_checkpoint(path)


def _set_threads(n):
    rnnlab.threads.set_threads(n)


ROWS += [
    Row("ckpt-meta-duplicate-key", lambda c: _raw_metadata(c, lambda t: '{"epoch": 5, ' + t[1:]),
        CheckpointError, r"run/checkpoint\.safetensors: the rnnlab metadata gives the key\(s\) "
                         r"'epoch' twice in one object"),
    Row("ckpt-meta-deep",
        lambda c: _raw_metadata(c, lambda t: t[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000
                                + "}"),
        CheckpointError, r"run/checkpoint\.safetensors: the rnnlab metadata nests 100001 levels "
                         r"deep, more than the 16"),
    Row("ckpt-meta-huge", _huge_metadata,
        CheckpointError, r"run/checkpoint\.safetensors: the rnnlab metadata is [\d,]+ characters, "
                         r"more than the 100 a checkpoint may hold"),
    Row("ckpt-meta-epoch-history", lambda c: _rewritten(c, {"epoch": 10**30}),
        CheckpointError, r"metadata field 'epoch' is 1000000000000000000000000000000, but "
                         r"'history' holds 1 epoch\(s\)"),
    Row("ckpt-meta-char-token",
        lambda c: _rewritten(c, {"vocab": ["<unk>", "ab", "b", "c", "d"]}),
        CheckpointError, r"metadata field 'vocab\[1\]' is 'ab', expected one character \(the run "
                         r"is character-level"),
    Row("ckpt-meta-prefix-long", lambda c: _rewritten(c, {"extra": {"prefix": "a" * 20_000}}),
        CheckpointError, r"metadata field 'extra\.prefix' is 20,000 characters long, expected at "
                         r"most 10,000"),
    Row("backend-numpy-impl", lambda c: rnnlab.get_backend("numpy", impl="nn"),
        ConfigError, r"get_backend\('numpy'\) has no option\(s\) impl; its options are dtype, "
                     r"device; impl is an option of the torch backend"),
    Row("backend-unknown-option", lambda c: rnnlab.get_backend("numpy", devise="cpu"),
        ConfigError, r"get_backend\('numpy'\) has no option\(s\) devise; its options are dtype, "
                     r"device$"),
    Row("threads-huge", lambda c: _set_threads(10**20),
        ConfigError, r"threads=100000000000000000000 is more than the 4,096 threads rnnlab sets"),
]


class _TwoRanks:
    """A stand-in for the DataParallel of a 2-process run (no process group needed: the
    refusals come before any exchange)."""
    rank, world_size = 0, 2

    def rows(self, a, axis=0):
        return a

    def sum(self, values):
        return list(values)


def _train_parallel(c: Ctx, backend, batch_size: int):
    parallel = _TwoRanks()
    if backend is None:  # a backend of that run, as parallel.backend(...) makes
        backend = rnnlab.get_backend("numpy")
        backend.parallel = parallel
    cfg = ModelConfig("rnn", V, H)
    corpus = np.arange(200) % V
    return train(backend, cfg, backend.from_numpy(init_params(cfg, seed=0)), corpus,
                 TrainConfig(num_epochs=1, batch_size=batch_size, num_steps=T), parallel=parallel)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, ctx: Ctx):
    with np.errstate(all="ignore"):  # overflow is part of some rows; the error is the point
        with pytest.raises(row.exc) as info:
            row.run(ctx)
    assert type(info.value) is row.exc, f"raised {type(info.value).__name__}: {info.value}"
    assert re.search(row.match, str(info.value)), f"message {str(info.value)!r} !~ {row.match!r}"


# ------------------------------------------------------------------------------ the CLI

TINY = ["--hidden", "8", "--epochs", "1", "--max-tokens", "400", "--batch-size", "2",
        "--num-steps", "5", "--no-plot", "--no-progress", "--num-preds", "3"]


@dataclasses.dataclass(frozen=True)
class CliRow:
    id: str
    argv: Callable[[pathlib.Path], list]  # tmp dir -> arguments
    status: int
    match: str  # regex the single stderr line must contain
    env: tuple = ()  # (name, value) pairs set for the run: torchrun's, say
    patch: Callable | None = None  # patch(monkeypatch) before the run: an uninstalled package


def _fifo_file(tmp: pathlib.Path, name: str) -> str:
    """A named pipe with a .py name: reading it would wait for a writer forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("POSIX named pipes")
    os.mkfifo(tmp / name)
    return str(tmp / name)


def _text_file(tmp: pathlib.Path, name: str, content: bytes) -> str:
    (tmp / name).write_bytes(content)
    return str(tmp / name)


# what torchrun --nproc-per-node 2 sets in its first process
TORCHRUN_RANK0 = (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0"),
                  ("LOCAL_WORLD_SIZE", "2"))


def _train_args(tmp, *extra):
    return ["train", *TINY, "--out", str(tmp / "run"), *extra]


def _mkfifo(path: pathlib.Path) -> pathlib.Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("POSIX named pipes")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _trained(tmp) -> str:
    assert cli.main(_train_args(tmp)) == 0
    return str(tmp / "run")


def _mkdir(path: pathlib.Path) -> pathlib.Path:
    path.mkdir(parents=True)
    return path


def _trained_without_history(tmp) -> str:
    """A TINY run's checkpoint saved again with no epochs in its history."""
    run = _trained(tmp)
    ckpt = load_checkpoint(run)
    ckpt.history = []
    save_checkpoint(run, ckpt)
    return run


_HELD = []  # run locks a row holds while its command runs; released after the row


def _locked_out(tmp):
    """--out held by another writer (this process's own lock: flock refuses a second
    open file just as it refuses another process)."""
    from rnnlab.runlock import RunLock

    (tmp / "run").mkdir()
    _HELD.append(RunLock(tmp / "run").acquire())
    return _train_args(tmp)


def _trained_then_edited(tmp, **changes):
    """A finished TINY run whose checkpoint is saved again with fields replaced."""
    assert cli.main(_train_args(tmp)) == 0
    ckpt = load_checkpoint(tmp / "run")
    for k, v in changes.items():
        setattr(ckpt, k, v(ckpt) if callable(v) else v)
    save_checkpoint(tmp / "run", ckpt)
    return ["train", "--resume", "--out", str(tmp / "run"), "--epochs", "2"]


def _which_best_without_validation(tmp):
    assert cli.main(_train_args(tmp, "--val-fraction", "0")) == 0
    return ["generate", str(tmp / "run"), "--which", "best"]


def _resumed_on(tmp, name, text):
    """A TINY run on book.txt, then a resume on another file (``name`` with ``text``), or,
    ``name`` None, with book.txt deleted and no --corpus."""
    book = _text_file(tmp, "book.txt", ("the cat sat on the mat. " * 40).encode())
    assert cli.main(_train_args(tmp, "--corpus", str(book))) == 0
    resume = ["train", "--resume", "--out", str(tmp / "run"), "--epochs", "2"]
    if name is None:
        pathlib.Path(book).unlink()
        return resume
    return resume + ["--corpus", str(_text_file(tmp, name, (text * 40).encode()))]



def _saved_from_python(tmp) -> str:
    """A checkpoint saved by ``save_checkpoint``, not by ``rnnlab train``: no training log."""
    cfg = ModelConfig("rnn", V, H)
    return str(save_checkpoint(tmp / "py", Checkpoint(model=cfg, params=init_params(cfg, seed=0),
                                                      vocab=Vocab(list("abcd")), epoch=1)))


def _d2l_gru_on_nn(tmp):
    """A run of d2l's GRU (the default form), generated from with --impl nn."""
    pytest.importorskip("torch")
    assert cli.main(_train_args(tmp, "--cell", "gru")) == 0
    return ["generate", str(tmp / "run"), "--backend", "torch", "--device", "cpu", "--impl", "nn"]


def _trained_twice(tmp):
    assert cli.main(_train_args(tmp)) == 0
    return _train_args(tmp)



def _allocation_fails(error: BaseException):
    """A patch: every training step's allocation fails with ``error`` (what NumPy or torch
    raise when memory runs out although the estimate fitted: another process took it)."""
    def patch(mp: pytest.MonkeyPatch) -> None:
        from rnnlab.numpy_backend import NumpyBackend

        def fail(self, *args, **kwargs):
            raise error

        mp.setattr(NumpyBackend, "loss_and_grads", fail)
    return patch


CLI_ROWS = [
    CliRow("cli-hidden-zero", lambda t: _train_args(t, "--hidden", "0"),
           2, r"^rnnlab train: error: argument --hidden: expected a positive integer, got 0"),
    CliRow("cli-hidden-huge", lambda t: _train_args(t, "--hidden", str(10**12)),
           2, r"^rnnlab: error: training a lstm with H=1,000,000,000,000, 1 layer\(s\), V=28 on "
              r"batches of B=2 x T=5 \(numpy, float32, sgd\) needs about [\d,.]+ EiB, more than "
              r"the [\d,.]+ \w+ of memory here; use a smaller --hidden"),
    CliRow("cli-num-layers-huge", lambda t: _train_args(t, "--num-layers", str(10**9)),
           2, r"^rnnlab: error: training a lstm with H=8, 1,000,000,000 layer\(s\), .* needs about "
              r"[\d,.]+ \w+, more than the [\d,.]+ \w+ of memory here"),
    CliRow("cli-num-preds-huge", lambda t: _train_args(t, "--num-preds", str(10**23)),
           2, r"^rnnlab: error: generating --num-preds 100,000,000,000,000,000,000,000 tokens needs "
              r"about [\d,.]+ \w+, more than the [\d,.]+ \w+ of memory here; ask for fewer"),
    CliRow("cli-out-of-memory", _train_args,
           2, r"^rnnlab: error: out of memory \(Unable to allocate 1\.00 TiB for an array with shape "
              r"\(35, 32, 1000000000\) and data type float32\); use a smaller --hidden, --batch-size, "
              r"--num-steps or --num-layers$",
           patch=_allocation_fails(MemoryError("Unable to allocate 1.00 TiB for an array with shape "
                                               "(35, 32, 1000000000) and data type float32"))),
    CliRow("cli-out-of-memory-torch", _train_args,
           2, r"^rnnlab: error: out of memory \(CUDA out of memory\. Tried to allocate 20\.00 GiB\); "
              r"use a smaller --hidden, --batch-size, --num-steps or --num-layers$",
           patch=_allocation_fails(RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"))),
    CliRow("cli-epochs-text", lambda t: _train_args(t, "--epochs", "ten"),
           2, r"argument --epochs: expected a positive integer, got 'ten'"),
    CliRow("cli-lr-nan", lambda t: _train_args(t, "--lr", "nan"),
           2, r"argument --lr: expected a positive finite number, got nan"),
    CliRow("cli-lr-negative", lambda t: _train_args(t, "--lr", "-1"),
           2, r"argument --lr: expected a positive finite number, got -1"),
    CliRow("cli-lr-text", lambda t: _train_args(t, "--lr", "fast"),
           2, r"argument --lr: expected a positive number, got 'fast'"),
    CliRow("cli-clip-zero", lambda t: _train_args(t, "--clip", "0"),
           2, r"argument --clip: expected a positive number, or 'none' for no clipping, got 0"),
    CliRow("cli-clip-text", lambda t: _train_args(t, "--clip", "tight"),
           2, r"argument --clip: expected a positive number, or 'none' for no clipping, got 'tight'"),
    CliRow("cli-dropout", lambda t: _train_args(t, "--dropout", "1.5"),
           2, r"argument --dropout: expected a number in \[0, 1\), got 1\.5"),
    CliRow("cli-dropout-text", lambda t: _train_args(t, "--dropout", "half"),
           2, r"argument --dropout: expected a number in \[0, 1\), got 'half'"),
    CliRow("cli-dropout-one-layer", lambda t: _train_args(t, "--dropout", "0.5"),
           2, r"^rnnlab: error: --dropout 0\.5 acts between stacked layers, and a model with "
              r"--num-layers 1 has none, so it would never be applied; use --num-layers >= 2, "
              r"or --dropout 0$"),
    CliRow("cli-val-fraction", lambda t: _train_args(t, "--val-fraction", "1"),
           2, r"argument --val-fraction: expected a number in \[0, 1\), got 1"),
    CliRow("cli-cell", lambda t: _train_args(t, "--cell", "cnn"),
           2, r"argument --cell: invalid choice: 'cnn'"),
    CliRow("cli-unknown-option", lambda t: _train_args(t, "--hiden", "3"),
           2, r"^rnnlab train: error: unrecognized arguments: --hiden 3 \(see rnnlab train --help\)$"),
    CliRow("cli-seed-negative", lambda t: _train_args(t, "--seed", "-2"),
           2, r"argument --seed: expected a non-negative integer, got -2"),
    CliRow("cli-seed-text", lambda t: _train_args(t, "--seed", "x"),
           2, r"argument --seed: expected a non-negative integer, got 'x'"),
    CliRow("cli-corpus-missing", lambda t: _train_args(t, "--corpus", str(t / "none.txt")),
           2, r"^rnnlab: error: corpus file '.*none\.txt' does not exist$"),
    CliRow("cli-corpus-binary",
           lambda t: _train_args(t, "--corpus", _text_file(t, "a.out", b"\x7fELF\x02\x01\x00\x00")),
           2, r"a\.out' looks binary: it has a NUL byte at offset 6"),
    CliRow("cli-corpus-not-utf8",
           lambda t: _train_args(t, "--corpus", _text_file(t, "gbk.txt", "时间机器".encode("gbk"))),
           2, r"gbk\.txt' is not valid UTF-8: byte 0xbc at offset 2"),
    CliRow("cli-corpus-too-short",
           lambda t: _train_args(t, "--corpus", _text_file(t, "short.txt", b"tiny text")),
           2, r"--corpus .*short\.txt: training corpus has 9 tokens; --batch-size 2 and "
              r"--num-steps 5 need at least 16"),
    CliRow("cli-prefix-unknown", lambda t: _train_args(t, "--prefix", "time traveller!"),
           2, r"'!' \(position 14\); the vocabulary's 28 tokens are <unk>, space, a-z; d2l's "
              r"time-machine pipeline lower-cases the text and turns every non-letter into a "
              r"space: try the prefix 'time traveller '"),
    CliRow("cli-resume-nothing", lambda t: _train_args(t, "--resume"),
           2, r"--resume: no checkpoint at .*run/checkpoint\.safetensors"),
    CliRow("cli-out-is-file", lambda t: ["train", *TINY, "--out", _text_file(t, "taken", b"x")],
           2, r"--out '.*taken': cannot write a checkpoint there"),
    CliRow("cli-device-numpy", lambda t: _train_args(t, "--device", "cuda"),
           2, r"--device cuda needs --backend torch"),
    CliRow("cli-generate-missing", lambda t: ["generate", str(t / "nowhere")],
           2, r"no checkpoint at .*nowhere"),
    CliRow("cli-generate-no-runs", lambda t: ["generate", str(t)],
           2, r"holds no checkpoint\.safetensors and no run directories with one; give a run "
              r"directory \(runs/lstm\) or a checkpoint file"),
    CliRow("cli-generate-corrupt",
           lambda t: ["generate", _text_file(t, "c.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{")],
           2, r"c\.safetensors \(9 bytes\) is not a readable safetensors file"),
    CliRow("cli-diverged",
           lambda t: _train_args(t, "--cell", "lstm", "--lr", "1e30", "--clip", "1", "--hidden",
                                 "32", "--epochs", "3", "--max-tokens", "1000"),
           3, r"^rnnlab: error: the run diverged at epoch 1, batch 2: the loss is \S+ nats per "
              r"token, .*; no checkpoint was saved before it$"),
    CliRow("cli-out-in-use", _locked_out,
           2, rf"^rnnlab: error: --out '.*run' is in use: process {os.getpid()} is training into "
              r"it \(a second writer would overwrite its checkpoint\)"),
    CliRow("cli-resume-unrecorded",
           lambda t: _trained_then_edited(
               t, train={}, extra=lambda c: {k: v for k, v in c.extra.items() if k != "options"}),
           2, r"cannot resume .*: the checkpoint does not record --lr \(no train\.lr\), "
              r"--optimizer .* --batch-size \(no train\.batch_size\), .*give these options"),
    CliRow("cli-resume-bad-record",
           lambda t: _trained_then_edited(
               t, extra=lambda c: {**c.extra, "options": {**c.extra["options"],
                                                           "checkpoint_every": "1"}}),
           2, r"the recorded --checkpoint-every is '1', which is not a valid value"),
    CliRow("cli-torchrun-numpy", lambda t: _train_args(t, "--backend", "numpy"),
           2, r"^rnnlab: error: the numpy backend trains in one process: it is rnnlab's "
              r"executable specification, single-process by design; train data-parallel under "
              r"torchrun with --backend torch", env=TORCHRUN_RANK0),
    CliRow("cli-torchrun-batch-size", lambda t: _train_args(t, "--backend", "torch",
                                                            "--batch-size", "3"),
           2, r"^rnnlab: error: --batch-size 3 cannot be split evenly over 2 processes",
           env=TORCHRUN_RANK0),
    CliRow("cli-torchrun-device-index", lambda t: _train_args(t, "--backend", "torch",
                                                              "--device", "cuda:1"),
           2, r"--device cuda:1: under torchrun every process trains on its own GPU, "
              r"cuda:LOCAL_RANK; pass --device cuda", env=TORCHRUN_RANK0),
    CliRow("cli-patience-no-validation",
           lambda t: _train_args(t, "--patience", "3", "--val-fraction", "0"),
           2, r"^rnnlab: error: --patience 3 stops on the validation perplexity, and "
              r"--val-fraction 0\.0 leaves no validation tokens; give --val-fraction above 0$"),
    CliRow("cli-which-best-missing", _which_best_without_validation,
           2, r"^rnnlab: error: --which best: .*run has no best\.safetensors \(the run had no "
              r"validation split, or has not validated yet\); use --which latest$"),
    CliRow("cli-threads", lambda t: _train_args(t, "--threads", "0"),
           2, r"^rnnlab train: error: argument --threads: expected 'auto' or a positive integer, "
              r"got 0 \(see rnnlab train --help\)$"),
    CliRow("cli-impl-numpy", lambda t: _train_args(t, "--impl", "nn"),
           2, r"^rnnlab: error: --impl nn needs --backend torch \(the numpy backend has one "
              r"implementation, its hand-written BPTT\)$"),
    CliRow("cli-threads-text", lambda t: ["generate", str(t / "run"), "--threads", "all"],
           2, r"^rnnlab generate: error: argument --threads: expected 'auto' or a positive "
              r"integer, got 'all'"),
    CliRow("cli-lr-decay", lambda t: _train_args(t, "--lr-decay", "1.5"),
           2, r"argument --lr-decay: expected a number in \(0, 1\], got 1\.5"),
    CliRow("cli-lr-schedule-cosine-decay",
           lambda t: _train_args(t, "--lr-schedule", "cosine", "--lr-decay", "0.5"),
           2, r"^rnnlab: error: --lr-decay 0\.5 applies to the exp and step schedules; "
              r"--lr-schedule cosine goes from the learning rate down to 0 over --epochs \(leave "
              r"--lr-decay at 1\)$"),
    CliRow("cli-lr-schedule-cosine-decay-after",
           lambda t: _train_args(t, "--lr-schedule", "cosine", "--lr-decay-after", "3"),
           2, r"^rnnlab: error: --lr-decay-after 3 shapes the exp and step schedules, and "
              r"--lr-schedule cosine follows its own curve to 0 over --epochs; leave "
              r"--lr-decay-after out, or choose exp or step$"),
    CliRow("cli-lr-schedule-step-every-0",
           lambda t: _train_args(t, "--lr-schedule", "step", "--lr-decay-after", "0"),
           2, r"^rnnlab train: error: argument --lr-decay-after: expected a positive integer, "
              r"got 0 \(see rnnlab train --help\)$"),
    CliRow("cli-word-prefix-empty", lambda t: _train_args(t, "--token", "word", "--prefix", "..."),
           2, r"^rnnlab: error: the prefix must hold at least one word, got '\.\.\.'$"),
    CliRow("cli-min-freq-too-high",
           lambda t: _train_args(t, "--token", "word", "--min-freq", "100000"),
           2, r"^rnnlab: error: corpus '.*timemachine\.txt': no word occurs 100000 times or more "
              r"\(--min-freq 100000\); lower it$"),
    CliRow("cli-val-fraction-short", lambda t: _train_args(t, "--val-fraction", "0.01"),
           2, r"^rnnlab: error: --val-fraction 0\.01 leaves 4 validation tokens, fewer than "
              r"--num-steps \+ 1 = 6; raise it, or 0 for no validation$"),
    CliRow("cli-out-holds-run", _trained_twice,
           2, r"^rnnlab: error: .*run/checkpoint\.safetensors already holds a run: add --resume to "
              r"continue it, --overwrite to start again in its place, or choose another --out$"),
    CliRow("cli-resume-overwrite", lambda t: _train_args(t, "--resume", "--overwrite"),
           2, r"^rnnlab: error: --resume continues the run in --out, and --overwrite starts a new "
              r"one in its place: give one of them$"),
    CliRow("cli-device-unknown",
           lambda t: _train_args(t, "--backend", "torch", "--device", "tpu")
           if pytest.importorskip("torch") else None,
           2, r"^rnnlab: error: unknown device 'tpu'; expected 'cpu', 'cuda', 'cuda:N' or 'auto'$"),
    CliRow("cli-device-unavailable",
           lambda t: _train_args(t, "--backend", "torch", "--device", "cuda:99")
           if pytest.importorskip("torch") else None,
           2, r"^rnnlab: error: device 'cuda:99' (was asked for, but CUDA is not available to this "
              r"PyTorch .*; use --device cpu|does not exist: this machine has \d+ CUDA device\(s\))$"),
    CliRow("cli-torch-missing", lambda t: _train_args(t, "--backend", "torch"),
           2, r"^rnnlab: error: the torch backend needs PyTorch \(.*\); install its CPU build "
              r"with `pip install torch --index-url https://download\.pytorch\.org/whl/cpu` "
              r"\(for a GPU: the command pytorch\.org gives\)$",
           patch=lambda mp: _uninstalled(mp, "torch", "rnnlab.torch_backend")),
    CliRow("cli-generate-gru-nn", _d2l_gru_on_nn,
           2, r"^rnnlab: error: --impl nn runs torch\.nn\.GRU, which computes the torch form of "
              r"the GRU, .*; this checkpoint holds d2l's form: use --impl scratch$"),
    CliRow("cli-which-file",
           lambda t: ["generate", _saved_from_python(t), "--which", "best"],
           2, r"^rnnlab: error: --which best chooses a checkpoint of a run directory, and "
              r".*py/checkpoint\.safetensors is a file; give the run's directory, or leave "
              r"--which out$"),
    CliRow("cli-inspect-run-no-log", lambda t: ["inspect", "--run", _saved_from_python(t), "--no-plot"],
           2, r"^rnnlab: error: --run .*py/checkpoint\.safetensors: the checkpoint records no "
              r"per-batch gradient norms \(it was not written by `rnnlab train`\)$"),
    CliRow("cli-inspect-window",
           lambda t: ["inspect", "--window", "100000", "--no-plot", "--out", str(t / "insp")],
           2, r"^rnnlab: error: inspecting a window of 100000 steps needs at least 100002 tokens; "
              r"the probe text has \d+ \(use a smaller --window, or a longer corpus\)$"),
    CliRow("cli-gru-nn", lambda t: ["memory", "--cell", "gru", "--backend", "torch", "--impl", "nn"],
           2, r"^rnnlab: error: --impl nn runs torch\.nn\.GRU, which computes the torch form of "
              r"the GRU, .*; add --gru-form torch, or use --impl scratch$"),
    CliRow("cli-resume-other-text",
           lambda t: _resumed_on(t, "other.txt", "the dog sat on the log! "),
           2, r"cannot resume .*: --corpus .*other\.txt is not the text the run was trained on "
              r"\(.*book\.txt\): its tokens have another SHA-256"),
    CliRow("cli-resume-corpus-gone", lambda t: _resumed_on(t, None, None),
           2, r"cannot resume .*: its corpus .*book\.txt is not there any more \(nor as "
              r"book\.txt beside .*\); give --corpus PATH to a file with the same text"),
    CliRow("cli-verify-missing", lambda t: ["verify", str(t / "solution.py"), "--convention", "cs231n"],
           2, r"^rnnlab: error: .*solution\.py: no such file$"),
    CliRow("cli-verify-nothing-found",
           lambda t: ["verify", _text_file(t, "solution.py", b"def f(x):\n    return x\n"),
                      "--convention", "cs231n"],
           2, r"^rnnlab: error: solution\.py has none of rnn_step_forward, rnn_step_backward, "
              r"rnn_forward, .* \(cs231n convention\)" + WRAP_RE),
    CliRow("cli-verify-signature",
           lambda t: ["verify", _text_file(t, "solution.py", b"def rnn_forward(x, h0):\n    pass\n"),
                      "--convention", "cs231n"],
           2, r"rnn_forward\(x, h0, Wx, Wh, b\) expected \(cs231n convention\); rnn_forward takes "
              r"\(x, h0\)" + WRAP_RE),
    CliRow("cli-verify-import",
           lambda t: ["verify", _text_file(t, "solution.py", b"import numpy as np\nW = np.zeros(3) @ undefined\n"),
                      "--convention", "d2l"],
           2, r"^rnnlab: error: cannot import solution\.py: NameError: name 'undefined' is not "
              r"defined \(at solution\.py:2 in <module>: W = np\.zeros\(3\) @ undefined\)$"),
    CliRow("cli-verify-returns",
           lambda t: ["verify", _text_file(t, "solution.py", b"def rnn_forward(x, h0, Wx, Wh, b):\n    return x\n"),
                      "--convention", "cs231n"],
           2, r"rnn_forward returned an ndarray, expected \(h, cache\) \(cs231n convention\)" + WRAP_RE),
    CliRow("cli-verify-lossfun",
           lambda t: ["verify", _text_file(t, "min_char.py", b"import numpy as np\n"),
                      "--convention", "min-char-rnn"],
           2, r"^rnnlab: error: lossFun\(inputs, targets, hprev\) not found in min_char\.py "
              r"\(min-char-rnn convention\)" + WRAP_RE),
    CliRow("cli-verify-d2l-name",
           lambda t: ["verify", _text_file(t, "model.py", b"def lstm(inputs, state, params):\n    pass\n") + ":forward",
                      "--convention", "d2l"],
           2, r"^rnnlab: error: model\.py has no function or class 'forward'; it defines lstm$"),
    CliRow("cli-verify-torch-params",
           lambda t: ["verify", _text_file(t, "net.py", b"import torch\nclass Net(torch.nn.Module):\n"
                      b"    def __init__(self, i, h):\n        super().__init__()\n"
                      b"        self.W = torch.nn.Parameter(torch.zeros(i, h))\n"), "--convention", "torch.nn"],
           2, r"Net has no parameters weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 \(torch\.nn "
              r"convention: .*\); it has W" + WRAP_RE),
    CliRow("cli-verify-cs231n-gru",
           lambda t: ["verify", str(pathlib.Path(__file__).parents[1] / "examples" / "verify" /
                                    "cs231n_correct.py"), "--convention", "cs231n", "--cell", "gru"],
           2, r"^rnnlab: error: CS231n's assignment has rnn and lstm functions only; --cell gru "
              r"does not apply \(cs231n convention\)" + WRAP_RE),
    CliRow("cli-verify-cell",
           lambda t: ["verify", _text_file(t, "min_char.py", b"def lossFun(inputs, targets, hprev):\n    pass\n"),
                      "--convention", "min-char-rnn", "--cell", "lstm"],
           2, r"min-char-rnn is an RNN; --cell lstm does not apply" + WRAP_RE),
    CliRow("cli-verify-example",
           lambda t: ["verify", str(pathlib.Path(__file__).parents[1] / "examples" / "verify" / "min_char_rnn.py"),
                      "--convention", "min-char-rnn", "--example", "B=1 T=0"],
           2, r"example 'B=1 T=0': expected 'B=\.\. T=\.\. D=\.\. H=\.\. seed=\.\.' \(V=\.\. for D\), missing D, H, seed$"),
    CliRow("cli-verify-directory", lambda t: ["verify", str(t), "--convention", "cs231n"],
           2, r"^rnnlab: error: .* is a directory; give the Python file to check$"),
    CliRow("cli-verify-fifo", lambda t: ["verify", _fifo_file(t, "rnn_layers.py"),
                                         "--convention", "cs231n"],
           2, r"^rnnlab: error: .*rnn_layers\.py is a named pipe \(FIFO\), not a Python file; give "
              r"the \.py file to check$"),
    CliRow("cli-verify-device", lambda t: ["verify", "/dev/zero", "--convention", "cs231n"],
           2, r"^rnnlab: error: /dev/zero is a device, not a Python file; give the \.py file to check$"),
    CliRow("cli-verify-not-py",
           lambda t: ["verify", _text_file(t, "rnn_layers.txt", b"import numpy\n"),
                      "--convention", "cs231n"],
           2, r"^rnnlab: error: .*rnn_layers\.txt does not end in \.py; give the Python file to check$"),
    CliRow("cli-verify-syntax",
           lambda t: ["verify", _text_file(t, "solution.py", b"def rnn_forward(x:\n"),
                      "--convention", "cs231n"],
           2, r"^rnnlab: error: cannot import solution\.py: SyntaxError: .* \(line 1\)$"),
    CliRow("cli-verify-exit",
           lambda t: ["verify", _text_file(t, "solution.py", b"import sys\nsys.exit(3)\n"),
                      "--convention", "d2l"],
           2, r"^rnnlab: error: cannot import solution\.py: it called sys\.exit\(3\)$"),
    CliRow("cli-verify-which-cell",
           lambda t: ["verify", _text_file(t, "model.py", b"def forward(inputs, state, params):\n"
                                                          b"    pass\n") + ":forward",
                      "--convention", "d2l"],
           2, r"^rnnlab: error: cannot tell whether forward is an rnn, lstm or gru: give --cell" + WRAP_RE),
    CliRow("cli-verify-no-protocol",
           lambda t: ["verify", _text_file(t, "mine.py", b"x = 1\n"), "--convention", "protocol"],
           2, r"^rnnlab: error: mine\.py defines no rnnlab\.testing\.Protocol object\(s\): name one, "
              r"FILE:NAME" + WRAP_RE),
    CliRow("cli-verify-torch-several",
           lambda t: ["verify", _text_file(t, "net.py", b"import torch\nclass A(torch.nn.Module):\n"
                      b"    pass\nclass B(torch.nn.Module):\n    pass\n"), "--convention", "torch.nn"],
           2, r"^rnnlab: error: net\.py defines several nn\.Module classes \(A, B\): name the one to "
              r"check, net\.py:NAME \(torch\.nn convention\)" + WRAP_RE),
    CliRow("cli-verify-construct",
           lambda t: ["verify", _text_file(t, "net.py", b"import torch\nclass Net(torch.nn.Module):\n"
                      b"    def __init__(self, i, h):\n        super().__init__()\n"
                      b"        raise ValueError('no sizes')\n"), "--convention", "torch.nn"],
           2, r"^rnnlab: error: cannot construct Net\(\d+, \d+\) raised ValueError: no sizes \(at "
              r"net\.py:5 in __init__: .*\) \(torch\.nn convention: Net\(input_size, hidden_size\)\)" + WRAP_RE),
    CliRow("cli-verify-cell-missing",
           lambda t: ["verify", _text_file(t, "solution.py", b"def rnn_step_forward(x, prev_h, Wx, "
                                                             b"Wh, b):\n    pass\n"),
                      "--convention", "cs231n", "--cell", "lstm"],
           2, r"^rnnlab: error: solution\.py has no lstm forward function to check \(cs231n "
              r"convention: lstm_step_forward, .*\); found rnn_step_forward" + WRAP_RE),
    CliRow("cli-verify-d2l-none",
           lambda t: ["verify", _text_file(t, "model.py", b"def helper(x):\n    return x\n"),
                      "--convention", "d2l"],
           2, r"^rnnlab: error: model\.py has none of the functions rnn, lstm, gru \(d2l "
              r"convention: rnn\(inputs, state, params\), as d2l names them\); name yours with "
              r"model\.py:NAME" + WRAP_RE),
    CliRow("cli-verify-not-protocol",
           lambda t: ["verify", _text_file(t, "mine.py", b"x = 1\n") + ":x", "--convention", "protocol"],
           2, r"^rnnlab: error: mine\.py:x is an int, not a function or class$"),
    CliRow("cli-verify-protocol-cell",
           lambda t: ["verify", _text_file(t, "mine.py", b"from rnnlab.testing import Protocol\n"
                      b"p = Protocol('rnn', lambda params, X, state: None)\n"),
                      "--convention", "protocol", "--cell", "lstm"],
           2, r"^rnnlab: error: the Protocol's cell is rnn, not lstm" + WRAP_RE),
    CliRow("cli-verify-torch-name",
           lambda t: ["verify", _text_file(t, "net.py", b"import torch\nclass Net(torch.nn.Module):\n"
                      b"    pass\n") + ":Nope", "--convention", "torch.nn"],
           2, r"^rnnlab: error: net\.py has no function or class 'Nope'; it defines Net$"),
    CliRow("cli-verify-torch-not-module",
           lambda t: ["verify", _text_file(t, "net.py", b"def Net(i, h):\n    return 3\n") + ":Net",
                      "--convention", "torch.nn"],
           2, r"^rnnlab: error: Net\(3, 2\) returned 3 \(int\), expected an nn\.Module \(torch\.nn "
              r"convention\)" + WRAP_RE),
    CliRow("cli-verify-torch-not-module-lstm",
           lambda t: ["verify", _text_file(t, "net.py", b"def MyLSTM(i, h):\n    return None\n")
                      + ":MyLSTM", "--convention", "torch.nn"],
           2, r"^rnnlab: error: MyLSTM\(\d+, \d+\) returned None \(NoneType\), expected an "
              r"nn\.Module \(torch\.nn convention\)" + WRAP_RE),
    CliRow("cli-verify-torch-missing",
           lambda t: ["verify", _text_file(t, "net.py", b"class Net:\n    pass\n"),
                      "--convention", "torch.nn"],
           2, r"^rnnlab: error: .*needs PyTorch, which is not installed \(pip install torch "
              r"--index-url https://download\.pytorch\.org/whl/cpu\)$",
           patch=lambda mp: _uninstalled(mp, "torch")),
    CliRow("cli-verify-no-hypothesis",
           lambda t: ["verify", _text_file(t, "solution.py", b"x = 1\n"), "--convention", "cs231n"],
           2, r"^rnnlab: error: rnnlab verify needs Hypothesis \(.*\): pip install "
              r"hypothesis$",
           patch=lambda mp: _uninstalled(mp, "hypothesis", "rnnlab.testing")),
    CliRow("cli-verify-convention",
           lambda t: ["verify", _text_file(t, "solution.py", b"x = 1\n"), "--convention", "keras"],
           2, r"^rnnlab: error: unknown convention 'keras'; expected one of cs231n, d2l, torch\.nn, "
              r"min-char-rnn, deeplearning\.ai, protocol, torch-tutorial$"),
    CliRow("cli-verify-target-empty", lambda t: ["verify", "", "--convention", "cs231n"],
           2, r"^rnnlab: error: the target is empty: give the Python file to check, FILE or FILE:NAME$"),
    CliRow("cli-verify-target-colon",
           lambda t: ["verify", _text_file(t, "ok.py", b"N = 3\n") + ":", "--convention", "cs231n"],
           2, r"^rnnlab: error: '.*ok\.py:' has nothing after the colon; give a function or class "
              r"of ok\.py \(ok\.py:NAME\) or the file alone$"),
    CliRow("cli-verify-target-not-name",
           lambda t: ["verify", _text_file(t, "ok.py", b"N = 3\n") + ":123"],
           2, r"^rnnlab: error: '.*ok\.py:123' has '123' after the colon, which is not a Python "
              r"name; give a function or class of ok\.py \(ok\.py:NAME\) or the file alone$"),
    CliRow("cli-verify-target-constant",
           lambda t: ["verify", _text_file(t, "ok.py", b"N = 3\n") + ":N"],
           2, r"^rnnlab: error: ok\.py:N is an int, not a function or class$"),
    CliRow("cli-verify-target-unknown",
           lambda t: ["verify", _text_file(t, "ok.py", b"N = 3\ndef my_rnn(x):\n    pass\n"
                                                     b"class Cell:\n    pass\n") + ":nothere"],
           2, r"^rnnlab: error: ok\.py has no function or class 'nothere'; it defines my_rnn, Cell$"),
    CliRow("cli-verify-example-sizes",
           lambda t: ["verify", str(pathlib.Path(__file__).parents[1] / "examples" / "verify" / "min_char_rnn.py"),
                      "--convention", "min-char-rnn", "--example", "B=0 T=1 D=3 H=2 seed=0"],
           2, r"example 'B=0 T=1 D=3 H=2 seed=0': sizes must be >= 1 and the seed >= 0$"),
    CliRow("cli-corpus-empty-name", lambda t: _train_args(t, "--corpus", ""),
           2, r"^rnnlab: error: corpus path is '', an empty name"),
    CliRow("cli-generate-fifo", lambda t: ["generate", str(_mkfifo(t / "pipe"))],
           2, r"^rnnlab: error: .*pipe is not a regular file \(a pipe, device or socket\)"),
    CliRow("cli-resume-fifo",
           lambda t: _train_args(t, "--resume") if _mkfifo(t / "run" / "checkpoint.safetensors")
           else None,
           2, r"run/checkpoint\.safetensors is not a regular file \(a pipe, device or socket\)"),
    CliRow("cli-inspect-run-fifo",
           lambda t: ["inspect", "--run", str(_mkfifo(t / "pipe")), "--no-plot"],
           2, r"pipe is not a regular file \(a pipe, device or socket\)"),
    CliRow("cli-generate-num-preds-huge",
           lambda t: ["generate", _trained(t), "--num-preds", str(10**23)],
           2, r"generating --num-preds 100,000,000,000,000,000,000,000 tokens needs about .* memory "
              r"here; ask for fewer$"),
    CliRow("cli-inspect-short-corpus",
           lambda t: ["inspect", "--corpus", _text_file(t, "s.txt", b"the quick brown fox " * 10),
                      "--no-plot", "--out", str(t / "insp")],
           2, r"^rnnlab: error: the trained panel trains each cell on batches of 32 rows x 35 "
              r"steps, which need at least 1,156 training tokens; the text has \d+: use a longer "
              r"corpus, or --epochs 0"),
    CliRow("cli-gradcheck-huge", lambda t: ["gradcheck", "--hidden", "512"],
           2, r"gradcheck perturbs every number .*: 1,065,477 numbers here, 2,130,954 evaluations "
              r"\(hours\); it is meant for small models"),
    CliRow("cli-compare-missing", lambda t: ["compare", _trained(t), str(t / "nowhere")],
           2, r"^rnnlab: error: no run at .*nowhere: give a run directory of rnnlab train "
              r"\(runs/lstm\) or a checkpoint file$"),
    CliRow("cli-compare-not-a-run", lambda t: ["compare", str(_mkdir(t / "notes"))],
           2, r"^rnnlab: error: .*notes is not a run: it holds no checkpoint\.safetensors; give a "
              r"run directory of rnnlab train \(runs/lstm\) or a checkpoint file$"),
    CliRow("cli-compare-folder-of-runs", lambda t: ["compare", str(pathlib.Path(_trained(t)).parent)],
           2, r"^rnnlab: error: .* is not a run but a folder of runs: name the runs to compare, "
              r"rnnlab compare .*run$"),
    CliRow("cli-compare-no-epochs", lambda t: ["compare", _trained_without_history(t)],
           2, r"^rnnlab: error: .*run: its checkpoint records no epochs \(it was not written by "
              r"rnnlab train, or before its first epoch\); nothing to draw$"),
    CliRow("cli-compare-out-folder",
           lambda t: ["compare", _trained(t), "--out", str(_mkdir(t / "pictures"))],
           2, r"^rnnlab: error: --out .*pictures is a folder; give the PNG's file name "
              r"\(.*pictures/compare\.png\)$"),
    CliRow("cli-compare-out-suffix", lambda t: ["compare", _trained(t), "--out", "c.jpg"],
           2, r"^rnnlab: error: --out c\.jpg: the picture is a PNG; give a name ending in \.png$"),
    CliRow("cli-compare-no-matplotlib", lambda t: ["compare", _trained(t), "--out", "c.png"],
           2, r"^rnnlab: error: rnnlab compare draws with matplotlib, which is not installed: "
              r"pip install matplotlib$",
           patch=lambda mp: _uninstalled(mp, "matplotlib")),
    CliRow("cli-nonfinite",
           lambda t: _train_args(t, "--cell", "lstm", "--lr", "1e39", "--clip", "1e30", "--epochs", "2"),
           3, r"^rnnlab: error: parameter 'W_\w+' holds \d+ NaN or infinite value\(s\) at epoch 1, "
              r"batch 2; .*no checkpoint was saved before it$"),
]


# ------------------------------------------ the run folder, options that cannot act


def _planted_lock(tmp, kind: str):
    """--out whose .rnnlab.lock is a link to a file of the user's, a dangling link, a
    directory or a hard link: rnnlab must write nothing through it."""
    run = tmp / "run"
    run.mkdir()
    precious = tmp / "precious.txt"
    precious.write_text("precious-user-data")
    lock = run / ".rnnlab.lock"
    if kind == "link":
        lock.symlink_to(precious)
    elif kind == "dangling":
        lock.symlink_to(tmp / "outside.txt")
    elif kind == "hardlink":
        os.link(precious, lock)
    else:
        lock.mkdir()
    return _train_args(tmp)


def _best_only(tmp):
    """A run whose checkpoint is gone and whose best model is left (a first save that
    failed on a full disk, before this release staged both files)."""
    assert cli.main(_train_args(tmp)) == 0
    (tmp / "run" / "checkpoint.safetensors").unlink()
    return _train_args(tmp)


def _in_run(tmp, name: str, make):
    (tmp / "run").mkdir(exist_ok=True)
    make(tmp / "run" / name)
    return _train_args(tmp)


def _trained_with(tmp, name: str, make, *argv):
    assert cli.main(_train_args(tmp)) == 0
    path = tmp / "run" / name
    path.unlink()
    make(path)
    return [a if a != "RUN" else str(tmp / "run") for a in argv]


def _loop(path: pathlib.Path) -> None:
    path.symlink_to(path.name)  # a link to itself


def _best_of_another_run(tmp):
    """run/best.safetensors copied from another run (an lstm, H=16)."""
    import shutil

    other = ["train", *TINY, "--cell", "lstm", "--hidden", "16", "--out", str(tmp / "other")]
    assert cli.main(other) == 0 and cli.main(_train_args(tmp, "--cell", "rnn")) == 0
    shutil.copyfile(tmp / "other" / "best.safetensors", tmp / "run" / "best.safetensors")
    return ["generate", str(tmp / "run")]


_PROJECT = []  # the folder a row's command runs in (set by its argv, entered by its patch)


def _corpus_elsewhere(tmp):
    """A run trained on a file outside its project folder, resumed without --corpus from
    inside the project (so neither the current folder nor the run's holds the file)."""
    _PROJECT[:] = [tmp / "project"]
    book = tmp / "elsewhere" / "book.txt"
    book.parent.mkdir()
    book.write_text("the cat sat on the mat. " * 40)
    out = tmp / "project" / "runs" / "run"
    assert cli.main(["train", *TINY, "--corpus", str(book), "--out", str(out)]) == 0
    return ["train", "--resume", "--out", str(out), "--epochs", "2"]


CLI_ROWS += [
    CliRow("cli-lock-symlink", lambda t: _planted_lock(t, "link"),
           2, r"^rnnlab: error: --out '.*run': \.rnnlab\.lock is a symbolic link, not the lock "
              r"file rnnlab makes; rnnlab never writes through it"),
    CliRow("cli-lock-dangling", lambda t: _planted_lock(t, "dangling"),
           2, r"\.rnnlab\.lock is a symbolic link, not the lock file rnnlab makes"),
    CliRow("cli-lock-hardlink", lambda t: _planted_lock(t, "hardlink"),
           2, r"\.rnnlab\.lock is a file with other names \(a hard link\), not the lock file"),
    CliRow("cli-lock-directory", lambda t: _planted_lock(t, "directory"),
           2, r"^rnnlab: error: --out '.*run': \.rnnlab\.lock is a directory, not the lock file"),
    CliRow("cli-out-best-only", _best_only,
           2, r"^rnnlab: error: --out '.*run' holds best\.safetensors, the best model of an "
              r"earlier run, without its checkpoint\.safetensors .*add --overwrite"),
    CliRow("cli-out-foreign-plot",
           lambda t: _in_run(t, "perplexity.png", lambda p: p.write_text("my own figure")),
           2, r"^rnnlab: error: --out '.*run': perplexity\.png is not a plot rnnlab drew, and the "
              r"run would replace it; move it away, choose another --out, or add --overwrite$"),
    CliRow("cli-out-best-directory", lambda t: _in_run(t, "best.safetensors", os.mkdir),
           2, r"^rnnlab: error: --out '.*run': best\.safetensors is a directory, not a file "
              r"rnnlab wrote"),
    CliRow("cli-resume-best-directory",
           lambda t: _trained_with(t, "best.safetensors", os.mkdir,
                                   *_train_args(t, "--resume", "--epochs", "2")),
           2, r"best\.safetensors is a directory, not a file rnnlab wrote"),
    CliRow("cli-resume-out-file",
           lambda t: ["train", "--resume", "--out", _text_file(t, "notes.txt", b"mine")],
           2, r"^rnnlab: error: --out '.*notes\.txt' is a file, not a run directory; give the "
              r"run's folder$"),
    CliRow("cli-resume-out-loop", lambda t: (_loop(t / "loop"), ["train", "--resume", "--out",
                                                                 str(t / "loop")])[1],
           2, r"^rnnlab: error: --out '.*loop' is a symbolic link loop, not a run directory"),
    CliRow("cli-resume-checkpoint-loop",
           lambda t: _in_run(t, "checkpoint.safetensors", _loop) + ["--resume"],
           2, r"^rnnlab: error: --resume: .*run/checkpoint\.safetensors is a symbolic link loop"),
    CliRow("cli-generate-loop", lambda t: (_loop(t / "loop"), ["generate", str(t / "loop")])[1],
           2, r"^rnnlab: error: cannot read .*loop/checkpoint\.safetensors: a symbolic link on "
              r"its way loops back on itself$"),
    CliRow("cli-generate-best-directory",
           lambda t: _trained_with(t, "best.safetensors", os.mkdir, "generate", "RUN"),
           2, r"^rnnlab: error: .*run/best\.safetensors is a directory, not a checkpoint file; "
              r"move it away, or use --which latest$"),
    CliRow("cli-generate-best-other-run", _best_of_another_run,
           2, r"^rnnlab: error: .*run/best\.safetensors belongs to another run than "
              r".*run/checkpoint\.safetensors \(its model is lstm H=16 of 1 epochs, the run's "
              r"rnn H=8 of 1 epochs\)"),
    CliRow("cli-resume-corpus-elsewhere", _corpus_elsewhere,
           2, r"^rnnlab: error: cannot resume .*: its corpus .*elsewhere/book\.txt lies outside "
              r"this folder and the run's .*give --corpus",
           patch=lambda mp: mp.chdir(_PROJECT[0])),
    CliRow("cli-out-empty", lambda t: ["train", *TINY, "--out", ""],
           2, r"^rnnlab: error: --out is '', an empty name: give the run's folder"),
    CliRow("cli-val-every-no-validation",
           lambda t: _train_args(t, "--val-every", "3", "--val-fraction", "0"),
           2, r"^rnnlab: error: --val-every 3 says how often to validate, and --val-fraction 0 "
              r"leaves no validation tokens"),
    CliRow("cli-lr-decay-after-no-decay", lambda t: _train_args(t, "--lr-decay-after", "3"),
           2, r"^rnnlab: error: --lr-decay-after 3 says when the learning rate starts to decay, "
              r"and --lr-decay 1 never decays it"),
    CliRow("cli-lr-decay-after-zero",
           lambda t: _train_args(t, "--lr-decay", "0.9", "--lr-decay-after", "0"),
           2, r"^rnnlab train: error: argument --lr-decay-after: expected a positive integer, "
              r"got 0"),
    CliRow("cli-lr-decay-underflow",
           lambda t: _train_args(t, "--lr-decay", "1e-320", "--lr-decay-after", "1",
                                 "--epochs", "3"),
           2, r"^rnnlab: error: --lr 1 with --lr-decay 1e-320 from --lr-decay-after 1 is 0 "
              r"in float32 from epoch 2 of 3"),
    CliRow("cli-threads-huge", lambda t: _train_args(t, "--threads", str(10**20)),
           2, r"^rnnlab train: error: argument --threads: expected 'auto' or at most 4,096 threads "
              r"\(this machine has \d+ usable cores\), got 100000000000000000000"),
    CliRow("cli-inspect-forget-bias-nan", lambda t: ["inspect", "--forget-bias", "nan"],
           2, r"^rnnlab inspect: error: argument --forget-bias: expected a finite number, got nan"),
    CliRow("cli-inspect-foreign-plot",
           lambda t: ["inspect", "--out", str(t), "--window", "5", "--epochs", "0",
                      "--hidden", "4", "--cells", "rnn",
                      "--corpus", _text_file(t, "gradient_flow.png", b"my own figure")],
           2, r"^rnnlab: error: --out '.*': gradient_flow\.png is not a plot rnnlab drew, and "
              r"inspect would replace it; move it away, choose another --out$"),
    CliRow("cli-inspect-window-one", lambda t: ["inspect", "--window", "1"],
           2, r"^rnnlab: error: --window 1: the gradient's decay per step back needs a window of "
              r"at least 2 steps"),
]


def run_cli(argv, capsys) -> tuple[int, list]:
    """``rnnlab ARGV`` in this process: (exit status, stderr lines)."""
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r.id for r in CLI_ROWS])
def test_cli_bad_input(row: CliRow, tmp_path, time_machine_dir, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    for name, value in row.env:
        monkeypatch.setenv(name, value)
    argv = row.argv(tmp_path)
    if row.patch is not None:
        row.patch(monkeypatch)
    try:
        status, err = run_cli(argv, capsys)
    finally:
        while _HELD:
            _HELD.pop().release()
    assert status == row.status, err
    assert len(err) == 1, f"stderr must be exactly one line, got {err}"
    assert re.search(row.match, err[0]), f"{err[0]!r} !~ {row.match!r}"


def test_cli_generate_top_k_out_of_range(tmp_path, time_machine_dir, monkeypatch, capsys):
    """A valid checkpoint, then decoding options out of range: one line, status 2."""
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    assert run_cli(_train_args(tmp_path), capsys)[0] == 0
    for extra, match in ((["--top-k", "0"], r"argument --top-k: expected a positive integer, got 0"),
                         (["--top-k", "29"], r"--top-k 29 is larger than the vocabulary of 28"),
                         (["--temperature", "-1"], r"argument --temperature: .* got -1"),
                         (["--temperature", "nan"], r"argument --temperature: .* got nan"),
                         (["--num-preds", "-1"], r"argument --num-preds: .* got -1"),
                         (["--strategy", "greedy", "--top-k", "3"], r"apply to --strategy sample")):
        status, err = run_cli(["generate", str(tmp_path / "run"), *extra], capsys)
        assert status == 2 and len(err) == 1 and re.search(match, err[0]), (extra, err)


def test_cli_resume_mismatch_names_the_option(tmp_path, time_machine_dir, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    assert run_cli(_train_args(tmp_path), capsys)[0] == 0
    status, err = run_cli(_train_args(tmp_path, "--resume", "--hidden", "16"), capsys)
    assert status == 2 and len(err) == 1
    assert re.search(r"cannot resume .*run/checkpoint\.safetensors: --hidden 16 \(the checkpoint "
                     r"has 8\)", err[0]), err
    other = _text_file(tmp_path, "other.txt", b"a completely different corpus, with punctuation! " * 20)
    status, err = run_cli(_train_args(tmp_path, "--resume", "--corpus", other), capsys)
    assert status == 2 and len(err) == 1, err
    assert re.search(r"--corpus .*other\.txt \(the checkpoint has timemachine\)", err[0]), err


def test_cli_resume_refuses_an_edited_corpus(tmp_path, monkeypatch, capsys):
    """Same characters, same counts, so the same vocabulary; two letters swapped. A resume
    would train on other text without a word: it is refused, naming the corpus."""
    text = "abc def " * 30
    path = _text_file(tmp_path, "notes.txt", text.encode())
    args = ["train", *TINY, "--out", str(tmp_path / "run"), "--corpus", path, "--prefix", "a"]
    assert run_cli(args, capsys)[0] == 0
    edited = text[:100] + text[101] + text[100] + text[102:]
    assert sorted(edited) == sorted(text) and edited != text
    pathlib.Path(path).write_text(edited)
    status, err = run_cli(args + ["--resume", "--epochs", "2"], capsys)
    assert status == 2 and len(err) == 1, err
    assert re.search(r"cannot resume .*run/checkpoint\.safetensors: --corpus .*notes\.txt has "
                     r"changed since the checkpoint was saved", err[0]), err
    pathlib.Path(path).write_text(text)  # the original text: the resume goes on
    assert run_cli(args + ["--resume", "--epochs", "2"], capsys)[0] == 0


def test_cli_nonfinite_keeps_the_last_good_checkpoint(tmp_path, time_machine_dir, monkeypatch,
                                                      capsys):
    """Epochs 1-2 are fine and saved; the loss turns NaN in epoch 3: status 3, one line
    naming epoch 3 and the batch, and the checkpoint on disk is epoch 2's, finite."""
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    from rnnlab.numpy_backend import NumpyBackend

    real = NumpyBackend.loss_and_grads
    calls = {"n": 0}
    per_epoch = (400 - 1) // 2 // 5  # batches of the sequential partition at offset 0

    def poisoned(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 2 * per_epoch + 1:  # a little into epoch 3
            return (float("nan"),) + tuple(out[1:])
        return out

    monkeypatch.setattr(NumpyBackend, "loss_and_grads", poisoned)
    status, err = run_cli(_train_args(tmp_path, "--epochs", "4", "--checkpoint-every", "1"), capsys)
    assert status == 3 and len(err) == 1, err
    assert re.search(r"loss became nan at epoch 3, batch \d+; .*last good checkpoint, after epoch 2, "
                     r"is kept at "
                     r".*run/checkpoint\.safetensors$", err[0]), err[0]
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.epoch == 2 and len(ckpt.history) == 2
    assert all(np.isfinite(v).all() for v in ckpt.params.values())


def test_cli_interrupted_exits_130_and_keeps_the_checkpoint(tmp_path, time_machine_dir,
                                                            monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    import importlib

    train_module = importlib.import_module("rnnlab.train")  # rnnlab.train is also a function

    real = train_module.train_epoch

    def interrupted(backend, cfg, params, optimizer, loader, tcfg, epoch, *a, **k):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(backend, cfg, params, optimizer, loader, tcfg, epoch, *a, **k)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    status, err = run_cli(_train_args(tmp_path, "--epochs", "3", "--checkpoint-every", "1"), capsys)
    assert status == 130
    lines = [line for line in err if line.strip()]
    assert len(lines) == 1 and "--resume" in lines[0], err
    assert load_checkpoint(tmp_path / "run").epoch == 1


# ------------------------------------------------------------------------------ the docs


def test_every_row_is_documented():
    """docs/errors.md lists every row id of this file, and no id that is not a row."""
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))
    rows = {r.id for r in ROWS} | {r.id for r in CLI_ROWS}
    assert rows - documented == set(), "rows missing from docs/errors.md"
    assert documented - rows == set(), "docs/errors.md lists rows the tests do not have"


def test_exit_statuses():
    from rnnlab.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NONFINITE, exit_status

    assert (EXIT_ERROR, EXIT_NONFINITE, EXIT_INTERRUPTED) == (2, 3, 130)
    assert exit_status(NonFiniteParamError("x")) == 3 and exit_status(ParamError("x")) == 2
    assert exit_status(KeyboardInterrupt()) == 130 and exit_status(CorpusNotFoundError("x")) == 2
    assert issubclass(NonFiniteParamError, ParamError)
    assert issubclass(NonFiniteParamError, NonFiniteError)
