"""Isolation: a subject given as a file runs in a child process, rnnlab's checks in this one.

User code is hostile until proven otherwise: it may call ``sys.exit`` or ``os._exit``,
hang, read stdin, print to file descriptor 1, change what it is given or shadow a library.
So the file is imported, and every call into it made, by a child process
(``child.py``); the search for examples (Hypothesis), the spec's numbers, every comparison,
the shrinking, the diagnosis and the report stay here, and nothing the child sends back
can run code here (it is read by :class:`_Unpickler`, which builds rnnlab's and NumPy's
types only). The boundary is the unit's two calls into user code:

    parent (this process)                          child (child.py)
    ghost unit: quantities(), expect(), ...        the real unit, the subject's functions
    ghost.observe(problem, grads)  --- problem --> unit.observe(problem, grads)
                                   <-- arrays ---  (float64 NumPy arrays, the subject's names)
    ghost.fd_setup(problem)        --------------> unit.fd_setup(problem): arrays, loss()
    loss() of perturbed arrays     --- arrays ---> the child's loss() on them  -> a float

A ghost is the unit's own class rebuilt here from its data (sizes, layout, names, dtype)
without the subject's objects, so the properties and the diagnosis run unchanged on it.

Every call into the subject has a time limit (``timeout``, seconds): before each call the
child writes the call's name and a counter to a small file, and this process, waiting
for an answer, restarts its clock whenever the counter moves; past the limit the child is
killed and the call is named. The child's address space is capped (``memory`` bytes, by
``resource.setrlimit``), its stdin is /dev/null, and its file descriptors 1 and 2 go to a
file that the report shows trimmed, as a note. Any way the subject ends the child is a
:class:`SubjectEnded`: the run fails, naming the call.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import select
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import NoConventionFitsError, SubjectError
from . import child as child_process
from .adapters import SubjectEnded
from .child import LABEL_BYTES, safe_loads
from .ghost import ghost
from .loader import split_target

DEFAULT_TIMEOUT = 10.0  # seconds per call into the subject (a correct one takes well under 1 s)
DEFAULT_MEMORY = 4 << 30  # bytes the child's address space may grow by once started
START_TIMEOUT = 120.0  # seconds for the child to start (Python, NumPy, PyTorch): rnnlab's own
ANSWER_SECONDS = 30.0  # from an answer's first byte to its last (a few KiB; milliseconds)
ANSWER_BYTES = 64 << 20  # the largest answer read (observations of tiny arrays: KiB)
SHOWN_LINES, SHOWN_CHARS = 3, 100  # of what the subject printed, in the report's note


# Bootstrap of a started child: Python puts the working directory first on sys.path for
# -c; a numpy.py or torch.py there must not be taken for the library, so that entry goes.
_BOOT = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
         "from rnnlab.testing.child import main; main()")


def check_target(path: Path) -> None:
    """Refuse a target that is not a regular ``.py`` file before anything reads it (a FIFO
    or /dev/zero would block or never end; a directory cannot be imported)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SubjectError(f"{path}: no such file") from None
    except OSError as exc:
        raise SubjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SubjectError(f"{path} is a directory; give the Python file to check")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise SubjectError(f"{path} is {kind}, not a Python file; give the .py file to check")
    if path.suffix != ".py":
        raise SubjectError(f"{path} does not end in .py; give the Python file to check")


class _Forked:
    """A forked child, with the part of ``subprocess.Popen`` that ``Child`` uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("rnnlab verify's child", timeout)
            time.sleep(0.005)
        return self.returncode


def _close_all_but(*keep: int) -> None:
    """Close every file descriptor from 3 up but ``keep`` (a forked child's inheritance)."""
    top = max(keep) + 1
    try:
        top = max(top, min(os.sysconf("SC_OPEN_MAX"), 1 << 20))
    except (ValueError, OSError):
        top = max(top, 4096)
    lo = 3
    for fd in sorted(keep):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, top)


def _fork(fd_in: int, fd_out: int, parent_fds: tuple, out_path: Path, call_path: Path,
          memory: int) -> _Forked:
    """Fork the child: its own session (the terminal's Ctrl-C reaches rnnlab's process
    only), stdin /dev/null, stdout and stderr to ``out_path``, then child.serve."""
    pid = os.fork()
    if pid:
        return _Forked(pid)
    status = 1
    try:  # the child: never returns into rnnlab's code
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for fd in parent_fds:
            os.close(fd)
        _close_all_but(fd_in, fd_out)  # rnnlab's open files are not the subject's to write
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(out_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        sys.stdin = open(0, "r", closefd=False)  # noqa: SIM115 (the child's whole life)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.path[:] = [p for p in sys.path if p not in ("", ".")]
        child_process.serve(fd_in, fd_out, str(call_path), memory, torch=False)
        status = 0
    except BaseException:  # noqa: BLE001: the child's own failure, said on its stderr
        traceback.print_exc()
    finally:
        os._exit(status)


class Child:
    """The child process that runs one subject file, and the pipe to it."""

    def __init__(self, timeout: float, memory: int, torch: bool):
        self.timeout = timeout
        self.ended: str | None = None  # why the child is gone, once it is
        self.dir = tempfile.TemporaryDirectory(prefix="rnnlab-verify-")
        d = Path(self.dir.name)
        self.out_path = d / "output"
        self.call_path = d / "call"
        self.call_path.write_bytes(b"\0" * LABEL_BYTES)
        self.call_fd = os.open(self.call_path, os.O_RDONLY)
        self.out_path.write_bytes(b"")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        if hasattr(os, "fork") and not torch:
            # a NumPy subject: a fork of this process, which has imported all the child
            # needs (a start costs milliseconds, not a second); PyTorch is not forked
            # (its thread pools are not fork-safe): a torch subject gets a fresh Python
            self.proc = _fork(to_child_r, from_child_w, (to_child_w, from_child_r),
                              self.out_path, self.call_path, int(memory))
        else:
            with open(self.out_path, "wb") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, str(to_child_r), str(from_child_w),
                     str(self.call_path), str(int(memory)), "1" if torch else "0"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                    pass_fds=(to_child_r, from_child_w), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.tx = Connection(to_child_w, readable=False)
        self.rx = from_child_r  # read here with a deadline per answer (_read_answer)

    def started(self) -> None:
        """Wait for the child to say it is ready (its imports done)."""
        self._wait(START_TIMEOUT, starting=True)

    # ---------------------------------------------------------------- the call file

    def _call(self) -> tuple[int, str]:
        raw = os.pread(self.call_fd, LABEL_BYTES, 0).rstrip(b"\0 ").decode("utf-8", "replace")
        seq, _, label = raw.partition("\t")
        return (int(seq) if seq.isdigit() else 0), label

    # ------------------------------------------------------------------- requests

    def request(self, msg: tuple):
        """Send ``msg``; the child's answer, or SubjectEnded when the child is gone."""
        if self.ended is not None:
            raise SubjectEnded(self.ended)
        try:
            self.tx.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            self._died()
        return self._wait(self.timeout)

    def _readable(self, seconds: float) -> bool:
        return bool(select.select([self.rx], [], [], seconds)[0])

    def _read_answer(self, starting: bool):
        """One answer: a 4-byte big-endian length, then a pickle (multiprocessing's
        framing, as the child's Connection writes it), each byte within ANSWER_SECONDS
        and no longer than ANSWER_BYTES: a subject that writes to the pipe itself cannot
        make this process wait forever or read without end."""
        deadline = time.monotonic() + ANSWER_SECONDS

        def read(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                if not self._readable(max(0.0, deadline - time.monotonic())):
                    self._end("the process running your code sent back an incomplete answer")
                chunk = os.read(self.rx, n - len(buf))
                if not chunk:
                    self._died(starting)
                buf += chunk
            return buf

        (size,) = struct.unpack("!i", read(4))
        if not 0 <= size <= ANSWER_BYTES:
            self._end("the process running your code sent back what rnnlab does not read")
        try:
            answer = safe_loads(read(size))
        except Exception as exc:  # noqa: BLE001 (anything unreadable on the pipe)
            self._end(f"the process running your code sent back what rnnlab does not read "
                      f"({type(exc).__name__})")
        if not (isinstance(answer, tuple) and answer and isinstance(answer[0], str)):
            self._end("the process running your code sent back what rnnlab does not read")
        return answer

    def _wait(self, limit: float, starting: bool = False):
        seq, _ = self._call()
        start = time.monotonic()
        while True:
            if self._readable(0.1):
                answer = self._read_answer(starting)
                if answer[0] == "ended":
                    self._end(answer[1])
                return answer
            if self.proc.poll() is not None and not self._readable(0):
                self._died(starting)
            now_seq, label = self._call()
            if now_seq != seq:  # a new call into the subject began: its own clock
                seq, start = now_seq, time.monotonic()
            elif time.monotonic() - start > limit:
                what = "starting the process that runs your code" if starting else (label or "a call")
                self._end(f"{what} did not return within {limit:g} s (the time limit of a call "
                          "into your code: --timeout)")

    def _died(self, starting: bool = False):
        _, label = self._call()
        what = label or ("starting the process that runs your code" if starting else "your code")
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # alive, but its end of the pipe is closed
            self._end(f"{what} closed the pipe from the process running it to rnnlab")
        if rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
            reason = f"{what} ended the process running it: killed by {sig}"
        else:
            reason = (f"{what} ended the process running it with exit status {rc} "
                      f"(os._exit({rc}), or a crash)")
        tail = [ln for ln in self.output().splitlines() if ln.strip()][-1:]
        if tail and rc != 0:
            reason += f"; its last output: {tail[0].strip()[:SHOWN_CHARS]}"
        self._end(reason)

    def _end(self, reason: str):
        """The child is done for ``reason``: kill it (and what it started), raise SubjectEnded."""
        self.ended = reason
        self.kill()
        raise SubjectEnded(reason)

    def stop(self, reason: str):
        """End the child for ``reason`` (a SubjectEnded)."""
        self._end(reason)

    # ---------------------------------------------------------------------- close

    def output(self) -> str:
        try:
            return self.out_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """End the child and anything it started (its own session), then reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        if self.ended is None and self.proc.poll() is None:
            try:
                self.tx.send_bytes(pickle.dumps(("close",)))
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.tx.close()
        os.close(self.rx)
        os.close(self.call_fd)
        self.dir.cleanup()


class IsolatedLoaded:
    """What ``loader.load`` returns, for a subject running in a child: ghost units whose
    ``observe`` and ``fd_setup`` ask the child."""

    def __init__(self, child: Child, label: str, found: list, notes: list, units: list):
        self.child, self.label, self.found, self.notes, self.units = child, label, found, notes, units
        self.printed = ""

    @property
    def ended(self) -> str | None:
        return self.child.ended

    def close(self) -> None:
        self.printed = self.child.output()
        self.child.close()


def printed_note(text: str) -> str | None:
    """'your code printed 12 lines; the first 3: ...', trimmed, or None for no output."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    shown = " | ".join(repr(ln[:SHOWN_CHARS] + ("..." if len(ln) > SHOWN_CHARS else ""))
                       for ln in lines[:SHOWN_LINES])
    first = f"; the first {SHOWN_LINES}" if len(lines) > SHOWN_LINES else ""
    return (f"your code printed {len(lines)} line{'s' if len(lines) > 1 else ''} (kept out of "
            f"this report{first}): {shown}")


def load(target, convention: str | None, cell: str | None, timeout: float = DEFAULT_TIMEOUT,
         memory: int = DEFAULT_MEMORY) -> IsolatedLoaded:
    """Start a child for the file ``target`` ('FILE[:NAME]'), load the subject there and
    return its ghost units. Usage problems are SubjectErrors (as in-process); the subject
    ending the child while it is imported or probed is a SubjectEnded."""
    path, _ = split_target(str(target))
    check_target(path)  # the convention and the cell are checked by the loader, in the child
    try:
        torch = b"torch" in path.read_bytes() and importlib.util.find_spec("torch") is not None
    except OSError as exc:
        raise SubjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    child = Child(timeout, memory, torch)
    try:
        child.started()
        reply = child.request(("load", str(target), convention, cell))
        if reply[0] == "error" and len(reply) == 2 and isinstance(reply[1], str):
            raise SubjectError(reply[1])
        if (reply[0] == "nofit" and len(reply) == 3 and isinstance(reply[1], str)
                and isinstance(reply[2], list) and all(
                    isinstance(t, tuple) and len(t) == 2 and all(isinstance(x, str) for x in t)
                    for t in reply[2])):
            raise NoConventionFitsError(reply[1], reply[2])

        def strings(v) -> bool:
            return isinstance(v, list) and all(isinstance(x, str) for x in v)
        if not (reply[0] == "loaded" and len(reply) == 5 and isinstance(reply[1], str)
                and strings(reply[2]) and strings(reply[3]) and isinstance(reply[4], list)
                and all(isinstance(u, tuple) and len(u) == 2 for u in reply[4])):
            child.stop("the process running your code sent back what rnnlab does not read")
        _, label, found, notes, specs = reply
        units = [ghost(cls, state, k, child) for k, (cls, state) in enumerate(specs)]
    except SubjectEnded as end:
        end.printed = child.output()
        child.close()
        raise
    except BaseException:
        child.close()
        raise
    return IsolatedLoaded(child, label, found, notes, units)
