"""benchmarks/overhead.py's two-process summary (correctness only: timings are for the benchmark
to print, never for a test to assert)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import overhead  # noqa: E402


def run(rate, errors=0, completed=10, expected=10):
    return {"trials_per_s": rate, "errors": errors, "completed": completed, "expected": expected}


def test_median_run_keeps_the_middle_run_and_counts_every_error_and_loss():
    summary = overhead.median_run([run(900.0), run(1200.0, errors=1), run(1000.0, completed=9)])
    assert summary["trials_per_s"] == 1000.0
    assert summary["rates"] == [900.0, 1200.0, 1000.0]
    assert summary["errors"] == 1 and summary["lost"] == 1


def test_two_process_check_fails_on_any_lost_trial():
    one = {**overhead.median_run([run(100.0)]), "library": "tunelab", "processes": 1}
    two = {**overhead.median_run([run(150.0), run(160.0, completed=9), run(170.0)]), "library": "tunelab",
           "processes": 2}
    (label, ok, detail), = overhead.targets([], [one, two], [])
    assert "2 processes" in label and not ok and "lost 1" in detail
    two_ok = {**overhead.median_run([run(150.0)]), "library": "tunelab", "processes": 2}
    assert overhead.targets([], [one, two_ok], [])[0][1]
