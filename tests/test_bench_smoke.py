"""The benchmark still runs end to end: ``bench/run.py --smoke`` starts the mock upstream, the baseline and the
gateway under gunicorn, drives a few requests and streams through each, prints its table and stops everything
it started. Its numbers are not looked at: timing belongs to the benchmark, not to the test suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("gunicorn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = (
    "added latency p50 @c1", "requests/s @c16", "stream first-token added p50", "CPU per chunk, marginal",
    "peak RSS per worker", "import + app build", "network calls at start-up",
)


@pytest.mark.slow
def test_benchmark_smoke_run_prints_its_table_and_cleans_up():
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--smoke", "--loadgen", "python"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the driver stops its servers on TERM
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"benchmark smoke run did not finish in 90 s\n{out}\n{err}")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    for label in ROWS:
        assert f"| {label}" in out, f"row {label!r} missing from\n{out}"
    assert "errors during the runs: gateway 0, baseline 0" in out
    assert "mock capacity:" in out
