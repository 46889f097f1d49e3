"""The train/validation perplexity plot (d2l's live ``Animator``, written to a PNG)."""

from __future__ import annotations

import io
from pathlib import Path

from .checkpoint import atomic_write_bytes


def plot_perplexity(history: list, path, title: str = "") -> Path:
    """Perplexity per epoch, training and (when present) validation, on a log y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = [h if isinstance(h, dict) else h.to_dict() for h in history]
    epochs = [h["epoch"] for h in hist]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [h["train_ppl"] for h in hist], label="train", color="C0")
    val = [(h["epoch"], h["val_ppl"]) for h in hist if h.get("val_ppl") is not None]
    if val:
        ax.plot(*zip(*val), label="validation", color="C1", linestyle="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "perplexity")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())  # never a half-written PNG
    return path
