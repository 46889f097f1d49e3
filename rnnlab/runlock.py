"""One writer per run directory: an advisory lock the operating system releases.

``rnnlab train`` writes ``checkpoint.safetensors`` and the plots in its ``--out``. Two
runs writing the same directory would each replace the other's checkpoint, and the
work of one would be silently gone; a ``--resume`` started while the run still trains
would read a checkpoint that is about to be replaced. So a run holds an exclusive
``flock`` on ``<out>/.rnnlab.lock`` from before it reads the checkpoint until it exits.

The lock belongs to the open file, not to the file's existence: when the process ends,
however it ends (SIGKILL and power cuts included), the kernel drops it, so a killed run
never leaves a stale lock to clean up by hand. The file itself stays, holding the pid
of the last run that locked it; the pid is only reported, never trusted (a pid in the
file means nothing unless the lock is held).

POSIX ``flock`` is advisory: it binds rnnlab runs to each other, not other programs.
On systems without ``fcntl`` (Windows) the lock is a no-op.

The lock file is opened without following a symbolic link (``O_NOFOLLOW``) and must be a
regular file with one name: a link planted at ``.rnnlab.lock`` (or a hard link to a
file of the user's) would otherwise make rnnlab truncate the file it points to and write
a pid into it. Such a path, or a directory there, is refused with one line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import ConfigError

LOCK_NAME = ".rnnlab.lock"


class RunDirLocked(ConfigError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """An exclusive, non-blocking lock on a run directory (a context manager).

    ``acquire`` raises :class:`RunDirLocked` naming the directory and the holder's pid
    when another process holds it. ``release`` (or the process ending) frees it.
    """

    def __init__(self, directory, what: str = "--out"):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what  # how the message names the directory ("--out")
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # no flock on this system: one writer is the user's business
            return self
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise RunDirLocked(
                f"{self.what} {str(self.directory)!r} is in use: {who} is training into it "
                "(a second writer would overwrite its checkpoint); wait for it to finish, "
                "stop it, or choose another --out") from None
        except OSError:  # a filesystem without flock (some network mounts): go on unlocked
            os.close(fd)
            return self
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _open(self) -> int:
        """The lock file's descriptor: never through a link, never a file of another name."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise self._refused(exc.errno) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            os.close(fd)
            raise self._refused(None if stat.S_ISREG(info.st_mode) else errno.EISDIR)
        return fd

    def _refused(self, code) -> ConfigError:
        """One line for a lock path rnnlab will not write through."""
        try:
            kind = os.lstat(self.path).st_mode
        except OSError:
            kind = 0
        what = ("a symbolic link" if stat.S_ISLNK(kind) or code == errno.ELOOP else
                "a directory" if stat.S_ISDIR(kind) or code == errno.EISDIR else
                "a file with other names (a hard link)" if stat.S_ISREG(kind) and code is None
                else None)
        where = f"{self.what} {str(self.directory)!r}"
        if what is None:  # no permission, a read-only folder...
            return ConfigError(f"{where}: cannot open its lock file {LOCK_NAME} "
                               f"({os.strerror(code) if code else 'not a regular file'})")
        return ConfigError(f"{where}: {LOCK_NAME} is {what}, not the lock file rnnlab makes; "
                           "rnnlab never writes through it: remove it, or choose another --out")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, or None if it has not written it yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
