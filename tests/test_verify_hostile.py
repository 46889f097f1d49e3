"""``rnnlab verify`` on hostile subjects: code that exits, hangs, kills itself, reads stdin,
prints to file descriptor 1, changes what it is given, returns complex numbers or strings,
shadows a library, plays with the recursion limit. Each ends with a nonzero exit and a
named reason within its time limit, never a traceback; correct subjects still pass.

The subject runs in a child process (rnnlab/testing/isolation.py); these tests run the
command in this process (``cli.main``), so each costs one child, with a short --timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab import cli
from rnnlab.cli.verify import table
from rnnlab.testing import verify

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "verify"

# one RNN step, CS231n's convention: the smallest subject that runs every applicable property
STEP = '''
import numpy as np

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    {before}
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    {after}
    return {result}, (x, prev_h, Wx, Wh, next_h)

def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
'''
TIMEOUT = 1.5  # seconds per call in these tests; a correct step takes microseconds
LIMIT = 25.0  # seconds a whole hostile run may take here (the child's start included)


def step(tmp_path: Path, top: str = "", before: str = "pass", after: str = "pass",
         result: str = "next_h", name: str = "sol.py") -> Path:
    f = tmp_path / name
    f.write_text(top + STEP.format(before=before, after=after, result=result))
    return f


def run(capsys, *argv) -> tuple[int, str, str, float]:
    """``rnnlab verify ...`` in this process: (exit status, stdout, stderr, seconds)."""
    capsys.readouterr()
    start = time.monotonic()
    status = cli.main(["verify", *map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return status, out, err, time.monotonic() - start


def fails(capsys, target, *reason, convention="cs231n", extra=()):
    """The run fails (exit 1) within LIMIT, says ``reason`` (every part) and prints no traceback."""
    status, out, err, seconds = run(capsys, target, "--convention", convention, "--max-examples", "2",
                                    "--timeout", TIMEOUT, *extra)
    text = out + err
    assert status == 1, text
    assert seconds < LIMIT, f"took {seconds:.1f} s"
    assert "Traceback" not in text, text
    for part in reason:
        assert part in text, f"{part!r} not in:\n{text}"
    return text


# ----------------------------------------------------------------- ending the child

@pytest.mark.parametrize("code,reason", [
    ("sys.exit(0)", "rnn_step_forward called sys.exit(0)"),
    ("os._exit(0)", "rnn_step_forward ended the process running it with exit status 0"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "rnn_step_forward ended the process running it: killed by SIGKILL"),
    ("os.kill(os.getpid(), signal.SIGTERM)", "killed by SIGTERM"),
    ("raise KeyboardInterrupt", "rnn_step_forward raised KeyboardInterrupt"),
    ("raise Boom('no')", "rnn_step_forward raised Boom: no (a BaseException"),
], ids=["sys.exit", "os._exit", "SIGKILL", "SIGTERM", "KeyboardInterrupt", "BaseException"])
def test_a_subject_that_ends_its_process_fails_naming_the_call(tmp_path, capsys, code, reason):
    top = "import os, signal, sys\nclass Boom(BaseException):\n    pass\n"
    f = step(tmp_path, top, after=code)
    text = fails(capsys, f, reason, "FAIL: ")
    assert "PASS: every property holds" not in text


def test_ending_the_process_at_import_fails_too(tmp_path, capsys):
    for top, reason in [("import os\nos._exit(0)\n", "importing sol.py ended the process"),
                        ("class Boom(BaseException):\n    pass\nraise Boom()\n",
                         "importing sol.py raised Boom")]:
        fails(capsys, step(tmp_path, top), reason)


@pytest.mark.parametrize("where", ["forward", "import"])
def test_a_hang_is_stopped_at_the_time_limit_and_named(tmp_path, capsys, where):
    if where == "forward":
        f = step(tmp_path, "import time\n", before="time.sleep(3600)")
        reason = "rnn_step_forward did not return within 1.5 s"
    else:
        f = step(tmp_path, "while True:\n    pass\n")
        reason = "importing sol.py did not return within 1.5 s"
    text = fails(capsys, f, reason, "--timeout")
    assert "--timeout" in text


def test_reading_stdin_does_not_hang(tmp_path):
    """The command's own stdin an open pipe that never ends (a terminal, say): the subject
    reads /dev/null instead, so input() fails at once rather than at the time limit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with subprocess.Popen([sys.executable, "-m", "rnnlab", "verify", str(step(tmp_path, before="input()")),
                           "--convention", "cs231n", "--max-examples", "2", "--timeout", "30",
                           "--no-progress"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env) as proc:
        out = proc.stdout.read()  # until the run ends; stdin stays open all along
        err = proc.stderr.read()
        proc.wait(timeout=60)
    assert proc.returncode == 1 and "rnn_step_forward raised EOFError" in out, out + err


def test_a_thread_left_running_does_not_keep_the_run_alive(tmp_path, capsys):
    top = ("import threading, time\n"
           "threading.Thread(target=time.sleep, args=(3600,)).start()\n")
    status, out, err, seconds = run(capsys, step(tmp_path, top), "--convention", "cs231n",
                                    "--max-examples", "2")
    assert status == 0 and seconds < LIMIT, out + err


@pytest.mark.parametrize("headroom", [0, 8])
def test_the_recursion_limit_lowered_at_import_fails_with_a_reason(tmp_path, capsys, headroom):
    """Too low to set (a one-line import error), or set just above the import's own depth
    (rnnlab's code in the child runs out of stack: a named failure): never a traceback."""
    top = f"import sys, inspect\nsys.setrecursionlimit(len(inspect.stack()) + {headroom})\n"
    status, out, err, seconds = run(capsys, step(tmp_path, top), "--convention", "cs231n",
                                    "--max-examples", "2", "--timeout", TIMEOUT)
    assert status in (1, 2) and seconds < LIMIT, out + err
    assert "RecursionError" in out + err and "Traceback" not in out + err, out + err


def test_a_print_flood_stops_at_the_output_cap(tmp_path, capsys):
    """Printing without end fills the output file up to its cap (64 MiB), then the write
    fails: the subject's error, not a full disk."""
    fails(capsys, step(tmp_path, "import sys\n", before="while True: sys.stdout.write('x' * 65536)"),
          "rnn_step_forward raised OSError", "File too large")


def test_memory_past_the_cap_is_the_subjects_error(tmp_path, capsys):
    """6 GiB asked for (np.empty: never touched, so harmless where it is granted) is past
    the child's cap of 4 GiB more than it starts with: MemoryError, the subject's failure."""
    f = step(tmp_path, before="big = np.empty((6 << 30,), dtype=np.uint8)")
    fails(capsys, f, "rnn_step_forward raised MemoryError")


# -------------------------------------------------------------- what it gives back

@pytest.mark.parametrize("result,reason", [
    ("next_h.astype(complex)", "next_h is complex (complex128)"),
    ("'h'", "next_h is a string ('h')"),
    ("np.array([object(), 1], dtype=object)", "next_h is an array of Python objects"),
], ids=["complex", "str", "object"])
def test_complex_string_and_object_results_are_refused_by_name(tmp_path, capsys, result, reason):
    fails(capsys, step(tmp_path, result=result), reason)


@pytest.mark.parametrize("code,name", [("x[...] = 0", "x"), ("Wx *= 2", "Wx"), ("b += 1", "b")])
def test_arrays_changed_in_place_are_reported(tmp_path, capsys, code, name):
    text = fails(capsys, step(tmp_path, after=code), f"- {name} was changed in place by rnn_step_forward",
                 "FAIL  unchanged")
    # the results themselves are right: only the property that looks at the inputs fails
    assert "PASS  forward" in text, text


def test_a_d2l_function_changing_a_weight_in_place_is_reported(tmp_path, capsys):
    f = tmp_path / "model.py"
    f.write_text("import numpy as np\n\n"
                 "def rnn(inputs, state, params):\n"
                 "    W_xh, W_hh, b_h, W_hq, b_q = params\n"
                 "    H, = state\n"
                 "    outputs = []\n"
                 "    for X in inputs:\n"
                 "        H = np.tanh(X @ W_xh + H @ W_hh + b_h)\n"
                 "        outputs.append(H @ W_hq + b_q)\n"
                 "    W_xh *= 1.0 + 1e-3\n"
                 "    return np.concatenate(outputs, axis=0), (H,)\n")
    text = fails(capsys, f, "- W_xh was changed in place by rnn", convention="d2l")
    assert "PASS  forward" in text, text


def test_a_torch_module_changing_its_weights_beside_a_fake_torch_py(tmp_path, capsys):
    """Two in one child (torch's import is the slow part): a torch.py beside the subject is
    not taken for PyTorch (it would raise), and a module that changes its own weights in
    its forward is reported, though its outputs are right."""
    pytest.importorskip("torch")
    (tmp_path / "torch.py").write_text("raise ImportError('this is not torch')\n")
    src = (EX / "torch_nn_correct.py").read_text()
    assert "def forward(self, x, hx=None):" in src
    f = tmp_path / "mod.py"
    f.write_text(src.replace("def forward(self, x, hx=None):",
                             "def forward(self, x, hx=None):\n        with torch.no_grad():\n"
                             "            self.weight_hh_l0.mul_(1.0).add_(1e-3)"))
    text = fails(capsys, f, "weight_hh_l0 was changed in place by", convention="torch.nn",
                 extra=("--max-examples", "1"))
    assert "this is not torch" not in text


# ------------------------------------------------------------------ what it prints

def test_prints_are_kept_out_of_the_report_and_the_json(tmp_path, capsys):
    top = "import os, sys\nprint('hello from import')\n"
    f = step(tmp_path, top, before="os.write(1, b'raw fd one\\n'); os.write(2, b'raw fd two\\n'); "
                                   "print('py print'); print('to stderr', file=sys.stderr)")
    status, out, err, _ = run(capsys, f, "--convention", "cs231n", "--max-examples", "2", "--json")
    assert status == 0, out + err
    report = json.loads(out)  # stdout is the JSON alone
    note = next(n for n in report["notes"] if n.startswith("your code printed"))
    # in the order printed: the import's line, then each call's four (fd 1, fd 2, print x2)
    assert "the first 3): 'hello from import' | 'raw fd one' | 'raw fd two'" in note, note
    assert "raw fd two" not in err and "to stderr" not in err, err
    # in the text report: one note, trimmed
    status, out, err, _ = run(capsys, f, "--convention", "cs231n", "--max-examples", "2")
    notes = [ln for ln in out.splitlines() if ln.startswith("note: your code printed")]
    assert len(notes) == 1 and len(notes[0]) < 500, out
    assert "raw fd two" not in err


def test_c_level_output_is_captured_too(tmp_path, capsys):
    import ctypes.util

    if ctypes.util.find_library("c") is None:
        pytest.skip("no C library to call")
    top = ("import ctypes, ctypes.util\nlibc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
           "libc.puts(b'from C'); libc.fflush(None)\n")
    status, out, err, _ = run(capsys, step(tmp_path, top), "--convention", "cs231n",
                              "--max-examples", "2", "--json")
    assert status == 0 and "from C" in json.loads(out)["notes"][-1], out + err


# ------------------------------------------------------------ what it shadows

def test_a_numpy_py_beside_the_subject_is_not_taken_for_numpy(tmp_path, capsys):
    (tmp_path / "numpy.py").write_text("raise ImportError('this is not numpy')\n")
    status, out, err, _ = run(capsys, step(tmp_path), "--convention", "cs231n", "--max-examples", "2")
    assert status == 0, out + err


def test_writing_into_the_pipe_to_rnnlab_is_a_failure_not_a_hang(tmp_path, capsys):
    """A subject that writes to every file descriptor it has (the answers' pipe among
    them) gets a named failure: rnnlab reads a bounded, checked answer."""
    top = ("import os\nfor fd in range(3, 256):\n    try:\n"
           "        os.write(fd, b'\\x00\\x00\\x00\\x10garbage')\n    except OSError:\n        pass\n")
    fails(capsys, step(tmp_path, top), "sent back")


def test_replacing_numpy_functions_in_its_process_cannot_fool_the_checks(tmp_path, capsys):
    """The spec's numbers are computed in rnnlab's process: np.tanh replaced where the
    subject runs changes the subject's results only."""
    top = "import numpy\nnumpy.tanh = lambda a: a\n"
    fails(capsys, step(tmp_path, top), "FAIL  forward")


# ------------------------------------------------------------------ the target

@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "not-py"])
def test_a_target_that_is_not_a_regular_py_file_is_refused_before_reading(tmp_path, capsys, kind):
    if kind == "fifo":
        target = tmp_path / "pipe.py"
        os.mkfifo(target)
        says = "is a named pipe (FIFO), not a Python file"
    elif kind == "device":
        target = Path("/dev/zero")
        if not target.exists():
            pytest.skip("no /dev/zero")
        says = "/dev/zero is a device, not a Python file"
    elif kind == "directory":
        target = tmp_path
        says = "is a directory; give the Python file to check"
    else:
        target = step(tmp_path, name="sol.txt")
        says = "sol.txt does not end in .py"
    status, out, err, seconds = run(capsys, target, "--convention", "cs231n")
    assert status == 2 and seconds < 5, out + err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


# --------------------------------------------------------------- the library call

def test_verify_takes_a_timeout_and_refuses_a_wrong_one(tmp_path):
    f = step(tmp_path, "import time\n", before="time.sleep(3600)")
    r = verify(str(f), "cs231n", max_examples=1, timeout=0.5)
    assert not r.ok and r.exit_status == 1 and "did not return within 0.5 s" in r.render()
    from rnnlab.errors import ConfigError

    for bad in (0, -1, "5", True, float("inf")):
        with pytest.raises(ConfigError, match="timeout must be a positive number"):
            verify(str(f), "cs231n", timeout=bad)


def test_the_cli_default_timeout_is_the_librarys():
    from rnnlab.cli.verify import DEFAULT_TIMEOUT
    from rnnlab.testing.isolation import DEFAULT_TIMEOUT as LIBRARY

    assert DEFAULT_TIMEOUT == LIBRARY


# ------------------------------------------------------------------ several files

def test_several_files_each_on_its_own_with_a_table_and_json_lines(tmp_path, capsys):
    """A broken and a hostile file among correct ones: each gets its verdict, the run goes
    on past them, and the exit status is the worst (2: one could not be checked)."""
    for d in "abcd":
        (tmp_path / d).mkdir()
    good = step(tmp_path / "a")
    bad = step(tmp_path / "b", after="next_h = next_h * 0.5")
    hostile = step(tmp_path / "c", "import os\n", after="os._exit(0)")
    broken = tmp_path / "d" / "sol.py"
    broken.write_text("def rnn_step_forward(x):\n    return x\n")
    files = [good, bad, hostile, broken]
    status, out, err, _ = run(capsys, *files, "--convention", "cs231n", "--max-examples", "2",
                              "--timeout", "5", "-j", "2", "--json")
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert [row["file"] for row in rows] == list(map(str, files)), out + err
    assert [row["verdict"] for row in rows] == ["PASS", "FAIL", "FAIL", "ERROR"], out
    assert rows[1]["report"]["ok"] is False and rows[1]["reason"].startswith("no known mistake; fails ")
    assert "ended the process running it" in rows[2]["reason"]
    assert "rnn_step_forward(x, prev_h, Wx, Wh, b) expected" in rows[3]["reason"]
    assert all(isinstance(row["seconds"], float) for row in rows)
    assert status == 2 and "Traceback" not in err
    # the table the run prints without --json, from the same rows
    lines = table(rows).splitlines()
    assert lines[0].split() == ["file", "verdict", "seconds", "mistakes", "named"]
    assert [ln.split()[1] for ln in lines[2:6]] == ["PASS", "FAIL", "FAIL", "ERROR"]
    assert lines[-1] == "4 files: 1 pass, 2 fail, 1 could not be checked (error)"


# ------------------------------------------------------------- correct still pass

@pytest.mark.parametrize("name,convention", [("cs231n_correct.py", "cs231n"),
                                             ("min_char_rnn.py", "min-char-rnn")])
def test_correct_examples_still_pass_in_their_child(capsys, name, convention):
    """(Every correct subject of tests/test_verify.py runs in its child too.)"""
    status, out, err, _ = run(capsys, EX / name, "--convention", convention, "--max-examples", "2")
    assert status == 0, out + err
