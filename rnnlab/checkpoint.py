"""Checkpoints: safetensors for the arrays, JSON metadata in its header, atomic writes.

One ``.safetensors`` file holds everything a run needs to continue or to generate:

- arrays: ``param.<name>`` (the model, in its training dtype) and ``optim.<key>`` (the
  optimiser's moments, ``optim.m.W_xh`` ...), stored as plain little-endian buffers;
- under the header key ``"rnnlab"``, one JSON document: the format name and version,
  the model configuration (cell and sizes), the vocabulary (``idx_to_token``), the
  training configuration, the epochs completed, the optimiser's name and step count,
  how every random draw derives from the seed (``rng``), the per-epoch history and a few
  extras (corpus, backend, dtype, the rnnlab version that wrote it);
- under ``"rnnlab_digest"``, a SHA-256 over that JSON text and every array's name,
  dtype, shape and bytes.

safetensors cannot run code when loaded (no pickle), so an untrusted checkpoint is only
data. A file cut short, of another format version, edited by hand, or whose arrays do
not fit its own metadata is refused with a :class:`CheckpointError` that says which.
The arrays are NumPy arrays on the way in and out, so a checkpoint written by the NumPy
backend loads in the PyTorch one (CPU or GPU) and back: ``backend.from_numpy`` moves it.

Writes go to a temporary file in the same directory, are fsynced, then renamed over the
old file (``os.replace`` is atomic on POSIX and Windows), so a run killed mid-save leaves
the previous checkpoint intact and at worst a stray ``.checkpoint.safetensors.*.tmp``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint_schema as schema
from .checks import check_choice, check_instance
from .config import CELLS, ModelConfig
from .data import Vocab, fsync_dir
from .errors import CheckpointError, ConfigError, RnnlabError, SaveError
from .params import validate_params
from .version import __version__

FORMAT = "rnnlab-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"
BEST_NAME = "best.safetensors"  # beside it: the epoch of the lowest validation perplexity
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class Checkpoint:
    model: ModelConfig
    params: dict  # name -> NumPy array, shapes as params.param_shapes(model)
    vocab: Vocab
    epoch: int = 0  # epochs completed; a resume starts at this (0-based) epoch
    train: dict = field(default_factory=dict)  # the TrainConfig as a dict
    optimizer: dict | None = None  # {"name", "step", "arrays": {"m.W_xh": array, ...}}
    history: list = field(default_factory=list)  # per-epoch stats dicts (EpochStats.to_dict)
    rng: dict = field(default_factory=dict)  # how every random draw derives from the seed
    extra: dict = field(default_factory=dict)  # corpus, backend, dtype, rnnlab version
    arrays: dict = field(default_factory=dict)  # other named float arrays (per-batch stats)


def rng_metadata(seed: int) -> dict:
    """The RNG "state" of a run, recorded as the scheme it follows.

    rnnlab never carries a random generator from one epoch to the next: every draw is
    made by a generator built afresh from the seed and the position in the run. So the
    seed and the epoch count are the whole RNG state, and a run resumed after epoch e
    draws exactly what the uninterrupted run drew.
    """
    return {
        "scheme": "derived",  # nothing random is carried between epochs
        "seed": int(seed),
        "bit_generator": "numpy PCG64 (numpy.random.default_rng)",
        "params": "default_rng(seed): d2l's N(0, 0.01^2) weights, zero biases",
        "batches": "epoch e (0-based): default_rng([seed, e]) draws the partition's "
                   "offset (and, with random sampling, the shuffle)",
        "dropout": "batch i of epoch e: default_rng([seed, e, i, 1]) draws the masks",
        "carried": "nothing: the state H (and C) starts at zero every epoch",
    }


def resolve(path: str | os.PathLike) -> Path:
    """A run directory (or a path with no suffix) means its ``checkpoint.safetensors``."""
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise CheckpointError(f"a checkpoint path must be a non-empty str or os.PathLike, got "
                              f"{path!r}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        return p  # a file, or a pipe or device that read_checkpoint_bytes refuses
    return p / CHECKPOINT_NAME if p.is_dir() or p.suffix == "" else p


def _digest(meta_json: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _new_file_mode(path: Path) -> int:
    """The old file's permissions, else what ``open()`` would give (0o666 minus umask).

    ``mkstemp`` creates 0o600 files; without this every save would make the checkpoint
    unreadable to the rest of the group.
    """
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, rename over it, fsync the directory.

    Any failure (an exception, a full disk, Ctrl-C) removes the temp file and leaves the
    old ``path`` untouched; a SIGKILL can leave only the temp file behind, never a
    half-written ``path``.
    """
    path = Path(path)
    commit_staged(stage_bytes(path, data), path)


def stage_bytes(path, data: bytes) -> Path:
    """The first half of :func:`atomic_write_bytes`: ``data`` in a temp file beside
    ``path``, fsynced, with the permissions ``path`` will have; ``path`` is not touched.
    A failure removes the temp file (a full disk: a SaveError naming ``path``). Several
    files staged first and committed after are replaced together or not at all, short
    of a kill between two renames."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _save_error(path, exc) from None
    remove_stale_temps(path)
    mode = _new_file_mode(path)
    # the writer's pid in the name tells a later save whether the writer is still alive
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        _test_hook_slow_save()
        os.chmod(tmp, mode)
    except BaseException as exc:
        discard_staged(Path(tmp))
        if isinstance(exc, OSError):  # a full disk, a read-only or vanished directory
            raise _save_error(path, exc) from None
        raise
    return Path(tmp)


def commit_staged(tmp: Path, path) -> None:
    """The second half: rename the staged file over ``path`` (atomic: readers see the old
    file or the new, never a mix) and make the rename durable."""
    path = Path(path)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        discard_staged(tmp)
        if isinstance(exc, OSError):
            raise _save_error(path, exc) from None
        raise
    fsync_dir(path.parent)  # make the rename itself durable


def discard_staged(tmp: Path) -> None:
    """Remove a staged file that will not be committed (gone already: nothing to do)."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _save_error(path: Path, exc: OSError) -> SaveError:
    import errno

    code = f"{errno.errorcode.get(exc.errno, exc.errno)}" if exc.errno else ""
    why = f"{exc.strerror or exc}" + (f" ({code})" if code else "")
    kept = ("the previous file is kept unchanged" if path.exists()
            else "nothing was written")
    err = SaveError(f"could not write {path}: {why}; {kept}")
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, str(path)
    return err


def remove_stale_temps(path: Path) -> list:
    """Delete ``.<name>.<pid>.*.tmp`` files beside ``path`` left by a writer that was
    killed mid-save (its pid no longer runs). A live writer's file is left alone.
    POSIX only: elsewhere a stray temp file stays (it is never read). Returns the paths
    removed."""
    removed = []
    if os.name != "posix":
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid_text = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid():
            try:
                os.kill(int(pid_text), 0)  # signal 0: only asks whether the pid exists
                continue  # alive (or not ours to signal): maybe saving right now
            except ProcessLookupError:
                pass
            except OSError:
                continue
        elif pid_text.isdigit():
            continue  # this process's own file: a save in another thread, leave it
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _test_hook_slow_save() -> None:
    """TEST HOOK, not a feature: with ``RNNLAB_TEST_SLOW_SAVE=<seconds>`` in the
    environment, sleep between writing the temp file and renaming it over the
    checkpoint, so tests/test_kill_resume.py can SIGKILL a run at exactly that moment
    and check that the previous checkpoint survives. Unset, it costs one dict lookup."""
    delay = os.environ.get("RNNLAB_TEST_SLOW_SAVE")
    if delay:
        import time

        time.sleep(float(delay))


def _check_consistent(where: str, model: ModelConfig, vocab: Vocab, params: dict) -> None:
    """The vocabulary fits the model, and the arrays fit both: else a CheckpointError."""
    if len(vocab) != model.vocab_size:
        raise CheckpointError(
            f"{where}: the vocabulary has {len(vocab)} tokens but the {model.cell} model "
            f"expects vocab_size {model.vocab_size}"
        )
    try:
        validate_params(model, params)
    except RnnlabError as exc:
        raise CheckpointError(f"{where}: arrays do not fit a {model.cell} model with "
                              f"V={model.vocab_size}, H={model.num_hiddens}: {exc}") from exc
    dtype = next(iter(params.values())).dtype
    if dtype not in FLOAT_DTYPES:
        raise CheckpointError(f"{where}: parameters are {dtype}, expected float32 or float64")


def encode_checkpoint(ckpt: Checkpoint) -> bytes:
    """The bytes of a checkpoint file (what :func:`save_checkpoint` writes)."""
    from safetensors.numpy import save

    where = "refusing to save a checkpoint"
    if not isinstance(ckpt, Checkpoint):
        raise CheckpointError(f"{where}: expected a rnnlab.checkpoint.Checkpoint, got "
                              f"{type(ckpt).__name__}")
    if not isinstance(ckpt.model, ModelConfig):
        raise CheckpointError(f"{where}: model must be a ModelConfig, got "
                              f"{type(ckpt.model).__name__}")
    if not isinstance(ckpt.vocab, Vocab):
        raise CheckpointError(f"{where}: vocab must be a rnnlab Vocab, got "
                              f"{type(ckpt.vocab).__name__}")
    schema.check_param_arrays(where, ckpt.params)
    _check_consistent(where, ckpt.model, ckpt.vocab, ckpt.params)
    optim_meta = None
    if ckpt.optimizer is not None:
        if not isinstance(ckpt.optimizer, dict):
            raise CheckpointError(f"{where}: optimizer must be a dict (optimizer.state_dict() "
                                  f"with its name), got {type(ckpt.optimizer).__name__}")
        optim_meta = {k: v for k, v in ckpt.optimizer.items() if k != "arrays"}
        schema.check_optimizer_arrays(where, ckpt.optimizer, ckpt.params)
    schema.check_extra_arrays(where, ckpt.arrays)
    arrays = {f"param.{k}": np.ascontiguousarray(v) for k, v in ckpt.params.items()}
    if ckpt.optimizer is not None:
        for k, v in ckpt.optimizer.get("arrays", {}).items():
            arrays[f"optim.{k}"] = np.ascontiguousarray(v)
    for k, v in ckpt.arrays.items():
        arrays[f"array.{k}"] = np.ascontiguousarray(v)
    meta = schema.plain({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": ckpt.model.to_dict(),
        "vocab": ckpt.vocab.to_list(),
        "epoch": ckpt.epoch,
        "train": ckpt.train,
        "optimizer": optim_meta,
        "history": ckpt.history,
        "rng": ckpt.rng,
        "extra": {"rnnlab_version": __version__, **ckpt.extra} if isinstance(ckpt.extra, dict)
        else ckpt.extra,
    }, "metadata", where)
    schema.check_metadata(meta, where)  # never write what load_checkpoint would refuse
    meta_json = json.dumps(meta, sort_keys=True)
    header = {"rnnlab": meta_json, "rnnlab_digest": _digest(meta_json, arrays)}
    return save(arrays, metadata=header)


def save_checkpoint(path, ckpt: Checkpoint) -> Path:
    """Save atomically to ``path`` (a run directory means its checkpoint.safetensors)."""
    path = resolve(path)
    atomic_write_bytes(path, encode_checkpoint(ckpt))
    return path


def load_checkpoint(path, cell: str | None = None, vocab: Vocab | None = None) -> Checkpoint:
    """Load and verify a checkpoint; every refusal is a CheckpointError saying why.

    ``cell`` and ``vocab``, when given, are what the caller expects: a checkpoint of
    another cell, or with another vocabulary, is refused too.
    """
    if cell is not None:
        check_choice("cell", cell, CELLS)
    if vocab is not None:
        check_instance("vocab", vocab, Vocab)
    path = resolve(path)
    return decode_checkpoint(read_checkpoint_bytes(path), path, cell=cell, vocab=vocab)


def read_checkpoint_bytes(path) -> bytes:
    """The bytes of the checkpoint file at ``path`` (a run directory means its
    checkpoint.safetensors); a missing or unreadable file is a CheckpointError."""
    path = resolve(path)
    if not path.exists():
        try:
            os.stat(path)
        except OSError as exc:  # a link on the way that points back to itself
            if exc.errno == errno.ELOOP:
                raise CheckpointError(f"cannot read {path}: a symbolic link on its way loops "
                                      "back on itself") from None
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():  # reading a pipe would wait forever, /dev/zero never end
        raise CheckpointError(f"{path} is not a regular file (a pipe, device or socket); a "
                              "checkpoint is a .safetensors file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc


MAX_METADATA_BYTES = 64 * 2**20  # a run of 100,000 epochs records about 30 MB of history
MAX_METADATA_DEPTH = 16  # rnnlab's own metadata nests 4 deep (extra.options.<name>)


def parse_metadata(meta_json, path):
    """The metadata JSON, bounded before it is parsed: its size, how deep it nests (a
    100,000-deep nesting would exhaust Python's recursion), and no key given twice (JSON
    keeps the last silently: "epoch" 5 then 1 would read as 1). A CheckpointError names
    the fault; text that is not JSON raises json.JSONDecodeError."""
    if not isinstance(meta_json, str):
        raise CheckpointError(f"{path}: the rnnlab metadata is {type(meta_json).__name__}, "
                              "not JSON text")
    if len(meta_json) > MAX_METADATA_BYTES:
        raise CheckpointError(f"{path}: the rnnlab metadata is {len(meta_json):,} characters, "
                              f"more than the {MAX_METADATA_BYTES:,} a checkpoint may hold")
    depth = _nesting_depth(meta_json)
    if depth > MAX_METADATA_DEPTH:
        raise CheckpointError(f"{path}: the rnnlab metadata nests {depth} levels deep, more "
                              f"than the {MAX_METADATA_DEPTH} a checkpoint's fields use")

    def unique(pairs):
        out = dict(pairs)
        if len(out) < len(pairs):  # a key given twice: name them
            seen, twice = set(), set()
            for k, _ in pairs:
                (twice if k in seen else seen).add(k)
            twice = sorted(twice)
            raise CheckpointError(f"{path}: the rnnlab metadata gives the key(s) "
                                  f"{', '.join(map(repr, twice))} twice in one object; the "
                                  "file was edited or written by other code")
        return out

    return json.loads(meta_json, object_pairs_hook=unique)


def _nesting_depth(text: str) -> int:
    """How deep [ and { nest in JSON text, strings left out (vectorised: a 60 MB header
    takes a fraction of a second)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text).encode()  # strings hold no structure
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int64) - (
        (codes == ord("]")) | (codes == ord("}")))  # +1 opens, -1 closes
    return int(np.cumsum(steps).max(initial=0))


def decode_checkpoint(data: bytes, path, cell: str | None = None,
                      vocab: Vocab | None = None) -> Checkpoint:
    """A checkpoint from its file's bytes (read on one process, sent to the others in a
    data-parallel run); ``path`` names it in errors. Verified as :func:`load_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as exc:
        size = len(data)
        raise CheckpointError(
            f"{path} ({size} bytes) is not a readable safetensors file: truncated, corrupt, "
            f"or another kind of file ({exc})"
        ) from exc
    if "rnnlab" not in header:
        raise CheckpointError(f"{path} is a safetensors file but not an rnnlab checkpoint "
                              "(no 'rnnlab' metadata in its header)")
    meta_json = header["rnnlab"]
    try:
        meta = parse_metadata(meta_json, path)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the rnnlab metadata is not valid JSON ({exc}); "
                              "the file was edited or corrupted") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path}: format {got!r} is not {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}; this rnnlab "
            f"reads format version {FORMAT_VERSION} only"
        )
    if header.get("rnnlab_digest") != _digest(meta_json, arrays):
        raise CheckpointError(
            f"{path}: contents do not match their SHA-256 digest: the metadata or an array "
            "was edited by hand or corrupted on disk"
        )
    schema.check_metadata(meta, str(path))  # every field's type and range, named
    try:
        model = ModelConfig(**meta["model"])
        ckpt_vocab = Vocab.from_list(meta["vocab"])
    except (TypeError, KeyError, RnnlabError) as exc:
        raise CheckpointError(f"{path}: bad model or vocabulary metadata: {exc}") from exc
    stray = sorted(k for k in arrays if not k.startswith(("param.", "optim.", "array.")))
    if stray:
        raise CheckpointError(f"{path}: unknown array(s) {', '.join(stray[:4])}; a checkpoint "
                              "holds param.*, optim.* and array.* only")
    params = {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}
    if not params:
        raise CheckpointError(f"{path}: holds no parameter arrays (param.*)")
    _check_consistent(str(path), model, ckpt_vocab, params)
    optimizer = None
    optim_arrays = {k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")}
    if meta.get("optimizer") is not None:
        optimizer = dict(meta["optimizer"])
        optimizer["arrays"] = optim_arrays
        schema.check_optimizer_arrays(str(path), optimizer, params)
    elif optim_arrays:
        raise CheckpointError(f"{path}: holds optimiser arrays but no optimiser metadata")
    extra_arrays = {k[len("array."):]: v for k, v in arrays.items() if k.startswith("array.")}
    schema.check_extra_arrays(str(path), extra_arrays)
    ckpt = Checkpoint(model=model, params=params, vocab=ckpt_vocab,
                      epoch=int(meta.get("epoch", 0)), train=meta.get("train") or {},
                      optimizer=optimizer, history=meta.get("history") or [],
                      rng=meta.get("rng") or {}, extra=meta.get("extra") or {},
                      arrays=extra_arrays)
    check_compatible(ckpt, cell=cell, vocab=vocab, where=str(path))
    return ckpt


def check_compatible(ckpt: Checkpoint, cell: str | None = None, vocab: Vocab | None = None,
                     where: str = "checkpoint") -> None:
    """Refuse a checkpoint of another cell, or with another vocabulary, than expected."""
    if cell is not None and ckpt.model.cell != cell:
        raise CheckpointError(f"{where} holds a {ckpt.model.cell} model, not a {cell} model")
    if vocab is not None and ckpt.vocab != vocab:
        raise CheckpointError(f"{where} was trained with another vocabulary "
                              f"({vocab_difference(ckpt.vocab, vocab)})")


def vocab_difference(mine: Vocab, theirs: Vocab) -> str:
    """The first difference between the checkpoint's vocabulary and another, in words."""
    a, b = mine.to_list(), theirs.to_list()
    if len(a) != len(b):
        return f"{len(a)} tokens in the checkpoint, {len(b)} expected"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"token {i} is {a[i]!r} in the checkpoint, {b[i]!r} expected"


def check_resume(ckpt: Checkpoint, model: ModelConfig, vocab: Vocab, train: dict,
                 keys=("batch_size", "num_steps", "use_random_iter", "seed", "optimizer",
                       "lr", "clip_theta", "max_tokens", "val_fraction", "init", "lr_decay",
                       "lr_decay_after", "lr_schedule", "token", "min_freq")) -> None:
    """A resume must continue the same run: name every setting that conflicts.

    ``num_epochs`` may differ (that is how a run is extended); everything that changes
    the numbers of the epochs already run may not.
    """
    problems = []
    for k, v in model.to_dict().items():
        if ckpt.model.to_dict().get(k) != v:
            problems.append(f"model {k}: checkpoint has {ckpt.model.to_dict().get(k)!r}, asked {v!r}")
    if ckpt.vocab != vocab:
        problems.append("the corpus gives a different vocabulary than the checkpoint's "
                        f"({vocab_difference(ckpt.vocab, vocab)})")
    for k in keys:
        if k in ckpt.train and k in train and ckpt.train[k] != train[k]:
            problems.append(f"{k}: checkpoint has {ckpt.train[k]!r}, asked {train[k]!r}")
    if problems:
        raise ConfigError("cannot resume: " + "; ".join(problems))
