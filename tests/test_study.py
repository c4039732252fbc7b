"""The Study's ask/tell face, create_study/load_study argument checks, seeds, Pareto fronts and
the History's orientation of scores."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import ConfigError, SpaceError, StudyNotFound
from tunelab.history import History
from tunelab.storage import MemoryStorage
from tunelab.tracking.seeds import trial_seed
from tunelab.trial import Decision, Trial, TrialState

from faults import dead_owner

SPACE = {"x": tl.uniform(0.0, 1.0), "opt": tl.choice(["sgd", "adam"]),
         "nesterov": tl.choice([True, False], when={"opt": "sgd"}), "epochs": 10}
BASELINE = {"x": 0.5, "opt": "adam", "epochs": 10}


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    return MemoryStorage() if request.param == "memory" else f"sqlite:///{tmp_path / 'study.db'}"


def make(storage=None, **kwargs) -> tl.Study:
    options = dict(metric="loss", mode="min", name="s", seed=1)
    options.update(kwargs)
    return tl.create_study(SPACE, storage=storage, **options)


def stored(study: tl.Study) -> list[Trial]:
    """The trials as a fresh reader of the same storage sees them."""
    return tl.load_study(study.name, storage=study.storage).trials


# -- ask and tell ----------------------------------------------------------------------------------
def test_ask_gives_a_valid_running_trial(storage):
    study = make(storage)
    trial = study.ask()
    assert study.space.validate(trial.config) == trial.config
    assert trial.number == 0 and trial.seed == trial_seed(1, 0)
    assert [t.state for t in stored(study)] == [TrialState.RUNNING]


def test_tell_a_number(storage):
    study = make(storage)
    trial = study.ask()
    done = study.tell(trial, 0.25)
    assert (done.state, done.value, done.metrics) == (TrialState.COMPLETED, 0.25, {"loss": 0.25})
    [again] = stored(study)
    assert (again.state, again.value, again.metrics) == (TrialState.COMPLETED, 0.25, {"loss": 0.25})
    assert study.tell(study.ask(), np.float32(0.5)).value == 0.5


def test_tell_a_dict_keeps_extra_metrics(storage):
    study = make(storage)
    done = study.tell(study.ask(), {"loss": 1.5, "accuracy": 0.7, "note": "fine"})
    assert done.value == 1.5 and done.metrics == {"loss": 1.5, "accuracy": 0.7, "note": "fine"}
    assert stored(study)[0].metrics == {"loss": 1.5, "accuracy": 0.7, "note": "fine"}


def test_tell_none_uses_the_last_reports(storage):
    study = make(storage, metric=["loss", "acc"], mode=["min", "max"])
    trial = study.ask()
    assert trial.report(1, loss=0.9, acc=0.1) is Decision.CONTINUE
    trial.report(2, loss=0.4)
    trial.report(3, acc=0.6)
    done = study.tell(trial)
    assert (done.value, done.metrics) == (0.4, {"loss": 0.4, "acc": 0.6})
    [again] = stored(study)
    assert [r.step for r in again.reports] == [1.0, 2.0, 3.0]
    assert again.reports[0].metrics == {"loss": 0.9, "acc": 0.1}


def test_tell_none_without_reports_is_an_error():
    study = make()
    trial = study.ask()
    with pytest.raises(ConfigError, match="never reported 'loss'"):
        study.tell(trial)
    assert study.trials[0].state is TrialState.RUNNING


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"loss": float("-inf")}])
def test_tell_non_finite_fails_the_trial_with_a_warning(bad, storage):
    study = make(storage)
    trial = study.ask()
    trial.report(1, loss=float("nan"))
    with pytest.warns(UserWarning, match="trial 0 failed"):
        done = study.tell(trial, bad)
    assert done.state is TrialState.FAILED and done.value is None and "loss" in done.error
    [again] = stored(study)
    assert again.state is TrialState.FAILED and math.isnan(again.reports[0].metrics["loss"])
    with pytest.raises(ConfigError):
        study.best


@pytest.mark.parametrize("bad, message", [
    ("0.3", "number or a dict"), (True, "number or a dict"), ([0.1], "number or a dict"),
    ({"accuracy": 0.9}, "'loss'"), ({"loss": "low"}, "'loss' must be a number"), (object(), "number or a dict"),
])
def test_tell_with_a_wrong_type_leaves_the_trial_untouched(bad, message, storage):
    study = make(storage)
    trial = study.ask()
    with pytest.raises(ConfigError, match=message):
        study.tell(trial, bad)
    [same] = stored(study)
    assert (same.state, same.value, same.metrics, same.finished_at) == (TrialState.RUNNING, None, {}, None)
    assert study.tell(trial, 0.1).state is TrialState.COMPLETED


def test_tell_twice(storage):
    study = make(storage)
    trial = study.ask()
    first = study.tell(trial, 0.3)
    assert study.tell(trial, 0.3).value == 0.3  # the same result told twice is fine
    assert study.tell(trial.number, 0.3).value == 0.3
    with pytest.raises(ConfigError, match="already completed with value 0.3"):
        study.tell(trial, 0.4)
    with pytest.raises(ConfigError, match="already completed"):
        study.tell(trial, state="failed")
    [again] = stored(study)
    assert (again.state, again.value, again.finished_at) == (TrialState.COMPLETED, 0.3, first.finished_at)


def test_tell_the_same_dict_twice(storage):
    study = make(storage)
    trial = study.ask()
    study.tell(trial, {"loss": 0.3, "acc": 0.9})
    assert study.tell(trial, {"loss": 0.3, "acc": 0.9}).value == 0.3
    with pytest.raises(ConfigError, match="already completed"):
        study.tell(trial, {"loss": 0.3, "acc": 0.1})


def test_tell_other_states(storage):
    study = make(storage)
    pruned = study.ask()
    pruned.report(1, loss=0.8)
    assert study.tell(pruned, state="pruned").metrics == {"loss": 0.8}
    failed = study.tell(study.ask(), state=TrialState.FAILED, error="out of memory")
    assert (failed.state, failed.error) == (TrialState.FAILED, "out of memory")
    assert [t.state for t in stored(study)] == [TrialState.PRUNED, TrialState.FAILED]


def test_tell_needs_a_trial_or_a_config():
    study = make()
    with pytest.raises(ConfigError, match="config="):
        study.tell(value=0.3)
    with pytest.raises(ConfigError, match="expected a trial"):
        study.tell(True, 0.3)
    with pytest.raises(ConfigError, match="no trial number 7"):
        study.tell(7, 0.3)
    assert study.trials == []


def test_tell_an_outside_evaluation(storage):
    study = make(storage)
    done = study.tell(config={"x": 0.2, "opt": "sgd", "nesterov": True}, value=0.05)
    assert done.state is TrialState.COMPLETED and done.value == 0.05
    assert done.config == {"x": 0.2, "opt": "sgd", "nesterov": True, "epochs": 10}  # constants filled in
    assert done.seed == trial_seed(1, 0)
    [again] = stored(study)
    assert (again.config, again.value) == (done.config, 0.05)
    assert study.best.number == 0


@pytest.mark.parametrize("config, message", [
    ({"x": 1.5, "opt": "adam"}, "'x'"),
    ({"x": 0.5, "opt": "rmsprop"}, "'opt'"),
    ({"x": 0.5, "opt": "adam", "nesterov": True}, "only used when opt == 'sgd'"),
    ({"x": 0.5}, "missing parameter 'opt'"),
    ({"x": 0.5, "opt": "adam", "lr": 0.1}, "unknown parameter 'lr'"),
])
def test_configs_outside_the_space_are_refused(config, message, storage):
    study = make(storage)
    with pytest.raises(SpaceError, match=message):
        study.tell(config=config, value=0.1)
    with pytest.raises(SpaceError, match=message):
        study.enqueue(config)
    assert stored(study) == []


def test_outside_evaluation_with_a_bad_value_stores_nothing(storage):
    study = make(storage)
    with pytest.raises(ConfigError, match="number or a dict"):
        study.tell(config=BASELINE, value="good")
    assert stored(study) == [] and study.trials == []


def test_ask_tell_warns_once_when_a_trial_reports_on_after_its_answer_was_stop_or_pause():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha", seed=0,
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trial.report(1, loss=0.5) is Decision.PAUSE  # its budget: it waits at the rung
    with pytest.warns(UserWarning, match=r"trial 0 reports step 2 after the scheduler answered PAUSE; stop"):
        trial.report(2, loss=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per trial
        trial.report(3, loss=0.3)
    study.tell(trial, 0.3)


def test_a_resumed_trial_that_starts_over_instead_of_loading_its_checkpoint_is_warned_about():
    def starts_over(config, trial):  # never calls trial.load_checkpoint()
        for epoch in range(1, int(trial.budget) + 1):
            trial.report(epoch, loss=config["x"] + 1 / epoch)
        return config["x"] + 1 / trial.budget

    with pytest.warns(UserWarning) as caught:
        tl.tune(starts_over, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha", n_trials=9,
                fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True), seed=0, progress=False)
    pattern = (r"trial \d+ reports step 1 but had reached step 3 before it was paused: a resumed trial goes on "
               r"from its checkpoint \(trial.load_checkpoint\(\)\) instead of starting over")
    assert caught and all(re.fullmatch(pattern, str(w.message)) for w in caught)
    with warnings.catch_warnings():  # a fresh-run fidelity starts over by design
        warnings.simplefilter("error")
        tl.tune(starts_over, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha", n_trials=9,
                fidelity=tl.fidelity("epochs", min=1, max=9), seed=0, progress=False)


def test_ask_keeps_to_the_studys_trial_limit(storage):
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=storage, seed=0, n_trials=2)
    assert study.n_trials == 2
    first, second = study.ask(), study.ask()
    with pytest.raises(tl.TrialLimitReached, match=r"n_trials=2 .*2 running trial\(s\)"):
        study.ask()
    study.tell(first, 1.0)
    study.tell(second, 2.0)
    with pytest.raises(tl.SearchExhausted, match="n_trials=2"):  # the error is a SearchExhausted
        study.ask()
    assert len(study.trials) == 2
    study.n_trials = 3  # raised, and stored
    assert study.ask().number == 2
    assert tl.load_study(study.name, storage=study.storage).n_trials == 3
    with pytest.raises(ConfigError, match="positive integer or None; got 0"):
        study.n_trials = 0
    study.n_trials = None
    assert study.ask().number == 3


def test_at_the_limit_ask_runs_again_a_trial_whose_process_died(storage):
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=storage, seed=0, n_trials=2)
    study.tell(study.ask(), 1.0)
    dead = study.storage.create_trial(study.record.id, BASELINE, study._seed_for, owner=dead_owner())
    retry = study.ask()  # the limit is used up, but the dead process's trial is queued again
    assert retry.config == BASELINE and retry.seed == dead.seed
    study.tell(retry, 0.5)
    with pytest.raises(tl.TrialLimitReached) as raised:
        study.ask()
    assert "running" not in str(raised.value)
    assert study.counts() == {"completed": 2, "failed": 1}
    assert tl.create_study(SPACE, metric="loss", mode="min", storage=storage, seed=0).n_trials is None


def test_enqueued_configs_come_first(storage):
    study = make(storage)
    second = {"x": 0.1, "opt": "sgd", "nesterov": False}
    queued = study.enqueue(BASELINE)
    study.enqueue(second)
    assert queued.state is TrialState.WAITING and queued.config == BASELINE
    first_ask, second_ask, third_ask = study.ask(), study.ask(), study.ask()
    assert first_ask.config == BASELINE and first_ask.number == 0 and first_ask.seed == trial_seed(1, 0)
    assert second_ask.config == {**second, "epochs": 10} and second_ask.number == 1
    assert third_ask.number == 2 and third_ask.config not in (BASELINE, {**second, "epochs": 10})
    assert [t.state for t in stored(study)] == [TrialState.RUNNING] * 3


def test_enqueue_spends_the_trial_limit_and_never_exceeds_it(storage):
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=storage, seed=0, n_trials=2)
    study.enqueue(BASELINE)
    study.enqueue({**BASELINE, "x": 0.1})
    with pytest.raises(tl.TrialLimitReached, match="used all its n_trials=2"):
        study.enqueue({**BASELINE, "x": 0.2})
    asked = [study.ask(), study.ask()]
    for trial in asked:
        study.tell(trial, 0.5)
    with pytest.raises(tl.TrialLimitReached):
        study.ask()
    assert study.counted_trials() == 2 and study.counts() == {"completed": 2}


# -- reports ---------------------------------------------------------------------------------------
def test_report_on_a_finished_trial_is_an_error(storage):
    study = make(storage)
    trial = study.ask()
    trial.report(1, loss=0.5)
    study.tell(trial, 0.5)
    with pytest.raises(ConfigError, match=r"trial.report: trial 0 was told already \(completed\)"):
        trial.report(2, loss=0.4)
    [again] = stored(study)
    assert [r.step for r in again.reports] == [1.0]


def test_user_attrs_are_stored_as_json(storage):
    study = make(storage)
    trial = study.ask()
    assert study.trials[0].user_attrs == {}  # the study's mirror holds the running trial
    trial.set_user_attr("shape", (3, 4))
    trial.set_user_attr("params", np.int64(1234))
    study.tell(trial, 0.5)
    expected = {"shape": [3, 4], "params": 1234}
    assert study.trials[0].user_attrs == expected
    assert stored(study)[0].user_attrs == expected
    with pytest.raises(ConfigError, match="JSON"):
        trial.set_user_attr("model", object())
    assert stored(study)[0].user_attrs == expected


@pytest.mark.parametrize("state", ["running", "waiting", "done"])
def test_tell_refuses_unfinished_or_unknown_states(state):
    study = make()
    trial = study.ask()
    with pytest.raises(ConfigError, match="'completed', 'pruned' or 'failed'"):
        study.tell(trial, 0.1, state=state)
    assert study.trials[0].state is TrialState.RUNNING


# -- best trials -----------------------------------------------------------------------------------
def _told(study, values):
    for value in values:
        study.tell(study.ask(), value)


def test_best_for_min_and_max():
    low = make(name="low")
    _told(low, [0.5, 0.2, 0.9])
    high = make(name="high", metric="acc", mode="max")
    _told(high, [0.5, 0.2, 0.9])
    assert (low.best.number, low.best.value) == (1, 0.2)
    assert (high.best.number, high.best.value) == (2, 0.9)


def test_best_ignores_failed_and_pruned_trials():
    study = make()
    _told(study, [0.5])
    study.tell(study.ask(), state="failed", error="boom")
    pruned = study.ask()
    pruned.report(1, loss=0.01)
    study.tell(pruned, state="pruned")
    assert study.best.number == 0


def test_best_without_completed_trials_is_a_clear_error():
    study = make()
    with pytest.raises(ConfigError, match="no completed trial"):
        study.best
    study.ask()
    with pytest.raises(ConfigError, match="running"):
        study.best


def test_best_trials_is_the_pareto_front():
    study = make(metric=["acc", "lat"], mode=["max", "min"])
    points = [(0.9, 10.0), (0.8, 5.0), (0.7, 20.0), (0.9, 12.0), (0.95, 30.0), (0.8, 5.0), (0.6, 4.0), (0.5, 4.0)]
    for acc, lat in points:
        study.tell(study.ask(), {"acc": acc, "lat": lat})
    study.tell(study.ask(), state="failed")
    with pytest.raises(ConfigError, match="best_trials"):
        study.best
    front = study.best_trials
    expected = {i for i, (a, b) in enumerate(points)
                if not any(a2 >= a and b2 <= b and (a2, b2) != (a, b) for a2, b2 in points)}
    assert expected == {0, 1, 4, 5, 6}
    assert {t.number for t in front} == expected
    assert [t.number for t in front][0] == 4  # ordered by the first metric, best first


def test_the_front_is_found_against_the_front_alone_and_matches_every_pair_checked():
    from tunelab.history import nondominated

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = int(rng.integers(1, 30)), int(rng.integers(1, 4))
        points = np.where(rng.random((n, m)) < 0.5, rng.integers(0, 3, (n, m)), rng.random((n, m))).tolist()
        every_pair = [i for i, p in enumerate(points)
                      if not any(all(o <= v for o, v in zip(q, p)) and q != p for q in points)]
        assert sorted(nondominated(points)) == every_pair  # ties and repeated points included


# -- creating and loading studies ---------------------------------------------------------------------
def test_create_study_with_a_taken_name():
    store = MemoryStorage()
    make(store, name="taken")
    with pytest.raises(ConfigError, match="'taken' already exists"):
        make(store, name="taken")
    with pytest.raises(tl.StudyExists, match="pick another name"):  # the exception its docstring promises
        make(store, name="taken")


def test_load_if_exists():
    store = MemoryStorage()
    first = make(store, name="again")
    _told(first, [0.3])
    same = make(store, name="again", load_if_exists=True)
    assert [t.value for t in same.trials] == [0.3]
    with pytest.raises(ConfigError, match="different search space"):
        tl.create_study({"x": tl.uniform(0.0, 2.0)}, metric="loss", mode="min", name="again", storage=store,
                        load_if_exists=True)
    with pytest.raises(ConfigError, match="optimises"):
        make(store, name="again", mode="max", load_if_exists=True)
    with pytest.raises(ConfigError, match="seed 1"):
        make(store, name="again", seed=2, load_if_exists=True)


def test_load_if_exists_keeps_the_stored_searcher_and_scheduler_unless_others_are_given():
    store, epochs = MemoryStorage(), tl.fidelity("epochs", min=1, max=9, resumable=True)
    setup = dict(searcher="tpe", scheduler="asha", scheduler_options={"promotion": False, "eta": 2})
    first = make(store, name="kept", fidelity=epochs, **setup)
    again = make(store, name="kept", fidelity=epochs, load_if_exists=True)
    assert again.scheduler.describe() == first.scheduler.describe() and again.searcher.name == "tpe"
    assert tl.load_study("kept", storage=store).scheduler.describe()["eta"] == 2  # nothing was overwritten
    other = make(store, name="kept", load_if_exists=True, scheduler="median", searcher="random")
    assert (other.scheduler.name, other.searcher.name) == ("median", "random")  # an explicit choice wins


def test_load_study():
    store = MemoryStorage()
    _told(make(store, name="kept"), [0.3, 0.1])
    assert tl.load_study("kept", storage=store).best.value == 0.1
    with pytest.raises(StudyNotFound, match="'gone'"):
        tl.load_study("gone", storage=store)
    with pytest.raises(ConfigError, match="storage"):
        tl.load_study("kept")


def test_load_study_from_a_database_that_does_not_exist_makes_none(tmp_path, monkeypatch):
    """A mistyped path made an empty database and its lock file there, then said the study was missing
    (which it still says: code that creates a study when none is found goes on working)."""
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///typo.db", f"sqlite:///{tmp_path / 'typo.db'}", "sqlite:///typo.db?mode=ro"):
        with pytest.raises(StudyNotFound, match="no database at .*typo.db"):
            tl.load_study("kept", storage=url)
    assert list(tmp_path.iterdir()) == []


def test_a_study_stored_with_an_option_since_retired_still_opens():
    store = MemoryStorage()
    study = tl.create_study(SPACE, metric="loss", mode="min", name="old", storage=store, searcher="kde",
                            searcher_options={"gamma": 0.2})
    _told(study, [0.3])
    record = store.get_study("old")
    store.update_study(record.id, settings={"searcher": {**record.settings["searcher"], "bandwidth_factor": 3.0}})
    with pytest.warns(UserWarning, match="no longer has the option.*bandwidth_factor"):
        again = tl.load_study("old", storage=store)
    assert again.searcher.gamma == 0.2 and [t.value for t in again.trials] == [0.3]
    with pytest.raises(ConfigError, match="has no option 'bandwidth_factor'"):
        tl.create_study(SPACE, metric="loss", mode="min", storage=store, searcher="kde",
                        searcher_options={"bandwidth_factor": 3.0})


@pytest.mark.parametrize("mode, message", [
    (None, "'min' for a loss"), ("minimize", "'min' or 'max'"), (["min", "max"], "one per metric"),
])
def test_bad_modes(mode, message):
    with pytest.raises(ConfigError, match=message) as info:
        tl.create_study(SPACE, metric="loss", mode=mode)
    assert "'max'" in str(info.value)


@pytest.mark.parametrize("metric", ["", 3, None, [], ["loss", 7], ["loss", "loss"]])
def test_bad_metrics(metric):
    with pytest.raises(ConfigError, match="metric"):
        tl.create_study(SPACE, metric=metric, mode="min")


@pytest.mark.parametrize("name", ["my study", "", "a/b", 42, "x" * 201, ".", ".."])
def test_bad_names(name):
    with pytest.raises(ConfigError, match="study name"):
        tl.create_study(SPACE, metric="loss", mode="min", name=name)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True, 2**63])
def test_bad_seeds(seed):
    with pytest.raises(ConfigError, match="seed"):
        tl.create_study(SPACE, metric="loss", mode="min", seed=seed)


def test_seeds_derive_from_the_study_seed_and_trial_number():
    a, b, c = make(name="a", seed=42), make(name="b", seed=42), make(name="c", seed=43)
    runs = {name: [study.ask() for _ in range(4)] for name, study in (("a", a), ("b", b), ("c", c))}
    assert [t.seed for t in runs["a"]] == [t.seed for t in runs["b"]] == [trial_seed(42, n) for n in range(4)]
    assert [t.config for t in runs["a"]] == [t.config for t in runs["b"]]
    assert len({t.seed for t in runs["a"]}) == 4
    assert not {t.seed for t in runs["a"]} & {t.seed for t in runs["c"]}
    assert all(0 <= t.seed < 2**31 for t in runs["a"])
    assert make(name="unseeded", seed=None).seed >= 0


# -- abandoned trials ------------------------------------------------------------------------------
def test_recover_abandoned_requeues_once():
    study = make()
    store, study_id = study.storage, study.record.id
    dead = store.create_trial(study_id, BASELINE, study._seed_for, owner=dead_owner())
    alive = store.create_trial(study_id, BASELINE, study._seed_for, owner=study.owner)  # ours: left alone
    remote_old = store.create_trial(study_id, BASELINE, study._seed_for, owner="elsewhere:12:34")
    store.heartbeat([remote_old.id], at=1.0)
    remote_fresh = store.create_trial(study_id, BASELINE, study._seed_for, owner="elsewhere:13:34")
    requeued = study.recover_abandoned(stale_after=120.0)
    assert sorted(t.system_attrs["retry_of"] for t in requeued) == [dead.number, remote_old.number]
    by_number = {t.number: t for t in study.trials}
    assert by_number[dead.number].state is TrialState.FAILED
    assert by_number[dead.number].error.startswith("abandoned")
    assert by_number[alive.number].state is by_number[remote_fresh.number].state is TrialState.RUNNING
    retry = next(t for t in requeued if t.system_attrs["retry_of"] == dead.number)
    assert (retry.config, retry.seed, retry.state) == (dead.config, dead.seed, TrialState.WAITING)
    # the retry dies too: with max_retries=1 it is not queued a third time
    claimed = store.claim_waiting(study_id, dead_owner())
    assert claimed.id in {t.id for t in requeued}
    assert [t for t in study.recover_abandoned() if t.system_attrs["retry_of"] == claimed.number] == []


# -- History -----------------------------------------------------------------------------------------
def _trial(number, value, state=TrialState.COMPLETED, **metrics):
    return Trial(id=number + 1, number=number, config={}, seed=0, state=state, value=value, metrics=metrics)


def test_history_score_orientation():
    trials = [_trial(0, 0.5, lat=3.0), _trial(1, 0.9, lat=9.0), _trial(2, None, TrialState.FAILED),
              _trial(3, float("nan")), _trial(4, 0.7, TrialState.RUNNING)]
    maxed = History(lambda: trials, ["acc", "lat"], ["max", "min"])
    assert maxed.score(trials[0]) == -0.5 and maxed.score(trials[1]) == -0.9
    assert maxed.score(trials[0], "lat") == 3.0
    assert maxed.score(trials[2]) == math.inf and maxed.score(trials[3]) == math.inf
    assert maxed.best().number == 1
    minned = History(lambda: trials, ["acc"], ["min"])
    assert minned.score(trials[0]) == 0.5 and minned.best().number == 0
    assert [t.number for t in maxed.pending] == [4] and [t.number for t in maxed.failed] == [2]
    assert History(lambda: [], ["acc"], ["max"]).best() is None


def test_history_loads_lazily():
    loads = []

    def load():
        loads.append(1)
        return [_trial(1, 0.2), _trial(0, 0.1)]

    history = History(load, ["loss"], ["min"], count=lambda: 2)
    assert len(history) == 2 and loads == []
    assert [t.number for t in history.trials] == [0, 1] and loads == [1]
    history.completed, history.best()
    assert loads == [1]


def test_counts_and_get_trial():
    study = make()
    _told(study, [0.1, 0.2])
    study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.tell(study.ask(), float("nan"))
    assert study.counts() == {"completed": 2, "running": 1, "failed": 1}
    assert study.get_trial(1).value == 0.2
    with pytest.raises(ConfigError, match="no trial number 9"):
        study.get_trial(9)


# -- late results and recovery by several tuners at once ----------------------------------------------
def test_a_late_result_is_kept_not_lost(storage):
    study = make(storage)
    told = study.ask()
    study.storage.abandon_trial(told.id, "abandoned: the process running it is gone", None)
    with pytest.warns(UserWarning, match="late result"):
        record = study.tell(told, 0.3)
    assert record.state is TrialState.FAILED
    by_id = {t.id: t for t in stored(study)}
    assert by_id[told.id].state is TrialState.FAILED
    assert by_id[told.id].system_attrs["late_result"]["metrics"] == {"loss": 0.3}
    finished = study.ask()  # a result from an executor, after the trial was failed by a timeout or recovery
    study.storage.abandon_trial(finished.id, "abandoned: gone", None)
    with pytest.warns(UserWarning, match="late result"):
        assert study.finish(finished.id, TrialState.COMPLETED, metrics={"loss": 0.2}).state is TrialState.FAILED
    late = {t.id: t for t in stored(study)}[finished.id].system_attrs["late_result"]
    assert (late["state"], late["metrics"]) == ("completed", {"loss": 0.2})
    with pytest.raises(ConfigError, match="already failed"):  # a trial the user failed is not overwritten
        failed = study.ask()
        study.tell(failed, state="failed")
        study.tell(failed, 0.1)


def test_two_tuners_recovering_at_once_requeue_a_trial_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = tl.create_study(SPACE, metric="loss", mode="min", name="r", storage=url, seed=0)
    dead = first.storage.create_trial(first.record.id, BASELINE, first._seed_for, owner=dead_owner())
    second = tl.load_study("r", storage=url)
    first._sync(), second._sync()  # both saw the trial running before either recovered it
    retries = first.recover_abandoned() + second.recover_abandoned()
    assert len(retries) == 1 and retries[0].system_attrs == {"retry_of": dead.number, "attempt": 2}
    trials = tl.load_study("r", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAILED, TrialState.WAITING]
    assert first.counted_trials() == 1


class _RecordingStorage(MemoryStorage):
    """A memory storage that remembers which trials each mirror sync asked for by id."""

    def __init__(self):
        super().__init__()
        self.asked: list[list[int]] = []

    def trials(self, study_id, *, after_id=0, ids=()):
        self.asked.append(sorted(ids))
        return super().trials(study_id, after_id=after_id, ids=ids)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_mirror_sees_paused_trials_change_elsewhere_without_rereading_them(kind, tmp_path):
    store = _RecordingStorage() if kind == "memory" else f"sqlite:///{tmp_path / 'm.db'}"
    epochs = tl.fidelity("epochs", min=1, max=9, resumable=True)
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="m", storage=store, seed=0,
                            scheduler="asha", fidelity=epochs)
    for _ in range(3):  # three trials paused at the first rung (a fourth ask would promote one)
        trial = study.ask()
        assert trial.report(1, loss=trial.config["x"]) is Decision.PAUSE
        study.tell(trial, trial.config["x"])
    other = tl.load_study("m", storage=study.storage)
    assert [t.state for t in other.trials] == [TrialState.PAUSED] * 3
    paused = other.trials[0]
    if kind == "memory":
        study.storage.asked.clear()
        assert len(other.trials) == 3
        assert study.storage.asked == [[]]  # nothing changed: no paused trial is read again
    study.storage.resume_trial(paused.id, "elsewhere", budget=3.0)
    assert (other.trials[0].state, other.trials[0].budget) == (TrialState.RUNNING, 3.0)
    study.storage.finish_trial(paused.id, TrialState.PAUSED, metrics={"loss": 0.1})
    assert (other.trials[0].state, other.trials[0].budget) == (TrialState.PAUSED, 3.0)
    study.storage.finish_trial(other.trials[1].id, TrialState.PRUNED)
    assert [t.state for t in other.trials] == [TrialState.PAUSED, TrialState.PRUNED, TrialState.PAUSED]


class _WritesDuringTheRead(MemoryStorage):
    """Another process writes, just before the mirror's next read of trials, what ``on_trials`` does."""

    on_trials = None

    def trials(self, study_id, *, after_id=0, ids=()):
        if self.on_trials is not None:
            act, self.on_trials = self.on_trials, None
            act()
        return super().trials(study_id, after_id=after_id, ids=ids)


def test_a_trial_paused_elsewhere_reaches_the_mirror_with_the_report_that_paused_it():
    """Another process reports a rung and pauses its trial between this mirror's reads: seen
    paused without that report, the trial would look as if it never reached the rung."""
    import time

    store = _WritesDuringTheRead()
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="w", storage=store, seed=0,
                            scheduler="asha", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    tl.load_study("w", storage=store).ask()
    (running,) = study.trials
    assert running.state is TrialState.RUNNING

    def elsewhere():
        store.add_report(study.record.id, running.id, 1.0, {"loss": 0.5}, time.time())
        store.finish_trial(running.id, TrialState.PAUSED, metrics={"loss": 0.5})

    store.on_trials = elsewhere
    (paused,) = study.trials
    assert paused.state is TrialState.PAUSED and [r.step for r in paused.reports] == [1.0]
    assert [r.step for r in study.trials[0].reports] == [1.0]  # and only once


def _create_at(url: str, start: float) -> int:
    """Wait for ``start``, then open-or-create study 'race' (run in its own process)."""
    import time

    time.sleep(max(start - time.time(), 0))
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="race",
                            load_if_exists=True, environment={})
    return study.record.id


def test_processes_creating_one_study_at_once_all_get_it_and_leave_one_folder(tmp_path):
    import concurrent.futures
    import multiprocessing
    import time

    url = f"sqlite:///{tmp_path / 'race.db'}"
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        list(pool.map(abs, range(4)))  # the processes are up before the start is set
        ids = list(pool.map(_create_at, [url] * 4, [time.time() + 0.5] * 4))
    assert len(set(ids)) == 1 and len(tl.list_studies(url)) == 1
    assert sorted(p.name for p in (tmp_path / "tunelab-artifacts").iterdir() if p.is_dir()) == ["race"]


@pytest.mark.parametrize("options, error", [
    (dict(scheduler="asha", scheduler_options={"reduction_factor": 3}), "has no option 'reduction_factor'"),
    (dict(scheduler="asha"), "needs a fidelity"),
    (dict(searcher="nope"), "unknown searcher"),
])
def test_a_study_refused_for_its_options_leaves_nothing_behind(tmp_path, options, error):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(ConfigError, match=error):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="r", **options)
    assert tl.list_studies(url) == [] and not (tmp_path / "tunelab-artifacts" / "r").exists()
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="r")  # the name is free


def test_a_study_reopened_with_its_space_written_in_another_order_keeps_its_order(tmp_path):
    """It was refused as "a different search space"."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    space = {"a": tl.uniform(0, 1), "b": tl.choice(["x", "y"])}
    tl.create_study(space, metric="loss", mode="min", name="o", storage=url, seed=1).ask()
    again = tl.create_study({"b": space["b"], "a": space["a"]}, metric="loss", mode="min", name="o", storage=url,
                            load_if_exists=True)
    assert list(again.space.params) == ["a", "b"] and len(again.trials) == 1


def test_a_forked_process_that_dies_with_a_trial_of_the_study_has_it_recovered(tmp_path):
    """A child forked with the Study object took its trials for the parent's: when it died, they
    stayed running for as long as the parent lived."""
    import os

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="fork",
                            storage=f"sqlite:///{tmp_path / 'f.db'}", seed=0)
    pid = os.fork()
    if pid == 0:  # the child: asks, then dies without telling
        try:
            study.ask()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    [orphan] = [t for t in study.trials if t.state is TrialState.RUNNING]
    study.recover_abandoned()
    assert study.get_trial(orphan.number).state is TrialState.FAILED
    assert [t.system_attrs.get("retry_of") for t in study.trials if t.state is TrialState.WAITING] == [orphan.number]


def test_a_study_attribute_set_as_optuna_sets_one_says_what_is_asked_for():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min")
    with pytest.raises(ConfigError, match=r"trial id 'note' does not belong to study .* \(a trial's id, trial.id, is "
                                          r"asked for; in an objective, trial.set_user_attr"):
        study.set_user_attr("note", "baseline run", None)
