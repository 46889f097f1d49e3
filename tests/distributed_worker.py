"""One rank of the data-parallel property test, started by tests/test_distributed.py as

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py OUT

Every combination of ``COMBOS`` trains ``EPOCHS`` epochs through ``rnnlab.train`` with
``parallel=`` (this rank's rows, DDP over gloo, float64) and writes ``OUT/rank<r>-<i>.npz``:
the final parameters and the per-epoch stats. The test trains the same combinations in
one process on the whole batch (:func:`run` with ``parallel=None``) and compares.

Then set-up failures (``OUT/agree<r>.json``): one rank's error stops every rank with one
message; rank 0's refusal, or rank 0's checkpoint, reaches every rank.

Last, a hung peer: rank 1 stops answering, and rank 0's next collective must give up
after its group's timeout with a DistributedError (``OUT/hang.json``), not wait for ever.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

EPOCHS = 2
V, H, B, T = 12, 6, 4, 5  # vocabulary, hidden units, batch rows (2 per rank), steps
THETA_CLIPS, THETA_NEVER = 0.05, 1e6  # the first clips every batch (checked), the second none

COMBOS = [
    dict(cell=cell, impl=impl, random=random, clip=clip, layers=1, dropout=0.0,
         optimizer="adam" if clip else "sgd")
    for cell, impl, random, clip in itertools.product(
        ("rnn", "lstm", "gru"), ("scratch", "nn"), (False, True), (True, False))
] + [  # stacked with dropout: each rank's masks must be its rows of the whole batch's
    dict(cell=cell, impl=impl, random=False, clip=True, layers=2, dropout=0.3, optimizer="sgd")
    for cell, impl in itertools.product(("rnn", "lstm", "gru"), ("scratch", "nn"))
]


def corpora() -> tuple[np.ndarray, np.ndarray]:
    """A training corpus of ~12 batches per epoch, and a validation split of 3 rows
    (min(B, (16 - 1) // T)), which two ranks share unevenly, 2 + 1."""
    ids = np.random.default_rng(7).integers(0, V, 262 + 16)  # (N,)
    return ids[:262], ids[262:]


def run(combo: dict, backend, parallel=None) -> dict:
    """Train ``combo`` from its seeded start; the parameters and stats, as NumPy."""
    from rnnlab.config import ModelConfig
    from rnnlab.params import init_params
    from rnnlab.train import TrainConfig, train

    cfg = ModelConfig(combo["cell"], V, H, num_layers=combo["layers"], dropout=combo["dropout"],
                      gru_form="torch" if combo["impl"] == "nn" else "d2l")
    tcfg = TrainConfig(num_epochs=EPOCHS, lr=0.5 if combo["optimizer"] == "sgd" else 0.01,
                       batch_size=B, num_steps=T, use_random_iter=combo["random"],
                       clip_theta=THETA_CLIPS if combo["clip"] else THETA_NEVER,
                       optimizer=combo["optimizer"], seed=3, init="torch")
    train_ids, val_ids = corpora()
    params = backend.from_numpy(init_params(cfg, seed=3, dtype="float64", init="torch"))
    history = train(backend, cfg, params, train_ids, tcfg, val_corpus=val_ids,
                    parallel=parallel)
    stats = np.array([[h.train_ppl, h.val_ppl, h.grad_norm_mean, h.grad_norm_max,
                       h.clipped_fraction, h.num_tokens] for h in history])  # (EPOCHS, 6)
    return {**{f"param.{k}": v for k, v in backend.to_numpy(params).items()}, "stats": stats}


def _raise(exc):
    raise exc


def _outcome(call) -> list:
    """[error type, message] of what ``call`` raised, or ["ok", its result]."""
    from rnnlab.errors import RnnlabError

    try:
        return ["ok", call()]
    except RnnlabError as exc:
        return [type(exc).__name__, str(exc)]


def main(out: Path) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    from rnnlab.errors import ConfigError, CorpusError, DistributedError
    from rnnlab.torch_backend.distributed import DataParallel, connect

    torch.set_num_threads(1)
    dp = connect(device="cpu", timeout=120)
    try:
        for i, combo in enumerate(COMBOS):
            be = dp.backend("cpu", dtype="float64", impl=combo["impl"])
            np.savez(out / f"rank{dp.rank}-{i}.npz", **run(combo, be, dp))
        # set-up failures: rank 1's own error stops both; rank 0's shared error reaches both
        (out / f"agree{dp.rank}.json").write_text(json.dumps([
            _outcome(lambda: dp.agree(CorpusError("corpus file 'x.txt' does not exist")
                                      if dp.rank == 1 else None)),
            _outcome(lambda: dp.share(lambda: _raise(ConfigError("--resume: no checkpoint")))),
            _outcome(lambda: dp.share(lambda: b"checkpoint bytes").decode()),
        ]))
        # a hung peer: a group made with a 120 s timeout, set to 1 s as --dist-timeout auto
        # does after the first epoch (set_timeout); rank 1 never answers
        hung = DataParallel(dp.launch, "gloo", 120.0,
                            group=dist.new_group(timeout=datetime.timedelta(seconds=120)))
        hung.set_timeout(1.0)
        if dp.rank == 0:
            start = time.perf_counter()
            try:
                hung.sum([1.0])
                outcome = {"error": None}
            except DistributedError as exc:
                outcome = {"error": type(exc).__name__, "message": str(exc)}
            outcome["seconds"] = time.perf_counter() - start
            (out / "hang.json").write_text(json.dumps(outcome))
        else:
            time.sleep(2.5)  # hung, as far as rank 0 can tell
    finally:
        dp.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
