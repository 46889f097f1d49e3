"""Data-parallel training over several processes: the parts that need no torch.

``torchrun --nproc-per-node N -m rnnlab train --backend torch ...`` starts N copies of
``rnnlab train``; each reads the launcher's environment (:func:`launch_env`) and
:mod:`rnnlab.torch_backend.distributed` joins them into one process group with
``torch.distributed`` and trains through ``DistributedDataParallel``. This module holds
what the backend-neutral training loop needs to know about it, without importing torch:

* which rows of a (B, T) batch a rank trains on (:func:`shard_rows`): a contiguous block
  of B/N rows, the **same** block every batch, so with sequential partitioning the state
  a rank carries from batch k to batch k+1 belongs to the rows it reads next;
* the :class:`DataParallel` protocol that ``train`` and ``evaluate`` take
  (``parallel=``): ``rows`` picks this rank's rows, ``sum`` adds numbers over all ranks.

The numpy backend is not part of this: it is the executable specification, one process
by design (see docs/distributed.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import ConfigError

# The variables torchrun (and torch.distributed's env:// rendezvous) set in every process.
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")

# --dist-timeout auto: the set-up and the first epoch may wait this long (a resume reads
# the checkpoint on rank 0, the first batches warm up); then about one epoch's time
START_TIMEOUT = 300.0
MIN_EPOCH_TIMEOUT = 60.0  # at least: a checkpoint and its plots are written by rank 0 alone


def epoch_timeout(epoch_seconds: float) -> float:
    """--dist-timeout auto once an epoch has run: twice its time, at least 60 s (a peer
    behind by more than an epoch has stopped, not slowed), at most the start's 300 s."""
    return min(START_TIMEOUT, max(MIN_EPOCH_TIMEOUT, 2.0 * float(epoch_seconds)))


@dataclass(frozen=True)
class Launch:
    rank: int  # this process among all of the run: 0 .. world_size - 1 (torchrun's RANK)
    world_size: int  # processes in the run, over every machine (WORLD_SIZE)
    local_rank: int  # this process on its machine; its GPU is cuda:local_rank (LOCAL_RANK)
    local_world_size: int  # processes on this machine (LOCAL_WORLD_SIZE)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, plots and writes checkpoints."""
        return self.rank == 0


def launch_env(environ=None) -> Launch | None:
    """The launcher's view of this process, or None when no launcher started it.

    A process is under a launcher when ``RANK`` and ``WORLD_SIZE`` are both set (torchrun
    sets them, with ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``, in every process it starts).
    A variable that is set but is not a sensible integer is a ConfigError naming it.
    """
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    values = {}
    for name in LAUNCH_VARIABLES:
        text = env.get(name)
        if text is None:  # set by torchrun; a hand-made environment may leave them out
            values[name] = {"LOCAL_RANK": values["RANK"],
                            "LOCAL_WORLD_SIZE": values["WORLD_SIZE"]}[name]
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise ConfigError(f"environment variable {name}={text!r} is not an integer; "
                              "start data-parallel runs with torchrun") from None
    launch = Launch(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"],
                    values["LOCAL_WORLD_SIZE"])
    if launch.world_size < 1 or not 0 <= launch.rank < launch.world_size \
            or not 0 <= launch.local_rank < max(launch.local_world_size, 1):
        raise ConfigError(f"inconsistent launcher environment: RANK={launch.rank}, "
                          f"WORLD_SIZE={launch.world_size}, LOCAL_RANK={launch.local_rank}, "
                          f"LOCAL_WORLD_SIZE={launch.local_world_size}")
    return launch


def launch_rank(environ=None) -> int:
    """This process's rank (0 without a launcher, or when the environment is malformed:
    then it is rank 0's job to say so)."""
    try:
        launch = launch_env(environ)
    except ConfigError:
        return 0
    return 0 if launch is None else launch.rank


def check_divisible(batch_size: int, world_size: int, option: str = "batch_size") -> None:
    """Every rank trains B/N rows: equal shards make the mean of the ranks' mean losses the
    mean over the whole batch, so the averaged gradient is the full batch's gradient."""
    if batch_size % world_size:
        raise ConfigError(
            f"{option} {batch_size} cannot be split evenly over {world_size} processes "
            f"(each trains {option} / {world_size} rows of every batch); use a batch size "
            f"divisible by {world_size}, or another number of processes")


def shard_rows(a, rank: int, world_size: int, axis: int = 0):
    """Rank ``rank``'s block of the B rows along ``axis``: rows [r·B/N, (r+1)·B/N).

    A block, not every N-th row, so each rank's rows are one piece of the sequential
    layout; either choice is correct as long as a rank keeps the same rows every batch.
    """
    B = a.shape[axis]
    check_divisible(B, world_size)
    n = B // world_size
    index = [slice(None)] * a.ndim
    index[axis] = slice(rank * n, (rank + 1) * n)
    return a[tuple(index)]  # (B/N, T) for a batch, (T, B/N, H*D) for a dropout mask (axis 1)


def split_rows(num_rows: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s share of ``num_rows`` rows when they need not divide evenly
    (validation, where nothing is averaged, only summed): the first ``num_rows % N``
    ranks take one row more, as ``numpy.array_split``; a rank may get none."""
    base, extra = divmod(num_rows, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


@runtime_checkable
class DataParallel(Protocol):
    """What ``train(..., parallel=)`` and ``evaluate(..., parallel=)`` need from a
    data-parallel run (``rnnlab.torch_backend.distributed.DataParallel`` is the one)."""

    rank: int  # 0 .. world_size - 1
    world_size: int  # N processes

    def rows(self, a: np.ndarray, axis: int = 0) -> np.ndarray: ...  # this rank's B/N rows

    def sum(self, values: Sequence[float]) -> list: ...  # each value summed over the ranks
