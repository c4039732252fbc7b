"""Ask and tell as a user drives them by hand: threads sharing one Study, what a pruned or
failed trial is told, and the records a study hands out."""

from __future__ import annotations

import threading

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.storage import MemoryStorage
from tunelab.trial import TrialState

SPACE = {"x": tl.uniform(0.0, 1.0), "epochs": tl.randint(1, 10)}


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    return MemoryStorage() if request.param == "memory" else f"sqlite:///{tmp_path / 'study.db'}"


def make(storage=None, **kwargs) -> tl.Study:
    options = dict(metric="loss", mode="min", name="s", seed=1)
    options.update(kwargs)
    return tl.create_study(SPACE, storage=storage, **options)


def test_threads_sharing_one_study_each_ask_and_tell_as_one_loop_would(storage):
    study = make(storage, n_trials=24)
    told, errors = [], []

    def loop() -> None:
        try:
            while True:
                try:
                    trial = study.ask()
                except tl.TrialLimitReached:
                    return
                trial.report(1, loss=trial.config["x"])
                told.append(study.tell(trial, trial.config["x"]))
        except Exception as err:  # what the test reports, instead of a thread dying quietly
            errors.append(err)

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(t.number for t in told) == list(range(24))  # no number cancelled as another thread's twin
    assert all(t.state is TrialState.COMPLETED and t.value == t.config["x"] for t in told)
    assert study.counts(cancelled_apart=True) == {"completed": 24}
    assert len({(t.config["x"], t.config["epochs"]) for t in study.trials}) == 24


@pytest.mark.parametrize("state", ["pruned", "failed"])
def test_a_number_told_with_a_pruned_or_failed_trial_is_kept_as_its_metric(state, storage):
    study = make(storage)
    trial = study.ask()
    ended = study.tell(trial, 0.7, state=state)
    assert (ended.state.value, ended.metrics) == (state, {"loss": 0.7})
    outside = study.tell(config={"x": 0.5, "epochs": 3}, value=0.6, state=state)
    assert outside.metrics == {"loss": 0.6}
    assert [t.metrics for t in tl.load_study("s", storage=study.storage).trials] == [{"loss": 0.7}, {"loss": 0.6}]


@pytest.mark.parametrize("value, said", [
    ({"loss": "abc"}, "metric 'loss' must be a number; got str 'abc'"),
    ({"loss": object()}, "metric 'loss' must be a number; got object"),
    ({1: 0.3}, "metric names must be strings; got 1"),
    ([0.1, 0.2], "tell takes a number or a dict of metrics; got list"),
])
def test_what_a_pruned_trial_cannot_be_told_is_refused_and_leaves_it_running(value, said, storage):
    study = make(storage)
    trial = study.ask()
    trial.report(1, loss=0.4)
    with pytest.raises(ConfigError, match=r"^tell: ") as refused:
        study.tell(trial, value, state="pruned")
    assert said in str(refused.value)
    assert [t.state for t in tl.load_study("s", storage=study.storage).trials] == [TrialState.RUNNING]
    assert study.tell(trial, state="pruned").metrics == {"loss": 0.4}  # its last report, told properly after


def test_a_failed_trial_keeps_what_no_json_holds_as_text_as_a_completed_one_does(storage):
    study = make(storage)
    failed = study.tell(study.ask(), {"loss": 0.2, "model": object()}, state="failed", error="out of memory")
    assert failed.state is TrialState.FAILED and failed.metrics["model"].startswith("<object object")


def test_an_outside_result_of_the_wrong_shape_is_said_in_tells_words():
    study = make()
    with pytest.raises(ConfigError, match=r"^tell: tell takes a number or a dict of metrics; got list"):
        study.tell(config={"x": 0.5, "epochs": 3}, value=[0.3])
    with pytest.raises(ConfigError, match=r"^tell: told None and never reported 'loss'"):
        study.tell(config={"x": 0.5, "epochs": 3})
    assert study.trials == []


def test_changing_a_trial_the_study_handed_out_changes_no_record_of_it(storage):
    study = make(storage, searcher="tpe")
    for _ in range(3):
        trial = study.ask()
        trial.report(1, loss=0.9)
        trial.set_user_attr("note", {"tags": ["a"]})
        study.tell(trial, {"loss": trial.config["x"], "acc": 0.5})
    best = study.best
    kept = (dict(best.config), best.value)
    best.config["epochs"] = 200  # the final run of the best configuration, for longer
    best.metrics["acc"] = 1.0
    best.user_attrs["note"]["tags"].append("b")
    best.reports.clear()
    for handed in (study.trials[best.number], study.best_trials[0], study.get_trial(best.number)):
        handed.config["x"] = -1.0
    told = study.tell(best.number, best.value)  # told twice: the record it returns is a copy as well
    told.config["epochs"] = 300
    again = study.best
    assert (again.config, again.value) == kept
    assert again.metrics["acc"] == 0.5 and again.user_attrs["note"] == {"tags": ["a"]}
    assert [r.step for r in again.reports] == [1.0]
    assert again == tl.load_study("s", storage=study.storage).best
    study.tell(study.ask(), 0.99)  # the searcher learns from the configurations that were run
    assert all(1 <= t.config["epochs"] <= 10 and 0 <= t.config["x"] <= 1 for t in study.history().trials)


def test_get_trial_takes_a_number_not_a_flag():
    study = make()
    study.tell(study.ask(), 0.1)
    study.tell(study.ask(), 0.2)
    assert study.get_trial(1).value == 0.2
    with pytest.raises(ConfigError, match="no trial number True"):
        study.get_trial(True)


def test_values_told_beside_the_metric_are_kept_as_json_holds_them(storage):
    import numpy as np

    study = make(storage)
    told = {"loss": 0.1, "per_class": [0.9, 0.8], "converged": True, "flag": np.bool_(False),
            "sizes": {"a": (1, 2)}, "array": np.array([1.5, 2.5]), "model": object()}
    done = study.tell(study.ask(), told)
    expected = {"loss": 0.1, "per_class": [0.9, 0.8], "converged": True, "flag": False, "sizes": {"a": [1, 2]},
                "array": [1.5, 2.5]}
    assert {k: v for k, v in done.metrics.items() if k != "model"} == expected
    assert done.metrics["model"].startswith("<object object")  # no JSON holds it: its text
    assert tl.load_study("s", storage=study.storage).trials[0].metrics == done.metrics


@pytest.mark.parametrize("value, state", [
    ({"loss": 0.1, "grad_norm": float("nan")}, "completed"),  # a NaN beside the metric is kept for the record
    ({"grad_norm": 2.0}, "failed"),
    ({"loss": float("nan")}, "pruned"),
])
def test_the_same_result_told_twice_is_fine_for_every_end(value, state, storage):
    study = make(storage)
    trial = study.ask()
    first = study.tell(trial, value, state=state)
    assert study.tell(trial, dict(value), state=state) == first
    assert tl.load_study("s", storage=study.storage).tell(trial.number, dict(value), state=state) == first
    with pytest.raises(ConfigError, match=f"already {state}"):
        study.tell(trial, {**value, "grad_norm": 3.0}, state=state)
