"""Learning-rate decay and early stopping: pure functions of the epoch and the history.

Nothing here keeps a counter. The learning rate of epoch e is computed from e alone, and
whether to stop from the validation perplexities of the epochs so far, which a checkpoint
stores. So a run killed and resumed decays and stops exactly where the uninterrupted run
does, as every random draw (derived from the seed and the position) already repeats.

**Decay** is char-rnn's (``train.lua``: ``-learning_rate_decay 0.97
-learning_rate_decay_after 10``): at the end of every epoch k >= ``after`` (counting epochs
from 1), the learning rate is multiplied by ``decay``. Epoch e (0-based, so e epochs are
done before it) therefore trains with

    lr_e = lr * decay ** max(0, e - max(after, 1) + 1)

(``after = 0`` decays from the end of the first epoch, as ``after = 1``). ``decay = 1``
(the default) keeps d2l's constant rate.

**Step** (``torch.optim.lr_scheduler.StepLR(step_size=after, gamma=decay)``): the rate
drops by ``decay`` at the end of every ``after``-th epoch,

    lr_e = lr * decay ** floor(e / after)           (after >= 1)

**Cosine** (``CosineAnnealingLR(T_max=E)`` with ``eta_min = 0``, SGDR without restarts,
Loshchilov & Hutter): from ``lr`` at the first epoch down a half cosine over the run's E
epochs,

    lr_e = lr * (1 + cos(pi * e / E)) / 2

so the last epoch trains with a small positive rate. It depends on E: a run resumed
with a larger ``--epochs`` follows the longer curve from the epoch it resumes at.

**Early stopping** on validation perplexity, with a patience of p epochs: the run stops
after a validated epoch when the best validation perplexity so far is p or more epochs
old (the last p epochs did not beat it). ``p = 0`` never stops.
"""

from __future__ import annotations

import math
from typing import Sequence


LR_SCHEDULES = ("exp", "step", "cosine")


def lr_at(lr: float, epoch: int, decay: float = 1.0, after: int = 10, schedule: str = "exp",
          num_epochs: int | None = None) -> float:
    """The learning rate of epoch ``epoch`` (0-based): char-rnn's exponential decay
    (``"exp"``), StepLR's steps (``"step"``) or a cosine over ``num_epochs`` (``"cosine"``)."""
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * epoch / num_epochs)) / 2
    if decay == 1.0:
        return lr
    if schedule == "step":
        return lr * decay ** (epoch // after)
    return lr * decay ** max(0, epoch - max(after, 1) + 1)  # epochs are counted from 1


def best_epoch(val_ppls: Sequence[float | None]) -> int | None:
    """1-based epoch of the lowest validation perplexity (the first, on a tie); None when
    no epoch has one."""
    best, at = math.inf, None
    for i, v in enumerate(val_ppls):
        if v is not None and v < best:
            best, at = v, i + 1
    return at


def stopped_early(val_ppls: Sequence[float | None], patience: int) -> bool:
    """Whether a run with these validation perplexities (epoch 1 first; None for an epoch
    not validated) stops now: the last epoch was validated and the best is ``patience``
    or more epochs behind it. The decision is taken after a validation only, so with
    ``--val-every N`` an epoch without one never stops the run."""
    if patience <= 0 or not val_ppls or val_ppls[-1] is None:
        return False
    at = best_epoch(val_ppls)
    return at is not None and len(val_ppls) - at >= patience


def val_history(history: Sequence) -> list:
    """The validation perplexities of a history of EpochStats or of their dicts (as a
    checkpoint keeps them)."""
    return [h.get("val_ppl") if isinstance(h, dict) else getattr(h, "val_ppl", None)
            for h in history]
