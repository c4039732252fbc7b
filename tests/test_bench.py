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


def test_the_timed_overhead_leaves_out_a_searchers_one_time_cost(monkeypatch):
    """The first run of a searcher in a process pays its lazy imports and first fit; an untimed
    warm-up pays them, so ms/trial does not depend on which run a worker process starts with.
    A fake clock and a fake searcher whose first call costs 10 s: nothing here is timed."""
    from types import SimpleNamespace

    from tunelab.benchmarks import runner

    now, calls = [0.0], []

    def fake_run(problem, searcher, seed, n_trials, objective):
        calls.append((searcher, n_trials))
        if len(calls) == 1:
            now[0] += 10.0  # the one-time cost: imports, the first model
        values = []
        for _ in range(n_trials):
            now[0] += 0.001  # the searcher's own per-trial cost
            values.append(objective({"x0": 1.0, "x1": 2.0}))
        return values

    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(runner, "_run_tunelab", fake_run)
    monkeypatch.setattr(runner, "_WARMED", set(), raising=False)
    first = run_one("branin", "random", 0, 40)
    second = run_one("branin", "random", 1, 40)
    assert first.overhead == pytest.approx(0.001) and second.overhead == pytest.approx(0.001)
    assert len(first.best) == 40
    assert calls == [("random", 25), ("random", 40), ("random", 40)]  # one warm-up per process and searcher
    run_one("branin", "sobol", 0, 3)
    assert calls[3:] == [("sobol", 3), ("sobol", 3)]  # never more warm-up trials than the run has


def _bench(capsys, *argv):
    """``tunelab bench`` in this process: (exit code, stdout, stderr)."""
    from tunelab.cli import main

    code = main(["bench", "--seeds", "1", "--processes", "1", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_searcher_that_cannot_run_is_refused_before_any_run(tmp_path, capsys):
    """A grid smaller than --trials ran out of points mid-bench, after the other runs, with no table."""
    code, out, err = _bench(capsys, "--problems", "mixed,branin", "--searchers", "random,grid", "--trials", "30",
                            "-o", str(tmp_path / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'grid' has 25 points to propose on problem 'branin', fewer than the 30 trials" in err
    assert "[1/" not in out and not (tmp_path / "out").exists()  # refused before any work
    from tunelab.benchmarks.runner import check_runnable

    check_runnable(["branin"], ["grid", "random", "optuna-tpe"], 25)  # a grid it fills is fine


def test_a_searcher_that_cannot_search_the_space_is_refused_before_any_run(tmp_path, capsys):
    pytest.importorskip("torch")
    code, out, err = _bench(capsys, "--problems", "branin", "--searchers", "random,reinforce", "--trials", "3",
                            "-o", str(tmp_path / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "searcher 'reinforce' cannot run on problem 'branin': the controller picks among discrete" in err
    assert "[1/" not in out and not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    code, out, err = _bench(capsys, "--problems", "branin", "--searchers", "random", "--trials", "3",
                            "-o", str(taken))
    assert code == 2 and f"-o {taken} is a file" in err and len(err.strip().splitlines()) == 1
    assert taken.read_text() == "mine"


def test_resume_skips_a_last_line_cut_off_mid_write_but_refuses_damage_elsewhere(tmp_path, capsys):
    from tunelab.cli import UsageError
    from tunelab.commands.bench import _kept_runs

    runs = [json.dumps({"problem": "branin", "searcher": "random", "seed": seed, "best": [3.0, 2.0],
                        "overhead": 0.001}) for seed in range(3)]
    path = tmp_path / "runs.jsonl"
    path.write_text(runs[0] + "\n" + runs[1] + "\n" + runs[2][:25])  # the bench was killed writing seed 2
    kept = _kept_runs(path, ["branin"], ["random"], 3, 2)
    assert sorted(run.seed for run in kept) == [0, 1]
    out = capsys.readouterr().out
    assert "skipping line 3" in " ".join(out.split()) and len(out.strip().splitlines()) == 1
    path.write_text(runs[0] + "\n" + runs[1][:25] + "\n" + runs[2] + "\n\n")  # damage before the last line
    with pytest.raises(UsageError, match="line 2 of .* is not a benchmark run"):
        _kept_runs(path, ["branin"], ["random"], 3, 2)


def test_the_tables_end_at_the_last_trial_of_the_runs(tmp_path, capsys):
    """With --trials 30 the tables stopped at @25 and ranked there: the runs' end was not shown."""
    code, out, err = _bench(capsys, "--problems", "branin", "--searchers", "random,sobol", "--trials", "30",
                            "-o", str(tmp_path))
    assert code == 0, err
    text = " ".join(out.split())
    assert "@25" in text and "@30" in text and "rank @30" in text
    code, out, err = _bench(capsys, "--problems", "branin", "--searchers", "random", "--trials", "7",
                            "-o", str(tmp_path))
    assert code == 0 and "@7" in out and "@25" not in out


def test_resume_leaves_the_runs_it_does_not_repeat_in_its_file(tmp_path, capsys):
    """Resuming to add one searcher, named alone, deleted its peers' runs from runs.jsonl: the next
    --resume naming them all ran them again."""
    def bench(searchers, trials=5):
        code, out, err = _bench(capsys, "--problems", "branin", "--searchers", searchers, "--trials", str(trials),
                                "--resume", "-o", str(tmp_path))
        assert code == 0, err
        return out

    bench("random,tpe")
    bench("sobol")
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["searcher"] for line in lines) == ["random", "sobol", "tpe"]
    out = bench("random,tpe,sobol")
    assert "keeping 3 runs" in out and "branin random seed" not in out and "branin tpe seed" not in out
    bench("random", trials=6)  # another budget: its run is added, the others stay
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["searcher"], len(r["best"])) for r in runs) == [
        ("random", 5), ("random", 6), ("sobol", 5), ("tpe", 5)]


def test_a_bench_whose_searchers_are_all_missing_is_refused_and_keeps_its_folder(tmp_path, capsys, monkeypatch):
    """Every searcher named was a peer that is not installed: the bench printed empty tables, exited 0
    and emptied the runs.jsonl of the bench before it."""
    from tunelab.benchmarks import runner

    monkeypatch.setitem(runner.EXTERNAL, "hyperopt-tpe", "tunelab_no_such_package")
    (tmp_path / "runs.jsonl").write_text("earlier\n")
    code, out, err = _bench(capsys, "--problems", "branin", "--searchers", "hyperopt-tpe", "--trials", "3",
                            "-o", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "none of the searchers can run here: hyperopt-tpe (not installed: pip install tunelab_no_such_package)" \
        in " ".join(err.split())
    assert (tmp_path / "runs.jsonl").read_text() == "earlier\n"


def test_a_bench_process_runs_one_openmp_thread_also_for_libraries_loaded_after_it_starts():
    """threadpoolctl limited the libraries loaded when a run started; scikit-learn's OpenMP, loaded
    by the first objective, then ran one thread per CPU in every worker process."""
    code = ("from tunelab.benchmarks.runner import run_one\n"
            "run_one('boosting_cancer', 'random', 0, 1)\n"
            "from threadpoolctl import threadpool_info\n"
            "import json; print(json.dumps([[i['internal_api'], i['num_threads']] for i in threadpool_info()]))\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**env, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    pools = json.loads(out.stdout.strip().splitlines()[-1])
    assert ["openmp", 1] in pools and all(threads == 1 for _, threads in pools), pools


def test_the_help_names_every_problem_and_the_default_output_folder(capsys):
    """Only the default problems were named, so the others (forest_diabetes, ...) had to be guessed."""
    from tunelab.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in PROBLEMS)
    assert "(default tunelab-bench)" in text
