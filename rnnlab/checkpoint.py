"""Checkpoints: safetensors for the arrays, JSON metadata in its header, atomic writes.

One ``.safetensors`` file holds everything: ``param.<name>`` arrays, ``optim.<key>``
optimiser arrays, and under the header key ``"rnnlab"`` a JSON document with the format
version, the model configuration, the vocabulary, the training configuration, the epoch,
the optimiser's scalars, the RNG scheme and the history. safetensors cannot run code
when loaded (no pickle), so an untrusted checkpoint is only data.

A SHA-256 digest over the metadata and every array's bytes is stored too: a file edited
by hand, or cut short, is refused with a message saying so. Writes go to a temporary
file in the same directory, are fsynced, then renamed over the old file, so a run killed
mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig
from .data import Vocab
from .errors import CheckpointError, ConfigError, RnnlabError
from .params import validate_params

FORMAT = "rnnlab-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class Checkpoint:
    model: ModelConfig
    params: dict  # name -> NumPy array
    vocab: Vocab
    epoch: int = 0  # epochs completed
    train: dict = field(default_factory=dict)  # the TrainConfig as a dict
    optimizer: dict | None = None  # {"name", "step", "arrays"}
    history: list = field(default_factory=list)  # per-epoch stats dicts
    rng: dict = field(default_factory=dict)  # how every random draw derives from the seed
    extra: dict = field(default_factory=dict)


def resolve(path: str | os.PathLike) -> Path:
    """A run directory means its ``checkpoint.safetensors``."""
    p = Path(path)
    return p / CHECKPOINT_NAME if p.is_dir() else p


def _digest(meta_json: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, rename over it, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_checkpoint(path, ckpt: Checkpoint) -> Path:
    """Save atomically; returns the file written."""
    from safetensors.numpy import save

    path = Path(path)
    if path.is_dir() or path.suffix == "":
        path = path / CHECKPOINT_NAME
    arrays = {f"param.{k}": np.ascontiguousarray(v) for k, v in ckpt.params.items()}
    optim_meta = None
    if ckpt.optimizer is not None:
        optim_meta = {k: v for k, v in ckpt.optimizer.items() if k != "arrays"}
        for k, v in ckpt.optimizer.get("arrays", {}).items():
            arrays[f"optim.{k}"] = np.ascontiguousarray(v)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": ckpt.model.to_dict(),
        "vocab": ckpt.vocab.to_list(),
        "epoch": int(ckpt.epoch),
        "train": ckpt.train,
        "optimizer": optim_meta,
        "history": ckpt.history,
        "rng": ckpt.rng,
        "extra": ckpt.extra,
    }
    meta_json = json.dumps(meta, sort_keys=True)
    header = {"rnnlab": meta_json, "rnnlab_digest": _digest(meta_json, arrays)}
    atomic_write_bytes(path, save(arrays, metadata=header))
    return path


def load_checkpoint(path) -> Checkpoint:
    """Load and verify a checkpoint; every refusal is a CheckpointError saying why."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = resolve(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    try:
        arrays = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (truncated or corrupt?): {exc}"
        ) from exc
    if "rnnlab" not in header:
        raise CheckpointError(f"{path} is a safetensors file but not an rnnlab checkpoint")
    meta_json = header["rnnlab"]
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: rnnlab metadata is not valid JSON: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}; this rnnlab "
            f"reads version {FORMAT_VERSION}"
        )
    if header.get("rnnlab_digest") != _digest(meta_json, arrays):
        raise CheckpointError(
            f"{path}: contents do not match their SHA-256 digest (edited by hand or corrupted)"
        )
    try:
        model = ModelConfig(**meta["model"])
        vocab = Vocab.from_list(meta["vocab"])
    except (TypeError, KeyError, RnnlabError) as exc:
        raise CheckpointError(f"{path}: bad model or vocabulary metadata: {exc}") from exc
    if len(vocab) != model.vocab_size:
        raise CheckpointError(
            f"{path}: vocabulary has {len(vocab)} tokens but the model expects {model.vocab_size}"
        )
    params = {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}
    try:
        validate_params(model, params)
    except RnnlabError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    optimizer = None
    if meta.get("optimizer") is not None:
        optimizer = dict(meta["optimizer"])
        optimizer["arrays"] = {k[len("optim."):]: v for k, v in arrays.items()
                               if k.startswith("optim.")}
    return Checkpoint(model=model, params=params, vocab=vocab, epoch=int(meta.get("epoch", 0)),
                      train=meta.get("train") or {}, optimizer=optimizer,
                      history=meta.get("history") or [], rng=meta.get("rng") or {},
                      extra=meta.get("extra") or {})


def check_resume(ckpt: Checkpoint, model: ModelConfig, vocab: Vocab, train: dict,
                 keys=("batch_size", "num_steps", "use_random_iter", "seed", "optimizer",
                       "max_tokens", "val_fraction")) -> None:
    """A resume must continue the same run: name every option that conflicts."""
    problems = []
    for k, v in model.to_dict().items():
        if ckpt.model.to_dict().get(k) != v:
            problems.append(f"model {k}: checkpoint has {ckpt.model.to_dict().get(k)!r}, asked {v!r}")
    if ckpt.vocab != vocab:
        problems.append("the corpus gives a different vocabulary than the checkpoint's")
    for k in keys:
        if k in ckpt.train and k in train and ckpt.train[k] != train[k]:
            problems.append(f"{k}: checkpoint has {ckpt.train[k]!r}, asked {train[k]!r}")
    if problems:
        raise ConfigError("cannot resume: " + "; ".join(problems))
