"""The PNGs rnnlab writes: perplexity curves, several runs compared, gradient norms over
training, gradient flow, a memory task's loss against its baseline and its gradient reach.

matplotlib is optional (``pip install matplotlib``); it is imported inside each
function, with the non-interactive Agg backend, and every PNG is written atomically.

Titles carry the user's words (a corpus named 时间机器.txt). matplotlib's default font has
no CJK glyphs: it would warn once per character and draw empty boxes. ``readable`` picks
an installed font that has the missing glyphs as a fallback behind the default font, and
where none is installed writes those characters as escapes (``\u65f6``), so a plot never
warns and never shows a box.
"""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_bytes

CELL_COLORS = {"rnn": "C3", "lstm": "C0", "gru": "C2", "irnn": "C1"}


# families that cover Chinese, Japanese and Korean on common systems, tried before every
# other installed font
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
                "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN",
                "SimHei", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC",
                "Arial Unicode MS", "Noto Sans")
# never a fallback: its glyphs for what other fonts lack are boxes showing the code point
BOX_FONTS = ("Last Resort",)


@functools.lru_cache(maxsize=None)
def _codepoints(path: str) -> frozenset:
    """The code points a font file has glyphs for (empty if it cannot be read)."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (RuntimeError, OSError, ValueError):
        return frozenset()


def _default_font() -> tuple[str, str]:
    """(family name, file) of the font matplotlib draws text with by default."""
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties())
    return font_manager.FontProperties(fname=path).get_name(), path


@functools.lru_cache(maxsize=256)
def fallback_font(chars: frozenset) -> str | None:
    """The family of an installed font with a glyph for every code point in ``chars``:
    the CJK families first, then the rest by name; None if no font has them all."""
    from matplotlib import font_manager

    entries = [e for e in font_manager.fontManager.ttflist
               if not e.name.startswith(BOX_FONTS) and e.style == "normal"]
    rank = {name: i for i, name in enumerate(CJK_FAMILIES)}
    entries.sort(key=lambda e: (rank.get(e.name, len(rank)), e.name, abs(e.weight - 400)
                                if isinstance(e.weight, int) else 0))
    for entry in entries:
        if chars <= _codepoints(entry.fname):
            return entry.name
    return None


def readable(text: str) -> tuple[str, dict]:
    """``text`` and the Text properties that draw it with no missing glyph: the default
    font where it has every character; else that font with a fallback font that has the
    rest; else ``text`` with those characters escaped (``时`` -> ``\u65f6``)."""
    name, path = _default_font()
    have = _codepoints(path)
    missing = frozenset(ord(c) for c in text if not c.isspace() and ord(c) not in have)
    if not missing:
        return text, {}
    family = fallback_font(missing)
    if family is not None:
        return text, {"fontfamily": [name, family]}
    return "".join(c.encode("unicode_escape").decode("ascii") if ord(c) in missing else c
                   for c in text), {}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_log_labels(ax, axis: str = "y") -> None:
    """Label a log axis with plain numbers (2, 5, 10, 20) instead of 2×10^0 ...

    Every tick is labelled when the axis spans less than a decade and a half, else only
    the 1, 2 and 5 of each decade, so a student reads perplexities off the axis directly.
    """
    from matplotlib.ticker import FuncFormatter

    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    dense = hi / max(lo, 1e-300) < 30

    def label(v, _pos):
        if v <= 0:
            return ""
        lead = int(round(v / 10 ** np.floor(np.log10(v) + 1e-9)))
        return f"{v:g}" if dense or lead in (1, 2, 5) else ""

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(label))
    target.set_minor_formatter(FuncFormatter(label))


# the PNG's "Software" text: a run folder's plot is rnnlab's to redraw, a user's own
# perplexity.png is not (rnnlab.cli.run_writer.check_out_folder reads it back)
PLOT_SOFTWARE = "rnnlab"


def _save(fig, path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": PLOT_SOFTWARE})
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())  # never a half-written PNG
    return path


def plot_perplexity(history: list, path, title: str = "") -> Path:
    """Perplexity per epoch, training and (when present) validation, on a log y axis.

    d2l's ``Animator`` draws the same curve live; here it is a PNG rewritten at every
    checkpoint. Perplexity is exp(mean cross-entropy): V (28) for a uniform guess, 1 for
    a model that is always certain and right.
    """
    plt = _pyplot()
    hist = [h if isinstance(h, dict) else h.to_dict() for h in history]
    epochs = [h["epoch"] for h in hist]
    train = [h["train_ppl"] for h in hist]
    marker = "o" if len(hist) <= 30 else None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(epochs, train, label=f"train (last {train[-1]:.2f})", color="C0", marker=marker,
            markersize=3)
    val = [(h["epoch"], h["val_ppl"]) for h in hist if h.get("val_ppl") is not None]
    if val:
        ve, vp = zip(*val)
        best = int(np.argmin(vp))
        ax.plot(ve, vp, label=f"validation (last {vp[-1]:.2f}, best {vp[best]:.2f} "
                              f"at epoch {ve[best]})",
                color="C1", linestyle="--", marker=marker, markersize=3)
        ax.plot([ve[best]], [vp[best]], marker="*", color="C1", markersize=10, linestyle="")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity = exp(mean cross-entropy), log scale")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if epochs and max(epochs) - min(epochs) < 10:
        ax.set_xticks(epochs)
    else:
        integer_epochs(ax)
    plain_log_labels(ax)
    ax.legend()
    text, font = readable(title or "perplexity per epoch")
    ax.set_title(text, **font)
    fig.tight_layout()
    return _save(fig, path)


def integer_epochs(ax) -> None:
    """Epoch ticks at whole epochs only (never 2.5): every epoch when there are few."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def compare_figure(runs: list, title: str = ""):
    """The figure of :func:`plot_compare`: validation (left) and training (right)
    perplexity per epoch, one colour per run, on log axes labelled in plain numbers."""
    plt = _pyplot()
    fig, (val_ax, train_ax) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100, sharey=True)
    styles = ("-", "--", ":", "-.")  # past ten runs the colours repeat: the line style differs
    for i, (label, history) in enumerate(runs):
        hist = [h if isinstance(h, dict) else h.to_dict() for h in history]
        color, style = f"C{i % 10}", styles[(i // 10) % len(styles)]
        marker = "o" if len(hist) <= 30 else None
        val = [(h["epoch"], h["val_ppl"]) for h in hist if h.get("val_ppl") is not None]
        if val:
            ve, vp = zip(*val)
            best = int(np.argmin(vp))
            text = f"{label}; best validation {vp[best]:.2f} at epoch {ve[best]}"
            val_ax.plot(ve, vp, color=color, linestyle=style, marker=marker, markersize=3)
            val_ax.plot([ve[best]], [vp[best]], marker="*", color=color, markersize=10,
                        linestyle="")
        else:
            text = f"{label}; not validated"
        train_ax.plot([h["epoch"] for h in hist], [h["train_ppl"] for h in hist], color=color,
                      linestyle=style, marker=marker, markersize=3, label=readable(text)[0])
    for ax, what in ((val_ax, "validation perplexity (★ the best epoch)"),
                     (train_ax, "training perplexity")):
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(what, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        integer_epochs(ax)
    val_ax.set_ylabel("perplexity = exp(mean cross-entropy), log scale")
    plain_log_labels(val_ax)  # shared y: one formatter labels both panels
    fig.legend(*train_ax.get_legend_handles_labels(), loc="lower center", fontsize=9,
               ncol=1 if len(runs) <= 4 else 2, frameon=False)
    text, font = readable(title or f"{len(runs)} runs compared")
    fig.suptitle(text, **font)
    # the legend sits under the panels, one line per run (two columns past four runs)
    lines = len(runs) if len(runs) <= 4 else (len(runs) + 1) // 2
    legend = 0.3 + 0.22 * lines  # inches
    fig.set_size_inches(11, 4.2 + legend)
    fig.tight_layout(rect=(0, legend / (4.2 + legend), 1, 1))
    return fig


def plot_compare(runs: list, path, title: str = "") -> Path:
    """Several runs' perplexity curves in one PNG: ``runs`` is a list of (label, history),
    a history as a checkpoint keeps it (``EpochStats.to_dict`` per epoch). ``rnnlab
    compare`` draws it, to set cells or sizes side by side."""
    return _save(compare_figure(runs, title), path)


def plot_task_losses(curves: dict, baseline: float, path, title: str = "") -> Path:
    """A memory task's held-out loss per epoch, one curve per run (``{label: losses}``),
    on a log y axis, with the task's baseline (the memoryless answer's loss) dashed: a run
    that has learned nothing lies on that line, one that has learned the task far below."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    _task_losses(ax, curves, baseline, title or "loss per epoch against the baseline")
    fig.tight_layout()
    return _save(fig, path)


def _task_losses(ax, curves: dict, baseline: float, title: str) -> None:
    """The curves of ``plot_task_losses`` drawn on ``ax``."""
    for i, (label, losses) in enumerate(curves.items()):
        cell = str(label).split()[0]
        style = "-" if str(label) == cell else "--"  # truncated runs dashed
        ax.plot(range(1, len(losses) + 1), losses, label=f"{label} (last {losses[-1]:.4g})",
                color=CELL_COLORS.get(cell, f"C{4 + i}"), linestyle=style)
    ax.axhline(baseline, color="0.4", linestyle=":", label=f"baseline {baseline:.4g}")
    ax.set_xlabel("epoch")
    integer_epochs(ax)
    ax.set_ylabel("held-out loss, log scale")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    text, font = readable(title)
    ax.set_title(text, **font)


REACH_FLOOR = 1e-16  # the colour scale's lower end: a gradient this small teaches nothing


def plot_task_run(curves: dict, baseline: float, path, reach_epochs=(), reach=None,
                  title: str = "") -> Path:
    """One task run's figure: its loss curves against the baseline (left) and, when
    ``reach`` is given, the gradient reach over training (right): ``reach`` (R, T+1)
    holds at row r the record taken after epoch ``reach_epochs[r]`` (0: at initialisation),
    ||dL/dH_{T-k}|| by k = steps back from the last step, as a share of its largest
    where the loss is read (``gradient_reach.relative_reach``); drawn as an image on a
    log colour scale, steps back across and epochs up: a gradient that learns to reach
    further back shows as the bright region growing to the right as the epochs go up."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    if reach is None or not len(reach):
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        _task_losses(ax, curves, baseline, title or "loss per epoch against the baseline")
        fig.tight_layout()
        return _save(fig, path)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=110,
                                  gridspec_kw={"width_ratios": [1, 1.15]})
    _task_losses(ax, curves, baseline, "held-out loss against the baseline")
    shown = np.asarray(reach, np.float64)  # (R, T+1)
    finite = np.isfinite(shown)  # (an IRNN's state can overflow float64: left blank)
    shown = np.where(finite, np.clip(shown, REACH_FLOOR, None), np.nan)  # 0 -> the floor
    lo, hi = (np.nanmin(shown), np.nanmax(shown)) if finite.any() else (REACH_FLOOR, 1.0)
    epochs = np.asarray(reach_epochs, np.float64)  # (R,)
    steps = shown.shape[1] - 1
    # row r spans half-way to its neighbours, so unevenly spaced records keep their place
    edges = np.concatenate([[epochs[0] - 0.5], (epochs[1:] + epochs[:-1]) / 2,
                            [epochs[-1] + 0.5]]) if len(epochs) > 1 else epochs[0] + np.array(
                                [-0.5, 0.5])  # (R+1,)
    image = ax2.pcolormesh(np.arange(steps + 2) - 0.5, edges, shown, shading="flat",
                           cmap="magma", norm=LogNorm(vmin=lo, vmax=max(hi, 1.0)))
    ax2.set_xlabel("k, steps back from the last step")
    ax2.set_ylabel("epoch (0: at initialisation)")
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, as the loss's
    ax2.set_xlim(-0.5, steps + 0.5)
    bar = fig.colorbar(image, ax=ax2)
    bar.set_label("||dL/dH_{T-k}|| / largest where the loss is read")
    ax2.set_title("how far back the gradient of the loss reaches")
    text, font = readable(title)
    if text:
        fig.suptitle(text, **font)
    fig.tight_layout()
    return _save(fig, path)


def plot_grad_norms(positions, norms, theta: float, path, title: str = "") -> Path:
    """The global gradient norm of every batch, before and after clipping at θ.

    ``positions`` are epochs (batch i of n in epoch e, 0-based, sits at e + (i + 1) / n),
    ``norms`` the norms before clipping. After clipping the norm is min(||g||, θ):
    d2l's ``grad_clipping`` rescales g to length θ whenever it is longer. Top: every
    batch (thin), the mean per epoch before and after clipping, the clipped batches in
    red; bottom: the share of each epoch's batches that were clipped. A run without
    clipping (θ None or inf, ``--clip none``) gets the top panel alone, its norms as
    they were: there is no "after" and nothing clipped to show.
    """
    plt = _pyplot()
    theta = math.inf if theta is None else float(theta)  # None: the run did not clip
    x = np.asarray(positions, dtype=np.float64)
    before = np.asarray(norms, dtype=np.float64)
    after = np.minimum(before, theta)  # what the optimiser steps with
    clipped = before > theta
    epoch = np.ceil(x - 1e-9).astype(int)  # (n,): 1-based epoch of each batch
    epochs = np.unique(epoch)
    mean_before = np.array([before[epoch == e].mean() for e in epochs])
    mean_after = np.array([after[epoch == e].mean() for e in epochs])
    share = np.array([clipped[epoch == e].mean() for e in epochs])
    clips = math.isfinite(theta)
    if clips:
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.5, 6), dpi=110, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    else:
        fig, ax = plt.subplots(1, 1, figsize=(7.5, 4.6), dpi=110)
    dense = len(x) > 400
    before_words = ", before clipping" if clips else ""
    ax.plot(x, before, color="C0", linewidth=0.5 if dense else 1.0, alpha=0.35 if dense else 0.7,
            label="every batch" + before_words)
    mid = epochs - 0.5  # epoch e covers (e-1, e]: its mean sits in the middle
    ax.plot(mid, mean_before, color="C0", linewidth=2,
            label=f"epoch mean{' before clipping' if clips else ''} ||g||")
    if clips:
        ax.plot(mid, mean_after, color="C1", linewidth=2, linestyle="--",
                label="epoch mean after clipping min(||g||, θ)")
    if clipped.any():
        ax.plot(x[clipped], before[clipped], "o", color="C3", markersize=2.5,
                label=f"clipped batches ({100 * clipped.mean():.1f}%)")
    if math.isfinite(theta):
        ax.axhline(theta, color="k", linestyle=":", linewidth=1, label=f"threshold θ = {theta:g}")
    ax.set_ylabel("global gradient norm ||g||, log scale")
    ax.set_yscale("log")
    plain_log_labels(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    what = "gradient norm before and after clipping" if clips else "gradient norm (no clipping)"
    text, font = readable((title + "\n" if title else "") + what)
    ax.set_title(text, **font)
    if not clips:
        ax.set_xlabel("epoch")
        fig.tight_layout()
        return _save(fig, path)
    ax2.plot(mid, 100 * share, color="C3", drawstyle="steps-mid")
    ax2.set_ylabel("% clipped")
    ax2.set_xlabel("epoch")
    ax2.set_ylim(0, max(5, 100 * share.max() * 1.1) if len(share) else 5)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


GRADIENT_FLOOR = 1e-16  # gradient_flow.png's y axis stops here (float64's relative precision)


def plot_gradient_flow(flows: dict, path, window: int, epochs: int, title: str = "") -> Path:
    """||dL/dH_{T-k}|| / ||dL/dH_T|| against k, per cell: at initialisation and trained.

    ``flows`` maps a label to an :class:`rnnlab.inspect.GradientFlow`. A straight line
    on the log axis is a geometric decay; its slope is the per-step factor.
    """
    plt = _pyplot()
    trained = any(f.trained is not None for f in flows.values())
    ncols = 2 if trained else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 4.8), dpi=110, squeeze=False)
    panels = [("init", "at d2l's initialisation: N(0, 0.01²) weights, zero biases")]
    if trained:
        panels.append(("trained", f"after {epochs} epochs of training on the same text "
                                  "(own y scale)"))
    for ax, (which, subtitle) in zip(axes[0], panels):
        lowest = 1.0
        for label, f in flows.items():
            n = getattr(f, which)
            if n is None:
                continue
            k = np.arange(len(n))  # (T+1,)
            r = n / n[0]  # (T+1,): relative to the gradient at the prediction
            r = np.where(r > 0, r, np.nan)  # log axis: an exact 0 is not drawn
            lowest = min(lowest, float(np.nanmin(r, initial=1.0)))
            color = CELL_COLORS.get(f.cell, None)
            style = "-" if label == f.cell else "--"
            factor = f.decay_per_step(which)
            extra = ""
            if which == "trained" and f.train_ppl is not None:
                extra = f", ppl {f.train_ppl:.1f}"
            ax.plot(k, r, style, color=color, linewidth=1.8,
                    label=f"{label}: ×{factor:.2f} per step back{extra}")
        ax.set_yscale("log")
        # every curve starts at 1 (k = 0). The rnn's falls to 1e-100 and below at d2l's
        # initialisation; on an axis down to there the other curves would be squashed into
        # its top tenth. Below GRADIENT_FLOOR of the gradient at the prediction, a share is
        # lost in float64 rounding of the sum it joins: the curves leave the plot there.
        ax.set_ylim(bottom=max(lowest, GRADIENT_FLOOR) / 3, top=3.0)
        if lowest < GRADIENT_FLOOR:
            ax.text(0.99, 0.99, f"below {GRADIENT_FLOOR:.0e}: off the plot", ha="right",
                    va="top", transform=ax.transAxes, fontsize=8, color="0.4")
        ax.set_ylabel(r"$\|\partial L/\partial H_{T-k}\| \;/\; \|\partial L/\partial H_T\|$"
                      "  (log scale)")
        ax.set_xlabel("k = steps back from the prediction")
        ax.set_title(subtitle, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlim(0, window)
        ax.legend(loc="lower left", fontsize=9)
    text, font = readable(title or f"How far back does the gradient reach? Loss on the last "
                                   f"of {window} steps")
    fig.suptitle(text, fontsize=11, **font)
    fig.tight_layout()
    return _save(fig, path)
