"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

A scheduler's time limit or ``kill`` (SIGTERM), ``timeout``, or a closed terminal or
dropped ssh session (SIGHUP) would otherwise end ``rnnlab train`` without a word. Here
each raises :class:`Terminated`, a ``KeyboardInterrupt``, at the next Python bytecode:
the step in progress is abandoned (a matrix product already running finishes first),
an atomic checkpoint save in progress is rolled back (the previous checkpoint stays),
and the command prints what Ctrl-C prints, the last checkpoint and the resume line.

The exit status is what a shell reports for a process killed by the signal, 128 plus
its number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP. A second
SIGTERM or SIGHUP while the command winds down is ignored (SIGKILL still ends it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))  # Windows has no SIGHUP


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C, raised where the program was."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def interrupt_status(exc: BaseException) -> int:
    """128 + the signal's number: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def describe(exc: BaseException) -> str:
    """"interrupted" for Ctrl-C, "stopped by SIGTERM" for the others."""
    return f"stopped by {exc.name}" if isinstance(exc, Terminated) else "interrupted"


@contextmanager
def stop_signals_as_interrupts():
    """Inside the block, SIGTERM and SIGHUP raise Terminated; the previous handlers come
    back after it (the command also runs inside tests, in-process)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {}

    def handler(signum, frame):
        for s in STOP_SIGNALS:  # winding down is not interrupted again
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    for s in STOP_SIGNALS:
        previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def say(text: str, file=None) -> None:
    """Print, where the terminal may be gone (SIGHUP): writing to it then fails with EIO,
    and a failed flush at exit would turn the exit status into 120."""
    file = file or sys.stderr
    try:
        print(text, file=file, flush=True)
    except OSError:
        pass


def detach_from_lost_terminal() -> None:
    """After SIGHUP: point stdout and stderr at /dev/null so nothing fails at exit."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
