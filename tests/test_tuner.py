"""The tuning loop: budgets, failures, schedulers' decisions, baselines, resume."""

from __future__ import annotations

import math

import warnings

import pytest

import tunelab as tl
from tunelab.trial import Decision, TrialState

from objectives import SPACE, always_failing, quadratic, quadratic_float, sometimes_failing


def run(objective=quadratic, **kwargs):
    options = dict(metric="loss", mode="min", n_trials=8, seed=0, progress=False)
    options.update(kwargs)
    return tl.tune(objective, SPACE, **options)


def test_tune_records_every_trial_with_reports_and_best():
    study = run()
    assert [t.number for t in study.trials] == list(range(8))
    assert all(t.state is TrialState.COMPLETED for t in study.trials)
    assert all(len(t.reports) == 3 and [r.step for r in t.reports] == [1.0, 2.0, 3.0] for t in study.trials)
    best = min(study.trials, key=lambda t: t.value)
    assert study.best.number == best.number
    assert study.best.value == pytest.approx((best.config["x"] - 1) ** 2 + (0.5 if best.config["kind"] == "b" else 0))
    assert study.best.metrics["accuracy"] == pytest.approx(1 / (1 + study.best.value))


def test_objective_with_only_config_and_float_result():
    study = run(quadratic_float, n_trials=4)
    assert all(t.value == pytest.approx((t.config["x"] - 1) ** 2) for t in study.trials)


def test_max_mode_picks_the_largest():
    study = run(metric="accuracy", mode="max")
    assert study.best.value == max(t.value for t in study.trials)


def test_failing_objectives_fail_their_trial_and_the_study_goes_on():
    study = run(sometimes_failing, n_trials=10, max_failures=None)
    by_kind = {}
    for trial in study.trials:
        by_kind.setdefault(trial.number % 5, []).append(trial)
    assert all(t.state is TrialState.COMPLETED for k in (0, 4) for t in by_kind[k])
    assert all(t.state is TrialState.FAILED for k in (1, 2, 3) for t in by_kind[k])
    raised = by_kind[1][0]
    assert raised.error == "ZeroDivisionError: boom" and "Traceback" in raised.traceback
    assert "nan" in by_kind[2][0].error.lower()
    assert "must return a number or a dict" in by_kind[3][0].error
    assert study.best.state is TrialState.COMPLETED


@pytest.mark.parametrize("executor, workers", [("inline", 1), ("processes", 2)])
def test_odd_results_and_sys_exit_fail_their_trial_only_and_say_why(executor, workers):
    from objectives import odd_results

    study = tl.tune(odd_results, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=6, seed=0,
                    progress=False, executor=executor, workers=workers)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.FAILED, TrialState.COMPLETED, TrialState.FAILED,
                                         TrialState.FAILED, TrialState.FAILED, TrialState.COMPLETED]
    assert "must return a number" in trials[0].error and "True" in trials[0].error
    assert trials[1].metrics["hist"] == [0.5, 0.4]  # kept as JSON can hold it
    assert "must return a number" in trials[2].error
    assert trials[3].error.startswith("_Unprintable: (its message could not be made")
    assert trials[4].error == "SystemExit: the objective called sys.exit(2)" if executor == "inline" else \
        "SystemExit" in trials[4].error or "exit" in trials[4].error


@pytest.mark.parametrize("workers", [1, 2])
def test_an_attribute_no_json_holds_fails_its_trial_only(workers):
    from objectives import tags_a_set

    study = tl.tune(tags_a_set, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=4, seed=0,
                    progress=False, workers=workers)
    states = {t.number: t.state for t in study.trials}
    assert states == {0: TrialState.COMPLETED, 1: TrialState.FAILED, 2: TrialState.COMPLETED, 3: TrialState.COMPLETED}
    assert "set_user_attr('tags'): set is not JSON-serialisable" in study.get_trial(1).error
    assert study.get_trial(0).user_attrs["tags"] == ["a", "b"]


def test_diverged_runs_count_toward_max_failures_only_when_they_come_in_a_row(caplog):
    """A large learning rate blows up: that is the configuration's doing, and the search goes on;
    an objective that returns NaN whatever it is given is broken, and the run stops."""
    def blows_up_above_half(config):
        return math.nan if config["x"] > 0.5 else config["x"]

    study = tl.tune(blows_up_above_half, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=30,
                    max_failures=3, seed=0, progress=False)
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    assert len(study.trials) == 30 and len(failed) > 3  # more divergences than max_failures allows failures
    assert all(t.error == "objective returned nan for 'loss' (the run diverged)" for t in failed)
    with caplog.at_level("WARNING", logger="tunelab"):
        broken = tl.tune(lambda config: math.nan, {"x": tl.uniform(0, 1)}, metric="loss", mode="min",
                         n_trials=30, max_failures=3, seed=0, progress=False)
    assert broken.counts() == {"failed": 3}
    assert "max_failures=3 trials in a row diverged (NaN or infinite loss)" in caplog.text


def test_max_failures_stops_a_study_that_only_fails():
    study = run(always_failing, n_trials=100, max_failures=3)
    assert study.counts() == {"failed": 3}
    with pytest.raises(tl.ConfigError, match="no completed trial"):
        study.best


def test_target_stops_the_run():
    study = run(n_trials=500, target=2.0)
    assert study.best.value <= 2.0
    assert len(study.trials) < 500
    assert [t for t in study.trials if t.state is TrialState.COMPLETED][-1].value <= 2.0


def test_patience_stops_when_the_best_stalls():
    study = run(n_trials=500, patience=5)
    values = [t.value for t in study.trials]
    best_at = values.index(min(values))
    assert len(values) == best_at + 1 + 5


def test_timeout_stops_the_run():
    study = run(n_trials=None, timeout=0.5)
    assert len(study.trials) >= 1


def test_a_run_needs_an_end():
    with pytest.raises(tl.ConfigError, match="n_trials, timeout, target or patience"):
        run(n_trials=None)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_trials": 0}, "n_trials must be a positive integer"),
    ({"n_trials": 2.5}, "n_trials must be a positive integer"),
    ({"timeout": -1}, "timeout must be positive"),
    ({"target": float("nan")}, "target must be a finite number"),
    ({"workers": 0}, "workers must be a positive integer"),
    ({"workers": "2", "executor": "processes"}, "^workers must be a positive integer"),  # not "auto: workers..."
    ({"trial_timeout": 0}, "trial_timeout must be a positive number"),
    ({"mode": "maximize"}, "mode must be 'min' or 'max'"),
    ({"mode": None}, "mode is required"),
    ({"metric": ""}, "metric must be a metric name"),
    ({"searcher": "bayes-magic"}, "unknown searcher"),
    ({"scheduler": "fifi"}, "did you mean 'fifo'"),
    ({"executor": "cluster"}, "unknown executor"),
    ({"name": "has space"}, "study name must be"),
    ({"seed": 2**63}, r"seed must be an integer in \[0, 2\*\*63\)"),
    ({"name": "\u00e9" * 101}, "200 bytes at most"),  # 101 letters, 202 bytes: its folder's name
    ({"searcher_options": {"pionts": 3}, "searcher": "grid"}, "has no option 'pionts'"),
])
def test_bad_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(tl.TunelabError, match=message):
        run(**kwargs)


def test_objective_must_be_callable():
    with pytest.raises(tl.ConfigError, match="objective must be a function"):
        tl.tune("train.py", SPACE, metric="loss", mode="min", n_trials=1)


def test_enqueued_baseline_runs_first_and_only_once(tmp_path):
    baseline = {"x": 1.0, "kind": "a", "n": 2}
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = run(enqueue=[baseline], storage=storage, name="b", n_trials=3)
    assert study.trials[0].config == baseline and study.trials[0].value == 0.0
    study = run(enqueue=[baseline], storage=storage, name="b", n_trials=5)
    assert sum(t.config == baseline for t in study.trials) == 1
    with pytest.raises(tl.SpaceError, match="outside"):
        run(enqueue=[{"x": 9.0, "kind": "a", "n": 2}])
    more = [{**baseline, "x": x} for x in (0.1, 0.2, 0.3)]  # 3 new ones, room for 2: nothing queued, nothing run
    with pytest.raises(tl.ConfigError, match="enqueue lists 3 new configurations, and n_trials=7 leaves room for 2"):
        run(enqueue=more, storage=storage, name="b", n_trials=7)
    assert len(run(storage=storage, name="b", n_trials=5).trials) == 5


def test_n_trials_is_the_study_total_so_a_rerun_continues(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = [t.config for t in run(storage=storage, name="total", n_trials=4).trials]
    again = run(storage=storage, name="total", n_trials=4)
    assert len(again.trials) == 4
    more = run(storage=storage, name="total", n_trials=7)
    assert [t.config for t in more.trials[:4]] == first
    assert len(more.trials) == 7


class StopAtStepTwo(tl.Scheduler):
    """A scheduler that stops every odd-numbered trial at its second report."""

    name = "stop-odd"

    def on_report(self, trial, step, metrics, history):
        return Decision.STOP if trial.number % 2 == 1 and step >= 2 else Decision.CONTINUE


def test_scheduler_stop_prunes_the_trial_and_keeps_its_reports():
    study = run(scheduler=StopAtStepTwo("loss", "min"), n_trials=6)
    for trial in study.trials:
        if trial.number % 2:
            assert trial.state is TrialState.PRUNED
            assert [r.step for r in trial.reports] == [1.0, 2.0]
            assert trial.metrics["loss"] == trial.reports[-1].metrics["loss"]
        else:
            assert trial.state is TrialState.COMPLETED and len(trial.reports) == 3


def test_scheduler_stop_also_works_across_processes():
    study = run(scheduler=StopAtStepTwo("loss", "min"), n_trials=6, workers=2)
    assert sorted(t.state.value for t in study.trials) == ["completed"] * 3 + ["pruned"] * 3


def test_same_seed_same_configurations_in_the_same_order():
    a = [t.config for t in run(seed=3).trials]
    b = [t.config for t in run(seed=3).trials]
    c = [t.config for t in run(seed=4).trials]
    assert a == b and a != c


def test_trial_seeds_come_from_the_study_seed():
    a, b = run(seed=3), run(seed=3)
    assert [t.seed for t in a.trials] == [t.seed for t in b.trials]
    assert len({t.seed for t in a.trials}) == len(a.trials)


def test_a_grid_cut_short_by_n_trials_says_which_corner_it_covers():
    space = {"a": tl.choice([1, 2, 3]), "b": tl.uniform(0, 1)}
    with pytest.warns(UserWarning, match=r"grid: n_trials=4 runs 4 of the grid's 9 points, in the grid's order"):
        study = tl.tune(lambda c: c["a"] + c["b"], space, metric="v", mode="min", searcher="grid",
                        searcher_options={"points": 3}, n_trials=4, progress=False)
    assert [t.config["a"] for t in study.trials] == [1, 1, 1, 2]


def test_grid_search_ends_when_the_grid_is_used_up():
    space = {"a": tl.choice([1, 2, 3]), "b": tl.uniform(0, 1)}
    study = tl.tune(lambda c: c["a"] + c["b"], space, metric="v", mode="min", searcher="grid",
                    searcher_options={"points": 2}, progress=False)
    assert len(study.trials) == 6 and len({str(t.config) for t in study.trials}) == 6


def test_study_settings_record_searcher_scheduler_and_objective(tmp_path):
    study = run(storage=f"sqlite:///{tmp_path / 's.db'}", name="rec")
    settings = tl.load_study("rec", storage=f"sqlite:///{tmp_path / 's.db'}").record.settings
    assert settings["searcher"]["name"] == "auto" and settings["scheduler"]["name"] == "fifo"
    assert settings["searcher"]["picked"] and settings["searcher"]["why"]  # auto says what it chose and why
    assert settings["objective"] == "objectives:quadratic"
    assert study.environment["python"]["version"] and study.environment["fingerprint"]


def test_a_study_continued_without_a_searcher_keeps_its_own(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run(searcher="tpe", n_trials=3, storage=storage, name="kept")
    assert run(n_trials=5, storage=storage, name="kept").searcher.name == "tpe"  # not swapped for auto
    assert run(n_trials=6, storage=storage, name="kept", searcher="random").searcher.name == "random"


def test_progress_bar_runs_without_a_terminal(capsys):
    study = run(progress=True, n_trials=3)
    assert len(study.trials) == 3
    assert "best loss" in capsys.readouterr().err


def test_non_finite_values_never_become_the_best():
    study = run(sometimes_failing, n_trials=6, max_failures=None)
    assert math.isfinite(study.best.value)


class StopAfter(tl.Callback):
    """Calls study.stop() when the ``n``-th trial is recorded."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_trial_end(self, study, trial):
        self.seen += 1
        if self.seen == self.n:
            study.stop()


def test_a_callback_ends_the_run_with_study_stop_and_the_next_run_goes_on(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = run(n_trials=20, callbacks=[StopAfter(3)], storage=storage, name="stopped")
    assert [t.state for t in study.trials] == [TrialState.COMPLETED] * 3
    study = run(n_trials=20, storage=storage, name="stopped")
    assert len(study.trials) == 20 and study.counts() == {"completed": 20}


def test_study_stop_lets_the_running_trials_finish():
    study = run(n_trials=20, workers=2, callbacks=[StopAfter(1)])
    assert [t.state for t in study.trials] == [TrialState.COMPLETED] * 2  # the other worker's trial too


def test_study_stop_outside_a_run_says_when_it_works():
    study = run(n_trials=2)
    with pytest.raises(tl.ConfigError, match="tuning run in progress"):
        study.stop()


@pytest.mark.parametrize("scheduler, options, ended", [("median", {}, "pruned"),
                                                       ("asha", {"promotion": False}, "pruned"),
                                                       ("asha", {}, "paused")])
def test_an_objective_that_catches_the_schedulers_stop_is_still_judged_where_it_said(scheduler, options, ended):
    """All 20 trials came out "completed" (under ASHA, every one at the lowest rung)."""
    from mf_objectives import EPOCHS, swallowing
    from mf_objectives import SPACE as MF_SPACE

    with pytest.warns(UserWarning, match="TrialPruned or TrialPaused that trial.report\\(\\) raised was caught"):
        study = tl.tune(swallowing, MF_SPACE, metric="loss", mode="min", n_trials=20, fidelity=EPOCHS,
                        scheduler=scheduler, scheduler_options=options, storage=None, seed=0, progress=False)
    counts = study.counts()
    assert counts.get("pruned", 0) >= 5 and counts.get("completed", 0) >= 1
    assert all(t.budget == EPOCHS.max for t in study.trials if t.state is TrialState.COMPLETED)
    for trial in study.trials:
        if trial.state is TrialState.PRUNED and ended == "pruned":  # judged on what it reported, where it stopped
            assert trial.value == pytest.approx(trial.reports[-1].metrics["loss"]) and trial.reports[-1].step < 9


def test_stale_after_under_two_heartbeats_is_refused():
    """A live trial elsewhere, beating every 10 s, was taken for abandoned and run twice."""
    from tunelab.executors.inline import InlineExecutor
    from tunelab.budgets import Budgets
    from tunelab.tuner import Tuner

    study = tl.create_study(SPACE, metric="loss", mode="min")
    with pytest.raises(tl.ConfigError, match=r"stale_after must be at least 20 s \(two heartbeats"):
        Tuner(study, quadratic, InlineExecutor(), Budgets(n_trials=1), stale_after=5.0)


def test_what_follows_the_first_metric_of_a_study_with_several_says_so():
    space = {"x": tl.uniform(0, 1)}
    two = {"metric": ["acc", "lat"], "mode": ["max", "min"]}
    with pytest.warns(tl.SetupWarning, match="scheduler 'median' judges runs on the first metric, 'acc', alone"):
        tl.create_study(space, **two, scheduler="median", fidelity=tl.fidelity("epochs", min=1, max=9))
    with pytest.warns(tl.SetupWarning, match="searcher 'regularized_evolution' ranks trials on the first metric"):
        tl.create_study({"op": tl.choice(["a", "b"])}, **two, searcher="regularized_evolution")
    with pytest.warns(tl.SetupWarning, match="target and patience follow the first metric, 'acc', alone"):
        tl.tune(lambda c: {"acc": c["x"], "lat": 1 - c["x"]}, space, **two, n_trials=3, patience=2, progress=False)
    with pytest.raises(tl.ConfigError, match=r"warm_start\[0\]: 0.9 lacks \['lat'\]"):  # was taken as a failure
        tl.create_study(space, **two, searcher="bo", searcher_options={"warm_start": [({"x": 0.5}, 0.9)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one metric: nothing to say
        tl.tune(lambda c: c["x"], space, metric="loss", mode="min", n_trials=3, patience=2, progress=False)
