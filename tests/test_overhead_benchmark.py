"""benchmarks/overhead.py's two-process summary (correctness only: timings are for the benchmark
to print, never for a test to assert)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def test_dir_is_made_when_missing_and_a_bad_one_is_one_line(tmp_path, monkeypatch, capsys):
    """--dir /a/new/folder gave a FileNotFoundError traceback. The timings are stubbed: this checks
    where the databases go, not how fast anything is."""
    used = []

    def fake_sequential(library, kind, n, workdir, form, budget_s):
        used.append(workdir)
        return {"library": library, "storage": kind, "planned": n, "trials": n, "capped": False,
                "ms_per_trial": 0.1, "ms_last_100": 0.1, "trials_per_s": 1e4, "create_ms": 1.0}

    def fake_processes(library, procs, n, workdir, form, budget_s, round_=0):
        return {**run(100.0 * procs), "library": library, "storage": "sqlite", "processes": procs,
                "timed_trials": n, "first_errors": [], "distinct_configs": n}

    def no_optuna():
        raise ImportError("optuna")

    monkeypatch.setattr(overhead, "time_sequential", fake_sequential)
    monkeypatch.setattr(overhead, "time_processes", fake_processes)
    monkeypatch.setattr(overhead, "quiet_optuna", no_optuna)
    folder = tmp_path / "not" / "yet"
    assert overhead.main(["--quick", "--dir", str(folder)]) == 0
    assert used and all(path.parent == folder for path in used)
    capsys.readouterr()
    taken = tmp_path / "file"
    taken.write_text("")
    with pytest.raises(SystemExit) as stopped:
        overhead.main(["--quick", "--dir", str(taken / "sub")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and f"--dir {taken / 'sub'}: cannot make the folder" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("budget", ["0", "-5"])
def test_a_row_budget_that_is_not_positive_is_one_line(budget, capsys):
    """--row-budget 0 ran one trial per row, without a word."""
    with pytest.raises(SystemExit) as stopped:
        overhead.main(["--quick", "--row-budget", budget])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "--row-budget must be a positive number of seconds" in err
