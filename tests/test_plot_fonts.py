"""Plots of a corpus with CJK characters in its name: no font warning, no box.

matplotlib's default font (DejaVu Sans) has no CJK glyph. ``rnnlab.plot.readable``
either adds an installed font that has the glyphs as a fallback, or escapes the
characters; either way drawing the PNG must print nothing.
"""

from __future__ import annotations

import logging
import warnings

import pytest

pytest.importorskip("matplotlib")

from rnnlab import cli, plot  # noqa: E402

HISTORY = [{"epoch": e, "train_ppl": 20.0 / e, "val_ppl": 22.0 / e} for e in (1, 2, 3)]


def drawn_quietly(draw, caplog) -> None:
    """Run ``draw`` and fail on any warning or log record it produces."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG - 1):
        warnings.simplefilter("always")
        draw()
    messages = [str(w.message) for w in caught] + [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages == [], messages


def test_a_cjk_title_draws_without_a_warning(tmp_path, caplog):
    title = "lstm, H=256, sgd lr=1, 时间机器.txt"
    text, font = plot.readable(title)
    if font:  # a CJK font is installed: the title is kept, that font fills in
        assert text == title and font["fontfamily"][1] != font["fontfamily"][0]
        assert "Last Resort" not in font["fontfamily"][1]  # its glyphs are boxes
    else:  # none: the characters are escaped, the rest kept
        assert text == "lstm, H=256, sgd lr=1, \\u65f6\\u95f4\\u673a\\u5668.txt"
    drawn_quietly(lambda: plot.plot_perplexity(HISTORY, tmp_path / "p.png", title=title), caplog)
    drawn_quietly(lambda: plot.plot_grad_norms([0.5, 1, 1.5, 2], [0.3, 2.0, 0.5, 0.4], 1.0,
                                               tmp_path / "g.png", title=title), caplog)
    assert plot.readable("plain ascii, θ and ×") == ("plain ascii, θ and ×", {})


def test_an_installed_font_with_the_glyphs_is_used_as_a_fallback(tmp_path, caplog):
    """The same path a CJK font takes, shown with a glyph matplotlib's own STIX fonts have
    and DejaVu Sans lacks (no CJK font need be installed to test it)."""
    _, path = plot._default_font()
    have = plot._codepoints(path)
    stix = [e.fname for e in __import__("matplotlib").font_manager.fontManager.ttflist
            if e.name == "STIXGeneral" and e.style == "normal"]
    extra = sorted(c for f in stix for c in plot._codepoints(f)
                   if c not in have and chr(c).isprintable() and not chr(c).isspace()
                   and __import__("unicodedata").category(chr(c)).startswith(("S", "L")))
    if not extra:
        pytest.skip("no glyph that STIXGeneral has and the default font lacks")
    ch = chr(extra[0])
    text, font = plot.readable(f"corpus {ch}.txt")
    assert text == f"corpus {ch}.txt" and font["fontfamily"][0] == "DejaVu Sans"
    assert ord(ch) in plot._codepoints(
        __import__("matplotlib").font_manager.findfont(font["fontfamily"][1]))
    drawn_quietly(lambda: plot.plot_perplexity(HISTORY, tmp_path / "p.png",
                                               title=f"corpus {ch}.txt"), caplog)


def test_training_on_a_cjk_corpus_prints_no_font_warning(tmp_path, capsys, caplog):
    corpus = tmp_path / "时间机器.txt"
    corpus.write_text("时间是一切的开始。时间过得很快，时间就是生命。\n" * 30, encoding="utf-8")
    argv = ["train", "--corpus", str(corpus), "--hidden", "8", "--epochs", "2", "--batch-size",
            "4", "--num-steps", "5", "--no-progress", "--num-preds", "3", "--out",
            str(tmp_path / "run")]

    def train():
        assert cli.main(argv) == 0

    drawn_quietly(train, caplog)
    err = capsys.readouterr().err
    assert err == "" and (tmp_path / "run" / "perplexity.png").stat().st_size > 1000
