"""The child process that runs a subject file for ``isolation.py`` (rnnlab's process).

Forked from rnnlab's process (a NumPy subject), or started as ``python -c <bootstrap>
FD_IN FD_OUT CALL_FILE MEMORY TORCH`` (a torch subject, or no fork): it caps its
address space at MEMORY bytes, imports NumPy (and PyTorch when TORCH is 1) before the
subject's directory goes on ``sys.path`` (so a numpy.py or torch.py beside the subject is
not taken for the library), then answers requests on FD_IN with answers on FD_OUT:

    ("load", target, convention, cell)  -> ("loaded", label, found, notes, [(class, data)])
    ("observe", k, problem, grads)      -> ("obs", {name: float64 array}, mutated)
    ("observe_many", k, problems, grads)      -> ("obs", [{name: array}], mutated)
    ("observe_chain", k, problem, bounds, grads) -> ("obs", [{name: array}], mutated)
    ("fd_setup", k, problem)            -> ("fd", {name: (array, Quantity)} or None)
    ("fd_loss", k, {name: array})       -> ("loss", float)
    ("close",)                          -> exits

A failure of the subject is ("raised", line, mutated); a usage problem ("error", line), or
("nofit", line, [(convention, why not)]) for a file that fits no convention;
the subject ending the program (``sys.exit``, ``KeyboardInterrupt``, another
BaseException) is ("ended", line), after which the child exits. Before every call into
the subject the call's name and a counter go to CALL_FILE, which rnnlab's process reads
to time each call and to name the one that hangs or ends the child.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import resource
import sys
from multiprocessing.connection import Connection

import numpy  # noqa: F401: imported before the subject's directory is on sys.path

from ..errors import NoConventionFitsError, SubjectError
from . import adapters
from .adapters import SubjectRaised, Unit, exc_text, perturbed_losses
from .loader import load, split_target

LABEL_BYTES = 512  # the call file: "<counter>\t<name of the call>", padded
OUTPUT_BYTES = 64 << 20  # the most the child may write to a file (its printed output included)
# Each unit goes to rnnlab's process without the subject's objects (they stay here); what
# is left is rnnlab's data: sizes, layout, names, dtype, notes.
SUBJECT_SIDE = ("fn", "forward", "backward", "module", "factory", "modules", "proto",
                "last_raw", "torch_dtype", "mutated")


class _Unpickler(pickle.Unpickler):
    """Reads what a child sends back building only rnnlab's data types, NumPy arrays and
    plain data: a subject that writes to the pipe itself cannot make rnnlab's process run
    code (no function, no class of its own, no constructor with effects)."""

    SAFE_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "slice", "complex", "range",
                     "bytearray", "object"}

    def find_class(self, module, name):
        ok = ((module == "builtins" and name in self.SAFE_BUILTINS)
              or (module.split(".")[0] == "numpy" and (
                  name in ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer")
                  or name.endswith("DType")))
              or (module == "pathlib" and name in ("Path", "PosixPath", "WindowsPath",
                                                   "PurePosixPath", "PureWindowsPath"))
              or (module == "collections" and name == "OrderedDict")
              or (module == "copyreg" and name in ("_reconstructor", "__newobj__")))
        if ok:
            return super().find_class(module, name)
        if module.startswith("rnnlab.testing.") and module.count(".") == 2:
            obj = super().find_class(module, name)
            # a unit's class (rebuilt without __init__) or one of rnnlab's dataclasses
            if isinstance(obj, type) and (issubclass(obj, Unit) or dataclasses.is_dataclass(obj)):
                return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not a type rnnlab reads back")


def safe_loads(data: bytes):
    """pickle.loads of what a child sent, building only the types :class:`_Unpickler` allows."""
    return _Unpickler(io.BytesIO(data)).load()


def _readable(value) -> bool:
    """Does ``value`` cross to rnnlab's process (pickled, and read back by safe_loads)?"""
    try:
        safe_loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001: the subject's objects, whatever they raise
        return False
    return True


class Server:
    def __init__(self, rx: Connection, tx: Connection, call_fd: int):
        self.rx, self.tx, self.call_fd = rx, tx, call_fd
        self.seq = 0
        self.label = ""
        self.loaded = None
        self.fd = {}  # unit index -> (arrays, loss) of its last fd_setup
        self.limit = sys.getrecursionlimit()

    def mark(self, label: str) -> None:
        """Say which call into the subject begins (the CALL_HOOK)."""
        self.seq += 1
        self.label = label
        raw = f"{self.seq}\t{label}".encode("utf-8", "replace")[:LABEL_BYTES]
        os.pwrite(self.call_fd, raw.ljust(LABEL_BYTES, b"\0"), 0)

    def send(self, msg) -> None:
        self.tx.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))

    def handle(self, msg):
        op = msg[0]
        if op == "load":
            _, target, convention, cell = msg
            path, _ = split_target(target)
            self.mark(f"importing {path.name}")
            self.loaded = load(target, convention, cell)
            specs = []
            for u in self.loaded.units:
                # what holds the subject's objects stays here; the rest is rnnlab's data,
                # for the class rnnlab's process rebuilds (a torch unit's torch-free base)
                state = {k: v for k, v in vars(u).items()
                         if k not in SUBJECT_SIDE and _readable(v)}
                state["kind"] = u.kind
                specs.append((getattr(type(u), "GHOST", type(u)), state))
            return ("loaded", self.loaded.label, self.loaded.found, self.loaded.notes, specs)
        unit = self.loaded.units[msg[1]]
        if op == "observe":
            _, _, p, grads = msg
            unit.mutated = []
            obs = unit.observe(p, grads)
            return ("obs", obs, unit.mutated)
        if op == "observe_many":
            _, _, problems, grads = msg
            unit.mutated = []
            return ("obs", unit.observe_many(problems, grads), unit.mutated)
        if op == "observe_chain":
            _, _, p, bounds, grads = msg
            unit.mutated = []
            return ("obs", unit.observe_chain(p, bounds, grads), unit.mutated)
        if op == "fd_setup":
            unit.mutated = []
            r = unit.fd_setup(msg[2])
            self.fd[msg[1]] = r
            if r is None:
                return ("fd", None)
            arrays, _ = r
            return ("fd", {k: (a.copy(), q) for k, (a, q) in arrays.items()})
        if op == "fd_many":
            arrays, loss = self.fd[msg[1]]
            return ("losses", perturbed_losses(arrays, lambda: float(loss()), msg[2]))
        if op == "fd_loss":
            arrays, loss = self.fd[msg[1]]
            for k, a in msg[2].items():
                arrays[k][0][...] = a
            return ("loss", float(loss()))
        raise ValueError(f"unknown request {op!r}")

    def serve(self) -> None:
        while True:
            try:
                msg = pickle.loads(self.rx.recv_bytes())
            except EOFError:
                return
            if msg[0] == "close":
                return
            ended = False
            try:
                reply = self.handle(msg)
            except SubjectRaised as exc:
                unit = self.loaded.units[msg[1]] if self.loaded and msg[0] != "load" else None
                reply = ("raised", exc.line, getattr(unit, "mutated", []))
            except NoConventionFitsError as exc:  # each convention's reason, for the command line
                reply = ("nofit", str(exc), [(str(c), str(why)) for c, why in exc.tried])
            except SubjectError as exc:
                reply = ("error", str(exc))
            except SystemExit as exc:
                reply, ended = ("ended", f"{self.label} called sys.exit({exc.code!r})"), True
            except KeyboardInterrupt:
                reply, ended = ("ended", f"{self.label} raised KeyboardInterrupt"), True
            except Exception as exc:  # noqa: BLE001 (rnnlab's code choked on what the subject did)
                reply, ended = ("ended", (f"after {self.label}, the process running your code "
                                          f"failed: {exc_text(exc)[:200]}")), True
            except BaseException as exc:  # noqa: BLE001 (GeneratorExit, or the subject's own)
                reply, ended = ("ended", (f"{self.label} raised {exc_text(exc)[:200]} (a "
                                          "BaseException, which ends a program)")), True
            sys.setrecursionlimit(self.limit)  # the subject may have lowered it
            _flush()
            self.send(reply)
            if ended:
                return


def _limit(which: int, value: int) -> None:
    """Lower the soft limit ``which`` to ``value`` (never above the hard limit); a system
    that does not enforce it (macOS and RLIMIT_AS) leaves it as it is."""
    try:
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux's VmSize; 0 where unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def main() -> None:
    """A started child (``python -c``): its arguments, then :func:`serve`."""
    fd_in, fd_out, call_file, memory, torch = sys.argv[1:6]
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    serve(int(fd_in), int(fd_out), call_file, int(memory), torch == "1")
    _flush()
    os._exit(0)  # threads the subject started do not keep the child alive


def serve(fd_in: int, fd_out: int, call_file: str, memory: int, torch: bool) -> None:
    """Cap the memory, import what must not be shadowed, answer requests until "close"."""
    if memory > 0:  # the subject may map ``memory`` bytes more than the child has now
        _limit(resource.RLIMIT_AS, _address_space() + memory)
    # what it prints goes to a file: past OUTPUT_BYTES a write fails (EFBIG; Python ignores
    # SIGXFSZ), so a print loop ends before the disk is full
    _limit(resource.RLIMIT_FSIZE, OUTPUT_BYTES)
    if torch:
        import torch as _torch  # before the subject's directory is on sys.path

        _torch.set_num_threads(1)  # the tensors are tiny; rnnlab's process has the other core
    call_fd = os.open(call_file, os.O_WRONLY)
    server = Server(Connection(fd_in, writable=False), Connection(fd_out, readable=False), call_fd)
    adapters.CALL_HOOK = server.mark
    adapters.SWALLOW_PRINTS = False
    server.send(("ready",))
    server.serve()
    _flush()


def _flush() -> None:
    """Flush what the subject printed; its streams may be closed, replaced or full."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 (OSError: the output cap; ValueError: closed; ...)
            pass
