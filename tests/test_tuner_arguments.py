"""tl.tune's arguments as users pass them: numpy numbers, a re-run with a smaller budget, and
refusals that must leave nothing behind in storage."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import tunelab as tl

SPACE = {"x": tl.uniform(-2.0, 2.0)}


def loss(config, trial):
    return (config["x"] - 1) ** 2


def run(**kwargs):
    return tl.tune(loss, SPACE, **{"metric": "loss", "mode": "min", "progress": False, **kwargs})


def test_a_rerun_with_fewer_n_trials_than_the_study_has_runs_nothing_and_returns_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    run(n_trials=5, seed=0, storage=url, name="done")
    study = run(n_trials=2, storage=url, name="done")  # was refused as enqueueing 0 configurations
    assert len(study.trials) == 5 and study.counts() == {"completed": 5}


@pytest.mark.parametrize("arguments", [
    {},  # no budget
    {"n_trials": 2, "executor": "no-such-executor"},
    {"n_trials": 2, "executor": "inline", "workers": 2},
    {"n_trials": 2, "executor_options": {"no_such_option": 1}},
    {"n_trials": 2, "enqueue": [{"x": 9.0}]},  # outside the space
    {"n_trials": 1, "enqueue": [{"x": 0.0}, {"x": 0.5}]},  # more than n_trials
    {"n_trials": 2, "enqueue": {"x": 0.5}},  # one configuration, not a list of them
])
def test_a_refused_call_leaves_no_study_behind(tmp_path, arguments):
    url = f"sqlite:///{tmp_path / 'refused.db'}"
    with pytest.raises(tl.TunelabError):
        run(storage=url, **arguments)
    assert tl.list_studies(url) == []


def test_enqueue_of_one_configuration_says_to_put_it_in_a_list_and_none_is_nothing():
    with pytest.raises(tl.ConfigError, match=r"enqueue is a list of configurations.*got dict \(one configuration: "
                                             r"put it in a list\)"):
        run(n_trials=2, enqueue={"x": 0.5})
    assert len(run(n_trials=2, enqueue=None).trials) == 2


def test_the_same_configuration_enqueued_twice_spends_one_trial():
    study = run(n_trials=2, seed=1, enqueue=[{"x": 0.5}, {"x": 0.5}])
    assert [t.config for t in study.trials][0] == {"x": 0.5} and len(study.trials) == 2


def test_numpy_numbers_are_taken_for_budgets_counts_and_the_seed(tmp_path):
    url = f"sqlite:///{tmp_path / 'numpy.db'}"
    study = run(n_trials=np.int64(3), workers=np.int64(1), max_retries=np.int64(0), seed=np.int64(7),
                target=np.float32(-1.0), timeout=np.float32(60), max_failures=np.int32(5), storage=url, name="np")
    assert len(study.trials) == 3 and study.seed == 7 and type(study.seed) is int
    again = tl.load_study("np", url)
    assert again.record.settings["budgets"]["n_trials"] == 3 and type(again.n_trials) is int
    assert tl.create_study(SPACE, metric="loss", mode="min", seed=np.int64(7)).seed == 7


@pytest.mark.parametrize("value", [float("nan"), 0, -1.0, True])
def test_trial_timeout_must_be_a_positive_number(value):
    with pytest.raises(tl.ConfigError, match="trial_timeout must be a positive number of seconds"):
        run(n_trials=1, trial_timeout=value)


def test_patience_counts_the_trials_a_scheduler_pruned():
    """Only completed trials counted: where a scheduler prunes most, patience=4 ran for dozens."""
    def curve(config, trial):
        for epoch in range(1, 6):
            trial.report(epoch, loss=(config["x"] - 1) ** 2 + 1 / epoch)
        return (config["x"] - 1) ** 2 + 0.2

    study = tl.tune(curve, SPACE, metric="loss", mode="min", progress=False, patience=4, n_trials=300, seed=0,
                    scheduler="median", fidelity=tl.fidelity("epochs", min=1, max=5))
    trials = study.trials
    after_best = trials[trials.index(next(t for t in trials if t.number == study.best.number)) + 1:]
    assert len(after_best) == 4 and any(t.state is tl.TrialState.PRUNED for t in after_best)


def dies_on_its_first_run_of_trial_1(config, trial):
    """Trial 1's worker process dies (a preemption, the OOM killer), once: a marker file in the
    folder named by $DIES_ONCE_DIR says it did."""
    marker = os.path.join(os.environ["DIES_ONCE_DIR"], "died")
    if trial.number == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)
    return config["x"]


def test_a_trial_whose_process_died_counts_toward_max_failures_only_when_it_is_not_run_again(tmp_path, monkeypatch):
    """The README: a trial whose worker died "runs once more ... before it counts as failed"; its
    death counted at once, so max_failures=1 ended the run before its retry ran."""
    monkeypatch.setenv("DIES_ONCE_DIR", str(tmp_path))
    study = tl.tune(dies_on_its_first_run_of_trial_1, SPACE, metric="loss", mode="min", n_trials=3, workers=2,
                    max_failures=1, seed=0, progress=False)
    assert study.counts() == {"completed": 3, "failed": 1}
    assert [t.system_attrs.get("retry_of") for t in study.trials if t.state is tl.TrialState.COMPLETED] \
        .count(1) == 1  # the retry of trial 1 ran


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_an_objective_the_workers_cannot_receive_is_refused_before_a_study_is_made(tmp_path, executor):
    """The pickling check ran as the executor opened, after the study was made: each refused call
    left an empty study (of a new name each time, none being given)."""
    if executor == "dask":
        pytest.importorskip("distributed")
    url, lock = f"sqlite:///{tmp_path / 'unpicklable.db'}", threading.Lock()

    def holds_a_lock(config):
        with lock:
            return config["x"]

    with pytest.raises(tl.ConfigError, match="picklable"):
        tl.tune(holds_a_lock, SPACE, metric="loss", mode="min", n_trials=2, workers=2, executor=executor,
                storage=url, progress=False)
    assert tl.list_studies(url) == []
