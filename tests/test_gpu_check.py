"""benchmarks/gpu_check.py, the GPU check, cannot rot where there is no GPU: it runs here
on the CPU (``--device cpu``), a planted mismatch makes it fail, and without CUDA the
shell command says so and exits 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def test_dry_run_on_the_cpu_checks_and_benchmarks(capsys):
    assert gpu_check.main(["--device", "cpu", "--quick", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    for row in ("lstm, 1 layer, nn, float32", "gru (torch form), 2 layers, dropout, scratch",
                "rnn, bidirectional, nn, float64", "2 epochs of d2l's LSTM",
                "rnnlab torch, scratch path", "torch.nn (d2l's concise model)"):
        assert row in out, row
    assert "FAIL" not in out and "every check passed" in out


def test_a_mismatch_fails_loudly(capsys, monkeypatch):
    def perturb(loss, grads):  # every gradient off by 1e-4 of itself: above both tolerances
        return loss, [g * (1 + 1e-4) for g in grads]

    monkeypatch.setattr(gpu_check, "PERTURB", perturb)
    monkeypatch.setattr(gpu_check, "benchmark", lambda *a, **k: None)  # not needed here
    assert gpu_check.main(["--device", "cpu", "--quick"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "FAILED" in captured.err


def test_pytest_summary_is_read_and_nothing_run_is_nothing_passed():
    counts = gpu_check.pytest_counts("...\n== 5 passed, 1 skipped, 900 deselected in 12.3s ==\n")
    assert counts == {"passed": 5, "failed": 0, "skipped": 1, "errors": 0}
    counts = gpu_check.pytest_counts("1 failed, 2 passed, 1 error in 3.0s")
    assert counts == {"passed": 2, "failed": 1, "skipped": 0, "errors": 1}
    assert gpu_check.pytest_counts("no tests ran")["passed"] == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_command_says_so_and_exits_3():
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    assert "no CUDA GPU here" in r.stderr and "nothing was checked" in r.stderr
    assert r.stdout == ""
