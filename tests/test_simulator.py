"""The simulated-clock backend: the real tuner loop, replayed curves, exact time and compute."""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tunelab as tl
from tunelab.benchmarks.simulator import SimulatedExecutor, simulate
from tunelab.benchmarks.synthetic import CrossingTask, OverfitTask, PowerLawTask, SubsampleTask
from tunelab.benchmarks.tasks import TableTask, recorded, recorded_names
from tunelab.trial import TrialState

TASK = PowerLawTask(epochs=27)


def test_simulation_is_deterministic_for_a_seed():
    runs = [simulate(TASK, scheduler="asha", workers=3, n_trials=40, seed=5) for _ in range(2)]
    assert runs[0].events == runs[1].events
    assert [t.config for t in runs[0].study.trials] == [t.config for t in runs[1].study.trials]
    other = simulate(TASK, scheduler="asha", workers=3, n_trials=40, seed=6)
    assert other.events != runs[0].events


def test_full_budget_time_and_compute_add_up():
    one = simulate(TASK, searcher="random", full_budget=True, n_trials=8, seed=1)
    total = sum(TASK.cost(t.config, 0, 27) for t in one.study.trials)
    assert one.compute == pytest.approx(total) and one.elapsed == pytest.approx(total)
    assert all(t.state is TrialState.COMPLETED and t.budget is None for t in one.study.trials)
    four = simulate(TASK, searcher="random", full_budget=True, n_trials=8, seed=1, workers=4)
    assert four.compute == pytest.approx(total)
    assert four.elapsed < total / 2  # four workers share the same work


def test_promotions_pay_only_the_extra_epochs():
    result = simulate(TASK, scheduler="asha", n_trials=30, seed=2)
    spent = sum(TASK.cost(t.config, 0, t.reports[-1].step) for t in result.study.trials)
    assert result.compute == pytest.approx(spent)
    for trial in result.study.trials:
        steps = [r.step for r in trial.reports]
        assert steps == list(range(1, len(steps) + 1))


def test_fresh_run_fidelity_pays_every_level_in_full():
    task = SubsampleTask()
    result = simulate(task, scheduler="hyperband", n_trials=20, seed=3)
    spent = sum(task.cost(t.config, 0, r.step) for t in result.study.trials for r in t.reports)
    assert result.compute == pytest.approx(spent)


def test_timeout_is_in_simulated_seconds():
    result = simulate(TASK, searcher="random", full_budget=True, timeout=500.0, seed=0)
    assert "timeout" in result.stop_reason and result.elapsed >= 500.0
    assert result.elapsed < 500.0 + max(TASK.cost(t.config, 0, 27) for t in result.study.trials)


def test_target_stops_the_run_at_the_first_full_run_that_reaches_it():
    result = simulate(TASK, searcher="random", full_budget=True, n_trials=200, target=0.3, seed=0)
    hit = result.time_to(0.3, "min", 27)
    assert hit is not None and "target" in result.stop_reason
    assert hit[0] == pytest.approx(result.elapsed)
    event = result.first_hit(0.3, "min", 27)
    assert (event.time, event.compute) == hit and event.step == 27 and event.value <= 0.3
    assert all(e.value > 0.3 for e in result.events if e.step == 27 and e.time < event.time)


def test_crossing_curves_mislead_early_rungs():
    task = CrossingTask()
    fast = {"lr": 0.02, "momentum": 0.7, "width": 64, "dropout": 0.36}
    slow = {"lr": 0.002, "momentum": 0.7, "width": 64, "dropout": 0.36}
    for rung in (1, 3, 9):
        assert task.value(fast, rung) < task.value(slow, rung)
    assert task.final(fast) > task.final(slow) + 0.1


def test_overfitting_curves_rise_again_out_of_reach_of_every_fitted_family():
    from tunelab.schedulers.curve_models import predict

    task = OverfitTask()
    wide = {"lr": 0.003, "momentum": 0.7, "width": 64, "dropout": 0.0}  # overfits
    narrow = {"lr": 0.003, "momentum": 0.7, "width": 24, "dropout": 0.4}
    curve = task.curve(wide).values
    assert curve.min() < curve[-1] - 0.1 and np.argmin(curve) < 40  # its best epoch is long past
    for rung in (9, 27):
        assert task.value(wide, rung) < task.value(narrow, rung)
    assert task.final(wide) > task.final(narrow) + 0.05
    # The forecast at 27 epochs cannot see the rise: it promises far better than the run ends.
    steps = np.arange(1, 28, dtype=float)
    assert predict(steps, curve[:27], 81).mean < task.final(wide) - 0.05
    # Evaluation noise: seeded by the configuration, so replayed exactly, and different per config.
    assert np.array_equal(OverfitTask().curve(narrow).values, task.curve(narrow).values)
    jitter = np.diff(task.curve(narrow).values[60:])
    assert 0.5 * OverfitTask.NOISE < jitter.std() < 3 * OverfitTask.NOISE


TINY_TABLE = {"name": "tiny", "metric": "error", "mode": "min", "epochs": 3,
              "grid": {"lr": [0.001, 0.01, 0.1], "kind": ["a", "b"]},
              "configs": [[i, j] for i in range(3) for j in range(2)],
              "curves": [[0.9, 0.5 + i / 10, 0.4 + i / 10 + j / 100] for i in range(3) for j in range(2)],
              "cost_per_epoch": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]}


def test_a_table_task_snaps_configurations_to_its_grid():
    task = TableTask(TINY_TABLE)
    assert task.space["lr"] == tl.ordinal([0.001, 0.01, 0.1]) and task.space["kind"] == tl.choice(["a", "b"])
    assert task.final({"lr": 0.012, "kind": "b"}) == pytest.approx(0.51)
    assert task.cost({"lr": 0.09, "kind": "b"}, 1, 3) == pytest.approx(4.0)
    result = simulate(task, scheduler="sh", scheduler_options={"n": 3}, n_trials=3, seed=0)
    assert result.study.counts() == {"completed": 1, "pruned": 2}


def test_recorded_tables_are_real_curves():
    assert set(recorded_names()) >= {"sgd-digits", "sgd-breast-cancer", "mlp-digits"}  # shipped in the package
    for name in recorded_names():
        task = recorded(name)
        assert task.finals.min() < 0.2 and task.fidelity.resumable
        config = tl.Space(task.space).sample(0)
        assert len(task.curve(config).values) == int(task.fidelity.max)


def test_share_reaching_counts_a_table_exactly_and_estimates_a_family():
    table = recorded("sgd-digits")
    finals = sorted(table.finals)
    assert table.share_reaching(finals[4]) == pytest.approx(sum(f <= finals[4] for f in finals) / len(finals))
    assert table.share_reaching(finals[0] - 1) == 0.0 and table.share_reaching(finals[-1]) == 1.0
    task = PowerLawTask()
    assert task.share_reaching(math.inf, samples=200) == 1.0 and task.share_reaching(-1.0, samples=200) == 0.0
    # the median of 2000 sampled finals is reached by about half of the space
    from tunelab.space import Space
    space = Space(task.space)
    median = float(np.median([task.final(space.sample(seed)) for seed in range(2000)]))
    assert 0.45 < task.share_reaching(median, samples=4000, seed=1) < 0.55


def test_trial_timeout_is_in_simulated_seconds_too():
    """A run needs many simulated seconds: a limit of one fails it at the first report past it,
    as a real run is failed at the report that finds it past its time; a day's limit lets it be."""
    for limit, state in ((1.0, TrialState.FAILED), (86400.0, TrialState.COMPLETED)):
        study = tl.tune(lambda config: 0.0, TASK.space, metric="loss", mode="min", executor=SimulatedExecutor(TASK),
                        n_trials=2, trial_timeout=limit, seed=0, progress=False)
        assert [t.state for t in study.trials] == [state] * 2
        if state is TrialState.FAILED:
            assert all("trial_timeout=1s (simulated)" in t.error and len(t.reports) < 27 for t in study.trials)


def test_executor_refuses_bad_workers():
    with pytest.raises(tl.ConfigError, match="workers"):
        SimulatedExecutor(TASK, workers=0)


def test_bench_mf_command_prints_a_table():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--tasks", "powerlaw", "--seeds", "1",
                          "--methods", "asha (stopping)", "tunelab default", "asha (stopping)",
                          "--workers", "1", "2", "2",
                          "--scaling", "asha (promotion)",
                          "--target-runs", "4", "--reference-runs", "3"],  # reference row comes anyway
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "asha (stopping)" in out.stdout and "time to target" in out.stdout
    assert re.search(r"asha \(stopping\)[^\n]* [01]/[01] \(p 1\)", out.stdout)  # the default against it, one seed
    assert re.search(r"random \(full budget\)[^\n]* \d/3 ", out.stdout)  # the reference's own seeds
    assert "asha (promotion) with simulated workers" in out.stdout and "by itself" in out.stdout
    assert re.search(r"\d\.\d\d% of configurations reach it", " ".join(out.stdout.split()))
    assert "median of 1 seeds (0-0)" in " ".join(out.stdout.split())
    assert len(re.findall(r"asha \(stopping\)", out.stdout)) == 1 and out.stdout.count(" 2 workers:") == 1  # once each
    bad = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--tasks", "powerlaw", "nope"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "unknown task 'nope'" in bad.stderr
    assert "powerlaw" not in bad.stdout  # refused before any task ran
    optuna = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--scaling", "optuna tpe (full budget)"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert optuna.returncode == 2 and "--scaling" in optuna.stderr
    for option in ("--tasks", "--methods"):
        empty = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", option],
                               capture_output=True, text=True, env=env, timeout=60)
        assert empty.returncode == 2 and f"{option} needs at least one name" in empty.stderr
    negative = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--first-seed", "-1"],
                              capture_output=True, text=True, env=env, timeout=60)
    assert negative.returncode == 2 and "--first-seed must be an integer >= 0" in negative.stderr
    zero = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--target-runs", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert zero.returncode == 2 and "--target-runs" in zero.stderr
    zero = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench-mf", "--reference-runs", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert zero.returncode == 2 and "--reference-runs" in zero.stderr


def test_bench_multi_fidelity_flag_runs_bench_mf():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    runs = [subprocess.run([sys.executable, "-m", "tunelab.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=60) for argv in (["bench-mf", "--list"], ["bench", "--multi-fidelity", "--list"])]
    assert runs[0].returncode == runs[1].returncode == 0, runs[1].stderr
    assert runs[1].stdout == runs[0].stdout and "crossing" in runs[1].stdout
    bad = subprocess.run([sys.executable, "-m", "tunelab.cli", "bench", "--multi-fidelity", "--tasks", "nope"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "unknown task" in bad.stderr


def test_compare_gives_the_same_report_in_parallel_processes(monkeypatch):
    from tunelab.benchmarks import compare as bench

    monkeypatch.setattr(bench, "TARGET_RUNS", 3)  # a tiny benchmark: the bar from three searches
    task = TableTask(TINY_TABLE)
    methods, scaling = ["random (full budget)", "asha (promotion)"], "asha (promotion)"
    serial = bench.compare(task, [0, 1], methods, workers=(1, 2), scaling_method=scaling, jobs=1)
    parallel = bench.compare(task, [0, 1], methods, workers=(1, 2), scaling_method=scaling, jobs=2)
    assert serial.target == parallel.target
    assert {n: (o.times, o.computes) for n, o in serial.outcomes.items()} == \
        {n: (o.times, o.computes) for n, o in parallel.outcomes.items()}
    assert [(n, o.times, o.busy) for n, o in serial.scaling.items()] == \
        [(n, o.times, o.busy) for n, o in parallel.scaling.items()]
    assert serial.outcomes["asha (promotion)"].reached >= 1
    # The winning run's own length: the full-fidelity cost of a configuration that reached the target.
    outcome = serial.scaling[1]
    finals_at_target = {float(task.cost(c, 0.0, task.fidelity.max)) for c in _configs(task)
                        if task.final(c) <= serial.target}
    assert outcome.lengths and all(v is None or v in finals_at_target for v in outcome.lengths)
    assert outcome.length is not None
    assert all(0.3 < b <= 1.0 + 1e-9 for o in serial.scaling.values() for b in o.busy)


def test_the_reference_is_timed_on_the_methods_seeds_and_then_more(monkeypatch):
    from tunelab.benchmarks import compare as bench

    monkeypatch.setattr(bench, "TARGET_RUNS", 3)
    task = TableTask(TINY_TABLE)
    methods = ["random (full budget)", "asha (promotion)"]
    few = bench.compare(task, [0, 1], methods, workers=(), reference_runs=1)
    many = bench.compare(task, [0, 1], methods, workers=(), reference_runs=6, jobs=2)
    assert len(few.outcomes["random (full budget)"].times) == 2  # never fewer than the methods' seeds
    reference = many.outcomes["random (full budget)"]
    assert len(reference.times) == 6 and reference.times[:2] == few.outcomes["random (full budget)"].times
    assert len(set(reference.times)) > 1  # the extra seeds are other searches
    assert len(many.outcomes["asha (promotion)"].times) == 2


def test_versus_pairs_the_seeds_and_counts_a_seed_never_finished_as_slowest():
    from tunelab.benchmarks.compare import Outcome

    fast, slow = Outcome(), Outcome()
    for mine, theirs in [(1.0, 2.0), (3.0, None), (None, None), (5.0, 5.0), (4.0, 1.0)]:
        fast.add(None if mine is None else (mine, mine))
        slow.add(None if theirs is None else (theirs, theirs))
    slow.add((9.0, 9.0))  # the reference's extra seeds have no partner: left out
    duel = fast.versus(slow)
    assert (duel.wins, duel.losses, duel.ties) == (2, 1, 2)
    assert duel.p_value == pytest.approx(1.0)  # 2 against 1 is what chance gives
    assert (slow.versus(fast).losses, slow.versus(fast).ties) == (2, 2)
    lopsided = Outcome(computes=[1.0] * 12).versus(Outcome(computes=[2.0] * 12))
    assert lopsided.wins == 12 and lopsided.p_value == pytest.approx(2 * 0.5 ** 12)
    assert Outcome().versus(Outcome()).p_value == 1.0


def _configs(task):
    import itertools

    return [dict(zip(task.grid, values)) for values in itertools.product(*task.grid.values())]


def test_the_optuna_reference_is_the_same_run_for_the_same_seed():
    pytest.importorskip("optuna")
    from tunelab.benchmarks.optuna_baseline import run_optuna

    # Its Hyperband pruner brackets trials by a hash of the study name: the name must not be random.
    runs = [run_optuna(TASK, "hyperband", 3, target=0.3, max_time=3000.0, max_trials=60) for _ in range(2)]
    assert runs[0] == runs[1]


def test_the_optuna_baseline_sees_the_order_of_ordered_choices():
    """An ordered grid (step sizes, widths) goes to Optuna as an index, so its TPE can use the
    order as tunelab's searchers do; an unordered choice stays a category."""
    optuna = pytest.importorskip("optuna")
    from tunelab.benchmarks.optuna_baseline import suggest

    space = tl.Space(recorded("sgd-digits").space)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    config = suggest(trial, space)
    assert isinstance(trial.distributions["alpha"], optuna.distributions.IntDistribution)
    assert isinstance(trial.distributions["loss"], optuna.distributions.CategoricalDistribution)
    assert config["alpha"] == space.params["alpha"].options[trial.params["alpha"]]
    assert space.validate(config, where="test") == config


def test_a_task_refuses_steps_outside_its_recorded_epochs():
    task = recorded("sgd-digits")
    config = tl.Space(task.space).sample(0)
    top = int(task.fidelity.max)
    for bad in (0, -3, top + 1):
        with pytest.raises(tl.ConfigError, match="outside the recorded epochs"):
            task.value(config, bad)
    with pytest.raises(tl.ConfigError, match="outside the recorded epochs"):
        task.cost(config, 0, 100)
    assert task.cost(config, 0, top) == pytest.approx(sum(task.cost(config, e, e + 1) for e in range(top)))
    with pytest.raises(tl.ConfigError, match="'full' is not one of the recorded values"):
        task.value({**config, "loss": "full"}, 3)


def _gz(table) -> bytes:
    return gzip.compress(json.dumps(table).encode())


def _damaged_tables():
    short_curve = copy.deepcopy(TINY_TABLE)
    short_curve["curves"][4] = short_curve["curves"][4][:2]
    few_rows = {**TINY_TABLE, **{k: TINY_TABLE[k][:5] for k in ("configs", "curves", "cost_per_epoch")}}
    return [  # (raw file bytes, what the error must say)
        (_gz(TINY_TABLE)[:60], "not a readable learning-curve table"),  # a cut-off gzip
        (b"", "not a readable learning-curve table"),  # an empty file
        (gzip.compress(b""), "not a readable learning-curve table"),  # an empty table
        (_gz({k: v for k, v in TINY_TABLE.items() if k != "curves"}), "missing key(s) 'curves'"),
        (_gz(short_curve), "curve 4 has 2 values, expected 3 (one per epoch)"),
        (_gz(few_rows), "'configs' has 5 rows, expected 6 (one per configuration of the 3 x 2 grid)"),
        (_gz({**TINY_TABLE, "cost_per_epoch": [1.0] * 4}), "'cost_per_epoch' has 4 rows, expected 6"),
        (_gz({**TINY_TABLE, "configs": [*TINY_TABLE["configs"][:5], [0, 0]]}), "more than once"),
    ]


@pytest.fixture
def table_dir(tmp_path, monkeypatch):
    """The recorded tables read from ``tmp_path``, with nothing cached from the real ones."""
    from tunelab.benchmarks import tasks

    monkeypatch.setattr(tasks, "DATA_DIR", tmp_path)
    recorded.cache_clear()
    yield tmp_path
    recorded.cache_clear()


DAMAGE = ["cut-off", "empty-file", "empty-table", "missing-key", "short-curve", "few-rows", "few-costs", "row-twice"]


@pytest.mark.parametrize("raw,message", _damaged_tables(), ids=DAMAGE)
def test_a_damaged_table_is_refused_on_load_naming_the_file_and_the_fault(raw, message, table_dir):
    (table_dir / "broken.json.gz").write_bytes(raw)
    with pytest.raises(tl.ConfigError) as caught:
        recorded("broken")
    assert str(table_dir / "broken.json.gz") in str(caught.value) and message in str(caught.value)
    assert "record_curves" in str(caught.value)  # and how to make a good one


def test_a_table_given_in_memory_is_checked_too():
    with pytest.raises(tl.ConfigError, match=r"^learning-curve table: 'epochs' must be a positive integer"):
        TableTask({**TINY_TABLE, "epochs": 0})
    with pytest.raises(tl.ConfigError, match=r"'configs' row 2 is \[3, 0\], not 2 indices"):
        TableTask({**TINY_TABLE, "configs": [[0, 0], [0, 1], [3, 0], [1, 1], [2, 0], [2, 1]]})


def test_bench_mf_refuses_a_damaged_table_in_one_line_before_any_task_runs(table_dir, capsys):
    from tunelab.cli import main

    (table_dir / "good.json.gz").write_bytes(_gz(TINY_TABLE))
    (table_dir / "broken.json.gz").write_bytes(_gz({**TINY_TABLE, "curves": TINY_TABLE["curves"][:3]}))
    code = main(["bench-mf", "--tasks", "good", "broken", "--seeds", "1", "--jobs", "1"])
    out = capsys.readouterr()
    assert code == 2 and "broken.json.gz: 'curves' has 3 rows, expected 6" in out.err
    assert len(out.err.strip().splitlines()) == 1 and "good" not in out.out  # refused before 'good' ran


FLAT_TABLE = {**TINY_TABLE, "cost_per_epoch": [1.0] * 6}  # every run: 3 epochs of 1 s, every one at the target


@pytest.mark.parametrize("cap,hit", [(2.5, None), (3.0, (3.0, 3.0))])
def test_optuna_and_tunelab_apply_the_time_cap_alike(cap, hit):
    """The cap falls inside the first run (it ends at 3 s): a hit after the cap does not count,
    for the Optuna baseline as for tunelab's methods; one at the cap does."""
    from tunelab.benchmarks import compare as bench

    task = TableTask(FLAT_TABLE)
    tunelab_hit, _, _ = bench._one(task, "random (full budget)", 0, target=1.0, limit=cap, workers=1)
    assert tunelab_hit == hit
    pytest.importorskip("optuna")
    from tunelab.benchmarks.optuna_baseline import run_optuna

    assert run_optuna(task, None, 0, target=1.0, max_time=cap) == hit


def test_a_scaling_method_that_does_not_apply_to_a_task_says_so(capsys):
    """median stops runs part-way; subsample runs each level afresh: its scaling line is "n/a"
    and why (it was left out without a word)."""
    from tunelab.cli import main

    code = main(["bench-mf", "--tasks", "subsample", "--seeds", "1", "--methods", "tunelab default",
                 "--workers", "1", "2", "--scaling", "median", "--target-runs", "2", "--reference-runs", "1",
                 "--jobs", "1"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0 and "tunelab default" in out
    assert "median with simulated workers: n/a (it stops runs part-way, and subsample's fidelity" in out
