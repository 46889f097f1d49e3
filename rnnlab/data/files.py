"""Files: reading and checking UTF-8 text files, and the *Time Machine* corpus on disk
(local lookup, download, SHA-1 check, cache)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
import urllib.error
import urllib.request

from rnnlab.errors import ChecksumError, ConfigError, CorpusError, CorpusNotFoundError

TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
TIME_MACHINE_FILE = "timemachine.txt"
_CHUNK = 1 << 16  # bytes per read when hashing or downloading


def read_text(path) -> str:
    """Contents of a UTF-8 text file, without a leading byte-order mark (U+FEFF);
    ``CorpusError`` naming the path if the file is missing, a directory, a pipe or
    device, unreadable, binary (NUL bytes), not UTF-8, or blank."""
    if isinstance(path, str) and not path.strip():  # Path("") would be ".", a directory
        raise CorpusError(f"corpus path is {path!r}, an empty name: give a UTF-8 text file, or "
                          "'timemachine' for d2l's corpus")
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"corpus path must be a str or os.PathLike, got {type(path).__name__}")
    path = pathlib.Path(path)
    name = repr(str(path))
    if path.exists() and not path.is_file() and not path.is_dir():
        # a pipe would block and /dev/zero never end: refuse before reading
        raise CorpusError(f"corpus path {name} is not a regular file (a device, pipe or socket)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusNotFoundError(f"corpus file {name} does not exist") from None
    except OSError as e:
        if path.is_dir():  # IsADirectoryError on POSIX, PermissionError on Windows
            raise CorpusError(f"corpus path {name} is a directory, not a text file") from None
        if isinstance(e, PermissionError):
            raise CorpusError(f"corpus file {name} is not readable: {e.strerror}") from None
        raise CorpusError(f"cannot read corpus file {name}: {e}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"corpus file {name} looks binary: it has a NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"corpus file {name} is not valid UTF-8: byte {data[e.start]:#04x} "
            f"at offset {e.start} ({e.reason})"
        ) from None
    if text.startswith("\ufeff"):  # a byte-order mark (Notepad writes one): not a character
        text = text[1:]
    if not text.strip():
        what = "empty" if not text else f"whitespace only ({len(data)} bytes)"
        raise CorpusError(f"corpus file {name} is {what}")
    return text


def _sha1(path: pathlib.Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/rnnlab``, or ``~/.cache/rnnlab``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache"
    return base / "rnnlab"


def download(url: str, dest, sha1: str, timeout: float = 60) -> pathlib.Path:
    """Fetch ``url`` to ``dest`` atomically: write a temporary file beside ``dest``, check
    its SHA-1, fsync, ``os.replace``. On any failure no file is left behind."""
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = pathlib.Path(tmp_name)
    try:
        h = hashlib.sha1()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise CorpusError(f"could not download {url!r} to {str(dest)!r}: {e}") from e
            actual = h.hexdigest()
            if actual != sha1:
                raise ChecksumError(
                    f"download of {url!r} has SHA-1 {actual}, expected {sha1}; not saved"
                )
            out.flush()
            os.fsync(out.fileno())  # the bytes reach the disk before the name does
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest


def fsync_dir(directory) -> None:
    """Make a rename in ``directory`` durable (POSIX): fsync the directory itself.

    Some file systems (and Windows) cannot fsync a directory; skipping is harmless there.
    """
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _download_time_machine(cache: pathlib.Path) -> pathlib.Path:
    return download(TIME_MACHINE_URL, cache / TIME_MACHINE_FILE, TIME_MACHINE_SHA1)


def find_time_machine(data_dir=None, download: bool = True) -> pathlib.Path:
    """Path of a verified ``timemachine.txt``: looked up in ``data_dir`` (or, if not given,
    ``$RNNLAB_DATA``), then in the user cache; else downloaded into the cache.

    ``data_dir`` / ``RNNLAB_DATA`` is the folder that holds ``timemachine.txt``; the path
    of the file itself (under any name) is accepted too. Whatever is found must have d2l's
    SHA-1."""
    fetch = download  # the parameter hides the function of that name
    given, origin = None, ""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)) or data_dir == "":
            raise ConfigError(f"data_dir must be a folder path (str or pathlib.Path) or None, "
                              f"got {data_dir!r}")
        given, origin = pathlib.Path(data_dir), "data_dir"
    elif os.environ.get("RNNLAB_DATA"):
        given, origin = pathlib.Path(os.environ["RNNLAB_DATA"]), "RNNLAB_DATA"
    cache = _cache_dir()
    candidates: list[pathlib.Path] = []
    if given is not None:
        candidates.append(given if given.is_file() else given / TIME_MACHINE_FILE)
    candidates.append(cache / TIME_MACHINE_FILE)
    for path in candidates:
        if path.is_file():
            actual = _sha1(path)
            if actual != TIME_MACHINE_SHA1:
                raise ChecksumError(
                    f"{str(path)!r} has SHA-1 {actual}, expected {TIME_MACHINE_SHA1}; "
                    f"delete it or replace it with the file from {TIME_MACHINE_URL}"
                )
            return path
    looked = ", ".join(repr(str(p)) for p in candidates)
    note = ""
    if given is not None and not given.exists():
        note = f" ({origin}={str(given)!r} does not exist)"
    elif given is not None:
        note = f" ({origin}={str(given)!r} is a folder without {TIME_MACHINE_FILE})"
    recipe = (f"{TIME_MACHINE_FILE} not found; looked in {looked}{note}. Offline, copy "
              f"{TIME_MACHINE_FILE} into {str(cache)!r}, or set RNNLAB_DATA to the folder that "
              "holds it (or to the file itself)")
    if not fetch:
        raise CorpusNotFoundError(f"{recipe}; download=False")
    try:
        return _download_time_machine(cache)
    except ChecksumError:
        raise
    except CorpusError as e:
        raise CorpusNotFoundError(f"{recipe}; the download failed too: {e}") from e
