"""The rnnlab command run inside a test: ``cli.main`` with argparse's exits caught."""

from __future__ import annotations

from rnnlab import cli
from rnnlab.checkpoint import load_checkpoint

TIMING = ("tokens_per_s", "seconds")  # wall-clock entries: the only ones two runs may differ in


def run(capsys, *argv) -> tuple[int, str, list]:
    """cli.main(argv) -> (exit status, stdout, stderr lines); argparse's exits included."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def numbers(path) -> list:
    """The per-epoch history of a run without its wall-clock entries."""
    return [{k: v for k, v in h.items() if k not in TIMING} for h in load_checkpoint(path).history]
