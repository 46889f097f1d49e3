"""Data-parallel truncated BPTT on the torch backend: torch.distributed and DDP.

``torchrun --nproc-per-node N -m rnnlab train --backend torch ...`` starts N processes;
:func:`connect` joins them into one process group (``gloo`` on the CPU, ``nccl`` on CUDA,
where rank r uses ``cuda:LOCAL_RANK``) and returns a :class:`DataParallel`, which gives
the training loop (``rnnlab.train``, ``parallel=``) this rank's rows and sums over ranks,
and makes the :class:`DistributedTorchBackend` that trains through
``torch.nn.parallel.DistributedDataParallel``.

Why the result equals one process with the whole batch. The loss of a batch is the
mean over its T·B tokens, L = (1/TB) Σ_i ℓ_i. Rank r holds B/N of the rows and computes
L_r = (N/TB) Σ_{i∈r} ℓ_i, the mean over its T·B/N tokens; DDP averages the gradients,

    (1/N) Σ_r ∇L_r = (1/TB) Σ_i ∇ℓ_i = ∇L        (equal shards: B divisible by N)

so after the all-reduce every rank holds the full batch's gradient, bit for bit the same
on every rank. Clipping then computes ‖∇L‖, the full batch's norm, on every rank alike,
and the optimisers take the same step: the replicas never drift apart. The loss each
rank reports is all-reduced the same way (during the backward, so it costs no wait).

The parameters stay what the backend always uses, a dict of leaf tensors: a small
``nn.Module`` (:class:`_Replica`) holds an ``nn.Parameter`` aliasing each of them (same
storage), so DDP can own their gradients, and the optimiser's in-place updates of the
dict are the module's weights. The state is not in the module: each rank carries the
(B/N, H) state of its own rows from one batch to the next, as one process carries (B, H).
"""

from __future__ import annotations

import datetime
import math
import time

import torch
import torch.distributed as dist

from .. import errors
from ..distributed import Launch, launch_env, shard_rows
from ..errors import BackendError, ConfigError, DistributedError, RnnlabError
from . import TorchBackend
from .device import resolve_device
from .functional import head_loss

DEFAULT_TIMEOUT = 600.0  # seconds a collective waits for the other processes (NCCL's default)



def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit] + ("..." if len(text) > limit else "")


def is_communication_error(exc: BaseException) -> bool:
    """An error of the process group itself (a peer gone, a timeout), not of the maths:
    torch raises gloo's as plain RuntimeErrors, hence the look at the text."""
    dist_error = getattr(dist, "DistError", None)  # torch >= 2.2; 2.1 raises RuntimeErrors
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc)
    return any(s in text for s in ("gloo", "NCCL", "ProcessGroup", "Connection reset",
                                   "Connection closed", "Timed out", "timed out", "timeout",
                                   "pair closure"))


class _Collective:
    """``with group._collective("summing"):`` turns a failed collective into a
    DistributedError saying what this rank was doing."""

    def __init__(self, group: "DataParallel", what: str):
        self.group, self.what = group, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, RuntimeError) \
                and not isinstance(exc, RnnlabError) and is_communication_error(exc):
            raise self.group.lost(exc, self.what) from exc
        return False


class DataParallel:
    """One process of a data-parallel run: its rank, its device, its process group.

    ``rows(a, axis)`` is this rank's block of a batch's rows, ``sum(values)`` adds
    numbers over every rank, ``share(produce)`` hands rank 0's result (a checkpoint read
    from disk) to every rank, ``agree(error)`` makes every rank stop together when any
    failed its set-up, and ``backend(...)`` is the DDP backend of this run.
    """

    def __init__(self, launch: Launch, comm_backend: str, timeout: float, group=None,
                 control=None):
        self.launch = launch
        self.rank, self.world_size = launch.rank, launch.world_size
        self.comm_backend = comm_backend  # "gloo" | "nccl": what DDP's all-reduce runs on
        self.timeout = float(timeout)
        self.group = group  # None: the default (world) group
        self.control = control  # a CPU (gloo) group for numbers and messages; None: group
        self.device = None  # set by backend(): cpu, or cuda:LOCAL_RANK
        self.agreed = False  # every rank finished its set-up (agree(None) passed)

    def __repr__(self) -> str:
        return (f"DataParallel(rank={self.rank}, world_size={self.world_size}, "
                f"{self.comm_backend}, device={str(self.device)!r})")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- what the training loop uses -----------------------------------------------------
    def rows(self, a, axis: int = 0):
        """This rank's B/N rows of a batch (axis 0) or of a dropout mask (axis 1)."""
        return shard_rows(a, self.rank, self.world_size, axis)

    def sum(self, values) -> list:
        """Each number summed over the ranks, in float64 (exact for token counts)."""
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)  # (k,) on the CPU
        with _Collective(self, "adding up the ranks' numbers"):
            dist.all_reduce(t, group=self._control_group())
        return t.tolist()

    # -- set-up: one rank reads, all agree -------------------------------------------------
    def share(self, produce):
        """Rank 0 calls ``produce()``; every rank returns its result, or raises its error.

        Only rank 0 touches the run directory (on several machines it may be on rank 0's
        disk alone), so a resume reads the checkpoint there and sends its bytes."""
        payload = None
        if self.rank == 0:
            try:
                payload = ("ok", produce())
            except RnnlabError as exc:
                payload = ("error", type(exc).__name__, str(exc))
        box = [payload]
        with _Collective(self, "receiving rank 0's checkpoint"):
            dist.broadcast_object_list(box, src=0, group=self._control_group())
        payload = box[0]
        if payload[0] == "error":
            raise _rebuild(payload[1], payload[2])
        return payload[1]

    def agree(self, error: BaseException | None) -> None:
        """Every rank says whether its set-up failed; if any did, every rank raises the
        first failure (rank 0's own, or another's naming that rank), so all stop together
        with one message instead of the others waiting for a peer that has left."""
        mine = None if error is None else (type(error).__name__, _first_line(error, 2000))
        outcomes = [None] * self.world_size
        with _Collective(self, "comparing the ranks' set-up"):
            dist.all_gather_object(outcomes, mine, group=self._control_group())
        failed = [(r, o) for r, o in enumerate(outcomes) if o is not None]
        self.agreed = True
        if not failed:
            return
        rank, (kind, message) = failed[0]
        if rank == self.rank and error is not None:
            raise error
        if rank != 0:
            message += f" (on process {rank} of {self.world_size})"
        raise _rebuild(kind, message)

    def lost(self, exc: BaseException, what: str) -> DistributedError:
        """The error a rank raises when a collective fails: a peer died or hung. The
        processes that did not answer are named when the launcher's store can tell."""
        silent = self.silent_peers()
        who = (f"process{'es' if len(silent) > 1 else ''} {', '.join(map(str, silent))} did "
               "not answer (stopped, hung or dead)" if silent else "another process stopped, "
               "died, or hung")
        return DistributedError(
            f"process {self.rank} of {self.world_size} lost the others while {what}: "
            f"{_first_line(exc)}; {who} longer than the {self.timeout:g} s timeout: end the "
            "run's processes, then run the same command with --resume to continue from the "
            "last checkpoint (--dist-timeout sets the wait)")

    def silent_peers(self, grace: float | None = None) -> list:
        """The ranks that do not answer: every process whose collective failed writes
        ``rnnlab/lost/<rank>`` in the launcher's key-value store (torchrun's, which lives
        outside the processes) and waits ``grace`` seconds (at most 2, at most the
        timeout) for the others' keys; a stopped or dead process writes none. Empty when
        the store cannot be reached."""
        grace = min(2.0, self.timeout) if grace is None else grace
        try:
            store = dist.distributed_c10d._get_default_store()
            store.set(f"rnnlab/lost/{self.rank}", "1")
            silent = set(range(self.world_size)) - {self.rank}
            deadline = time.monotonic() + grace
            while silent:
                silent = {r for r in silent if not store.check([f"rnnlab/lost/{r}"])}
                if not silent or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        except Exception:  # no store (a group made by hand), or the launcher is gone
            return []
        return sorted(silent)

    def set_timeout(self, seconds: float) -> None:
        """How long each later collective waits for the others (--dist-timeout auto sets
        it to about an epoch's time once the first epoch has run)."""
        delta = datetime.timedelta(seconds=float(seconds))
        try:
            for group in [self.group] + ([self.control] if self.control is not None else []):
                dist.distributed_c10d._set_pg_timeout(delta, group)  # None: the world group
        except (AttributeError, RuntimeError, ValueError):  # a torch without it: keep the old
            return
        self.timeout = float(seconds)

    # -- the backend -------------------------------------------------------------------------
    def backend(self, device=None, dtype="float32", impl: str = "scratch") -> "DistributedTorchBackend":
        """The torch backend of this run on this rank's device: ``cuda:LOCAL_RANK`` for
        ``device`` "cuda" (or None with a GPU), else the CPU."""
        self.device = rank_device(device, self.launch)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if (self.device.type == "cuda") != (self.comm_backend == "nccl"):
            raise BackendError(f"device {self.device} cannot train over a {self.comm_backend} "
                               "process group")
        return DistributedTorchBackend(self, dtype=dtype, impl=impl)

    def close(self) -> None:
        """Leave the process group (without this, gloo aborts the interpreter at exit)."""
        if dist.is_initialized():
            dist.destroy_process_group()

    def _control_group(self):
        return self.control if self.control is not None else self.group


def _rebuild(kind: str, message: str) -> RnnlabError:
    """The rnnlab error of type ``kind`` (another rank's), or a plain RnnlabError."""
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, RnnlabError)):
        return RnnlabError(f"{kind}: {message}")
    return cls(message)


def wants_cuda(device) -> bool:
    """Whether ``device`` asks for a GPU: "cuda", or None / "auto" on a machine with one."""
    if device is None or device == "auto":
        return torch.cuda.is_available()
    return str(device).startswith("cuda")


def rank_device(device, launch: Launch) -> torch.device:
    """cpu, or ``cuda:LOCAL_RANK``: one GPU per process, the local rank's."""
    if not wants_cuda(device):
        return resolve_device("cpu" if device in (None, "auto") else device)
    if not torch.cuda.is_available():
        resolve_device(device)  # raises the shared "CUDA is not available" BackendError
    count = torch.cuda.device_count()
    if launch.local_rank >= count:
        raise BackendError(f"process {launch.rank} should train on cuda:{launch.local_rank}, "
                           f"but this machine has {count} CUDA device(s): start at most {count} "
                           "processes per machine (torchrun --nproc-per-node)")
    return torch.device("cuda", launch.local_rank)


def connect(device=None, timeout: float = DEFAULT_TIMEOUT, launch: Launch | None = None,
            init_method: str | None = None) -> DataParallel:
    """Join the run's other processes: ``nccl`` when ``device`` asks for CUDA and there is
    one, else ``gloo``; every collective gives up after ``timeout`` seconds.

    ``launch`` defaults to torchrun's environment (``rnnlab.distributed.launch_env``),
    ``init_method`` to ``env://`` (torchrun's MASTER_ADDR / MASTER_PORT). Device errors
    are not raised here but by :meth:`DataParallel.backend`, inside the set-up the ranks
    agree on, so a rank without its GPU stops every rank with one message.
    """
    launch = launch if launch is not None else launch_env()
    if launch is None:
        raise ConfigError("no data-parallel launcher here (RANK and WORLD_SIZE are not set); "
                          "start the run with torchrun")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    comm = "nccl" if wants_cuda(device) and torch.cuda.is_available() \
        and dist.is_nccl_available() else "gloo"
    delta = datetime.timedelta(seconds=float(timeout))
    try:
        dist.init_process_group(comm, init_method=init_method, rank=launch.rank,
                                world_size=launch.world_size, timeout=delta)
        # numbers and messages (sums, the checkpoint, set-up failures) go over the CPU
        control = dist.new_group(backend="gloo", timeout=delta) if comm == "nccl" else None
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"process {launch.rank} of {launch.world_size} could not join "
                               f"the others: {_first_line(exc)}") from exc
    return DataParallel(launch, comm, timeout, control=control)


class _Replica(torch.nn.Module):
    """The backend's parameter dict as an nn.Module, for DistributedDataParallel.

    Each ``nn.Parameter`` aliases one of the dict's tensors (same storage), so DDP's
    broadcast of rank 0's weights at construction and the optimiser's in-place steps on
    the dict are seen by both. ``forward`` is the backend's model, train mode.
    """

    def __init__(self, backend: TorchBackend, cfg, params: dict):
        super().__init__()
        self.weights = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(v, requires_grad=True) for k, v in params.items()})
        self._backend, self._cfg = backend, cfg
        self._tensors = dict(params)  # the dict's own tensors: which dict this replica serves

    def serves(self, cfg, params: dict) -> bool:
        return cfg == self._cfg and len(params) == len(self._tensors) and all(
            params.get(k) is t for k, t in self._tensors.items())

    def forward(self, X, state, masks):
        return self._backend._model(self._cfg, dict(self.weights), X, state, train=True,
                                    dropout_masks=masks)  # logits (T*B/N, V), state_T


class DistributedTorchBackend(TorchBackend):
    """The torch backend of one rank of a data-parallel run.

    ``loss_and_grads`` takes this rank's rows and returns the **whole batch's** loss and
    gradient (all-reduced over the ranks by DDP, identical on every rank) with this
    rank's final state (detached, its rows only). Everything else (``forward``,
    ``begin_state``, ``clip_grads``, optimisers, conversions) is the torch backend's.
    """

    def __init__(self, parallel: DataParallel, dtype="float32", impl: str = "scratch"):
        super().__init__(dtype=dtype, device=parallel.device, impl=impl)
        self.parallel = parallel  # train(parallel=...) checks it is this run's backend
        self._ddp = None  # DistributedDataParallel over a _Replica of the params in use

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", rank={self.parallel.rank}/{self.parallel.world_size})"

    def _replica(self, cfg, params: dict):
        """DDP over these params, built once (a new params dict, e.g. after a resume,
        builds a new one; every rank does so at the same batch, as DDP requires)."""
        if self._ddp is None or not self._ddp.module.serves(cfg, params):
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device] if self.device.type == "cuda" else None
            with _Collective(self.parallel, "starting DistributedDataParallel"):
                self._ddp = DistributedDataParallel(_Replica(self, cfg, params),
                                                    device_ids=device_ids,
                                                    process_group=self.parallel.group)
        return self._ddp

    def loss_and_grads(self, cell, params: dict, X, Y, state: tuple, weights=None,
                       state_grads: bool = False, dropout_masks=None):
        """(mean loss over the whole batch, its gradients, this rank's final state).

        ``X, Y`` (B/N, T) are this rank's rows, ``state`` their state, ``dropout_masks``
        the (T, B/N, H*D) rows of the whole batch's masks (``DataParallel.rows``).
        """
        if state_grads:
            raise ConfigError("state_grads is not available in data-parallel training: the "
                              "initial state's gradient belongs to each process's own rows; "
                              "ask a single-process backend for it")
        cfg, params, X, Y, state, weights, masks = self._loss_inputs(
            cell, params, X, Y, state, weights, dropout_masks)
        ddp = self._replica(cfg, params)
        with _Collective(self.parallel, "all-reducing the gradients"):
            with torch.enable_grad():
                logits, state_T = ddp(X, state, masks)  # (T*B/N, V): this rank's rows
                loss = head_loss(cfg, logits, Y.T.reshape(-1), weights)  # mean over T*B/N tokens
            total = loss.detach().reshape(1).clone()  # (1,)
            work = dist.all_reduce(total, group=self.parallel.group, async_op=True)
            loss.backward()  # DDP sums each bucket of gradients over the ranks as it is ready
            work.wait()  # the loss' all-reduce ran beside the backward
        weights_ = ddp.module.weights
        grads = {k: p.grad for k, p in weights_.items()}  # averaged: the full batch's gradient
        for p in weights_.values():
            p.grad = None  # no .grad left behind, as TorchBackend.loss_and_grads
        loss = float(total) / self.parallel.world_size  # mean of equal shards' means
        state_T = tuple(s.detach() for s in state_T)
        if not math.isfinite(loss):  # every rank sees the same loss: all stop together
            self._name_non_finite(params, state, masks)
        return loss, grads, state_T
