import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.benchmarks import PROBLEMS
from tunelab.benchmarks import report
from tunelab.benchmarks.runner import run_one

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,point", [
    ("branin", {"x0": 3.14159265, "x1": 2.275}),
    ("hartmann6", {f"x{i}": v for i, v in enumerate([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])}),
    ("rosenbrock5", {f"x{i}": 1.0 for i in range(5)}),
    ("styblinski_tang8", {f"x{i}": -2.903534 for i in range(8)}),
    ("ackley5", {f"x{i}": 0.0 for i in range(5)}),
])
def test_synthetic_problems_reach_their_known_optimum(name, point):
    problem = PROBLEMS[name]
    assert problem.objective(point) == pytest.approx(problem.optimum, abs=1e-4)


def test_runs_rank_and_plot(tmp_path):
    runs = [run_one("branin", s, seed, 12) for s in ("random", "tpe") for seed in (0, 1)]
    assert all(len(r.best) == 12 and r.best == sorted(r.best, reverse=True) for r in runs)
    ranks = report.mean_ranks(runs, 12)
    assert sorted(ranks.values()) == [1.0, 2.0]
    written = report.write_plots(runs, tmp_path)
    page = written[0].read_text()
    assert page.count("<polyline") == 2 and "<script" not in page
    assert len(json.loads((tmp_path / "runs.json").read_text())) == 4


def test_bench_command_prints_tables_and_skips_missing_peers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--problems", "branin,mixed",
                          "--searchers", "random,tpe,optuna-tpe", "--trials", "10", "--seeds", "2",
                          "--processes", "1", "-o", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=600)  # a guard against a hang, not a speed check
    assert out.returncode == 0, out.stderr
    assert "mean rank" in out.stdout and "branin" in out.stdout and "tpe" in out.stdout
    assert (tmp_path / "branin.html").exists() and (tmp_path / "mixed.html").exists()
    bad = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--problems", "nope"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "unknown problem" in bad.stderr
    for flag in ("--problems", "--searchers"):
        empty = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", flag, " , "],
                               capture_output=True, text=True, env=env, timeout=60)
        assert empty.returncode == 2 and f"{flag} needs at least one name" in empty.stderr, empty.stderr


def test_a_name_given_twice_is_run_once():
    from tunelab.commands.bench import _names

    assert _names("branin, branin,mixed", "--problems") == ["branin", "mixed"]


def test_bench_times_ask_and_tell_at_given_study_sizes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--problems", "branin",
                          "--searchers", "random,tpe", "--trials", "4", "--seeds", "1", "--processes", "1",
                          "--overhead-at", "12,30", "-o", str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=600)  # a guard against a hang, not a speed check
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if "N=12" in line)
    assert "N=30" in header
    for name in ("random", "tpe"):
        row = next(line for line in lines if line.strip("│ ").startswith(name + " "))
        cells = [c.strip() for c in row.split("│") if c.strip()]
        assert cells[0] == name and len(cells) == 3 and all(float(c) >= 0 for c in cells[1:])
    for bad in ("10,x", "0", ","):
        wrong = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--problems", "branin",
                                "--overhead-at", bad, "-o", str(tmp_path)], capture_output=True, text=True,
                               env=env, timeout=60)
        assert wrong.returncode == 2 and "--overhead-at" in wrong.stderr, (bad, wrong.stderr)


def test_bench_resume_keeps_matching_runs_and_runs_the_rest(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def bench(searchers, trials, *extra):
        out = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--problems", "branin",
                              "--searchers", searchers, "--trials", str(trials), "--seeds", "2",
                              "--processes", "1", "-o", str(tmp_path), *extra],
                             capture_output=True, text=True, env=env, timeout=600)  # a guard against a hang, not a speed check
        assert out.returncode == 0, out.stderr
        return out.stdout, json.loads((tmp_path / "runs.json").read_text())

    _, first = bench("random,tpe", 6)
    text, second = bench("random,sobol", 6, "--resume")
    assert "keeping 2 runs" in text and "branin random seed" not in text and "branin sobol seed 1" in text
    kept = {(r["searcher"], r["seed"]): r["best"] for r in second}
    assert sorted(kept) == [("random", 0), ("random", 1), ("sobol", 0), ("sobol", 1)]
    assert all(kept[("random", r["seed"])] == r["best"] for r in first if r["searcher"] == "random")
    text, third = bench("random", 8, "--resume")  # another budget: nothing to keep
    assert "keeping" not in text and len(third) == 2 and all(len(r["best"]) == 8 for r in third)
