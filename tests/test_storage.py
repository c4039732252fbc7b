"""Storage: the same behaviour from memory and SQLite, the SQLite file itself (schema, WAL, JSON
only), URL validation, reloading a study, resuming a killed run and concurrent writers."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy

import tunelab as tl
from tunelab.errors import StorageError, StudyExists, StudyNotFound
from tunelab.storage import MemoryStorage, StudyRecord, open_storage
from tunelab.storage import schema
from tunelab.space import config_key
from tunelab.storage.base import owner_is_dead, process_owner
from tunelab.storage.sql import SQLStorage
from tunelab.trial import TrialState

SPACE = {"x": tl.uniform(0.0, 1.0), "k": tl.choice(["a", "b"])}
DEADLINE = 60.0  # seconds a poll may wait before the test gives up (never reached when healthy)


def record(name: str = "s", modes=("min",), metrics=("loss",), seed: int = 3) -> StudyRecord:
    return StudyRecord(id=0, name=name, space=tl.Space(SPACE).to_json(), metrics=list(metrics), modes=list(modes),
                       seed=seed, created_at=1000.5, settings={"objective": None},
                       environment={"python": "3.11", "nested": {"a": [1, 2]}}, user_attrs={"owner": "me"})


def seed_for(number: int) -> int:
    return 100 + number


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request, tmp_path):
    if request.param == "memory":
        store = MemoryStorage()
    elif request.param == "sqlite":
        store = SQLStorage(sqlite_url(tmp_path / "t.db"))
    else:
        store = open_storage(request.getfixturevalue("postgres_url"))
    yield store
    store.close()


def canon(value) -> str:
    """A comparable text for records that may hold NaN (NaN != NaN would defeat ==)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    return json.dumps(value, sort_keys=True, default=str)


def wait_for(condition, what: str, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- the same behaviour from every storage ----------------------------------------------------------
def test_create_get_list_delete(storage):
    created = storage.create_study(record("one"))
    assert created.id > 0 and created.name == "one"
    got = storage.get_study("one")
    assert got.id == created.id
    assert (got.space, got.metrics, got.modes, got.seed) == (tl.Space(SPACE).to_json(), ["loss"], ["min"], 3)
    assert (got.created_at, got.environment, got.user_attrs) == (1000.5, {"python": "3.11", "nested": {"a": [1, 2]}},
                                                                 {"owner": "me"})
    storage.create_study(record("two", modes=("max",)))
    assert [s.name for s in storage.list_studies()] == ["one", "two"]
    storage.delete_study("one")
    assert [s.name for s in storage.list_studies()] == ["two"]
    with pytest.raises(StudyNotFound):
        storage.get_study("one")


def test_study_exists_and_not_found_name_the_study(storage):
    storage.create_study(record("taken"))
    with pytest.raises(StudyExists, match="taken"):
        storage.create_study(record("taken"))
    with pytest.raises(StudyNotFound, match="ghost"):
        storage.get_study("ghost")
    with pytest.raises(StudyNotFound, match="ghost"):
        storage.delete_study("ghost")
    assert len(storage.list_studies()) == 1


def test_returned_records_are_copies(storage):
    study = storage.create_study(record())
    study.user_attrs["owner"] = "someone else"
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    trial.config["x"] = 9.0
    assert storage.get_study("s").user_attrs == {"owner": "me"}
    assert storage.trials(study.id)[0].config == {"x": 0.5, "k": "a"}


def test_create_trial_numbers_each_study_from_zero(storage):
    a, b = storage.create_study(record("a")), storage.create_study(record("b"))
    made = [storage.create_trial(a.id, {"x": i / 10, "k": "a"}, seed_for, owner="me") for i in range(3)]
    other = storage.create_trial(b.id, {"x": 0.0, "k": "b"}, lambda n: 7 * n + 1)
    assert [t.number for t in made] == [0, 1, 2]
    assert [t.seed for t in made] == [100, 101, 102]
    assert (other.number, other.seed) == (0, 1)
    assert all(t.state is TrialState.RUNNING and t.started_at is not None for t in made)
    stored = storage.trials(a.id)
    assert [(t.number, t.seed, t.config) for t in stored] == [(t.number, t.seed, t.config) for t in made]
    assert len({t.id for t in made + [other]}) == 4


def test_create_trial_waiting_has_no_start_time(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for, state=TrialState.WAITING,
                                 system_attrs={"retry_of": 5})
    stored = storage.trials(study.id)[0]
    assert trial.state is stored.state is TrialState.WAITING
    assert trial.started_at is stored.started_at is None
    assert stored.system_attrs == {"retry_of": 5}
    assert storage.running_trials(study.id) == []


def test_create_trial_accepts_state_names(storage):
    study = storage.create_study(record())
    running = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for, state="running")
    waiting = storage.create_trial(study.id, {"x": 0.2, "k": "a"}, seed_for, state="waiting")
    assert running.state is TrialState.RUNNING and running.started_at is not None
    assert waiting.state is TrialState.WAITING and waiting.started_at is None
    assert [t.started_at is not None for t in storage.trials(study.id)] == [True, False]


def test_claim_waiting_takes_the_oldest_once(storage):
    study = storage.create_study(record())
    storage.create_trial(study.id, {"x": 0.0, "k": "a"}, seed_for)  # running: never claimed
    for x in (0.1, 0.2, 0.3):
        storage.create_trial(study.id, {"x": x, "k": "b"}, seed_for, state=TrialState.WAITING)
    claimed = [storage.claim_waiting(study.id, f"worker-{i}", budget=2.0) for i in range(3)]
    assert [t.number for t in claimed] == [1, 2, 3]
    assert [t.config["x"] for t in claimed] == [0.1, 0.2, 0.3]
    assert all(t.state is TrialState.RUNNING and t.budget == 2.0 and t.started_at is not None for t in claimed)
    assert storage.claim_waiting(study.id, "worker-x") is None
    owners = {trial_id: owner for trial_id, owner, _ in storage.running_trials(study.id)}
    assert [owners[t.id] for t in claimed] == ["worker-0", "worker-1", "worker-2"]
    assert all(t.state is TrialState.RUNNING for t in storage.trials(study.id))


def test_claim_waiting_stays_within_its_study(storage):
    a, b = storage.create_study(record("a")), storage.create_study(record("b"))
    storage.create_trial(b.id, {"x": 0.1, "k": "a"}, seed_for, state=TrialState.WAITING)
    assert storage.claim_waiting(a.id, "me") is None
    assert storage.claim_waiting(b.id, "me").number == 0


def test_finish_trial_exactly_once(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    assert storage.finish_trial(trial.id, TrialState.COMPLETED, value=0.25, metrics={"loss": 0.25, "note": "ok"})
    first = storage.trials(study.id)[0]
    assert (first.state, first.value, first.metrics) == (TrialState.COMPLETED, 0.25, {"loss": 0.25, "note": "ok"})
    assert first.finished_at is not None
    assert not storage.finish_trial(trial.id, TrialState.FAILED, value=9.0, metrics={"loss": 9.0}, error="late")
    assert not storage.finish_trial(trial.id, TrialState.COMPLETED, value=1.0)
    assert canon(storage.trials(study.id)[0]) == canon(first)
    assert storage.running_trials(study.id) == []


def test_failed_trial_keeps_error_and_traceback(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    assert storage.finish_trial(trial.id, TrialState.FAILED, error="boom", traceback="Traceback ...\nValueError")
    stored = storage.trials(study.id)[0]
    assert (stored.state, stored.value, stored.error, stored.traceback) == (
        TrialState.FAILED, None, "boom", "Traceback ...\nValueError")


def test_pause_and_resume(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, budget=1.0)
    assert storage.finish_trial(trial.id, TrialState.PAUSED, metrics={"loss": 0.7})
    paused = storage.trials(study.id)[0]
    assert paused.state is TrialState.PAUSED and paused.finished_at is None
    assert storage.running_trials(study.id) == []
    assert storage.resume_trial(trial.id, "second", budget=3.0)
    assert not storage.resume_trial(trial.id, "third", budget=9.0)  # someone else resumed it first
    resumed = storage.trials(study.id)[0]
    assert (resumed.state, resumed.budget) == (TrialState.RUNNING, 3.0)
    assert [owner for _, owner, _ in storage.running_trials(study.id)] == ["second"]
    assert storage.finish_trial(trial.id, TrialState.COMPLETED, value=0.1, metrics={"loss": 0.1})
    assert not storage.resume_trial(trial.id, "fourth", budget=1.0)  # finished trials stay finished
    assert storage.trials(study.id)[0].state is TrialState.COMPLETED


def test_retiring_a_paused_trial_leaves_alone_one_that_another_process_resumed(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, budget=1.0)
    assert storage.finish_trial(trial.id, TrialState.PAUSED, metrics={"loss": 0.7})
    assert storage.resume_trial(trial.id, "other", budget=3.0)
    assert not storage.finish_trial(trial.id, TrialState.PRUNED, value=0.7, paused_only=True)
    assert storage.trials(study.id)[0].state is TrialState.RUNNING
    assert storage.finish_trial(trial.id, TrialState.PAUSED, metrics={"loss": 0.5})
    assert storage.finish_trial(trial.id, TrialState.PRUNED, value=0.5, metrics={"loss": 0.5}, paused_only=True)
    assert (storage.trials(study.id)[0].state, storage.trials(study.id)[0].value) == (TrialState.PRUNED, 0.5)


def test_reports_after_id_and_nan(storage):
    a, b = storage.create_study(record("a")), storage.create_study(record("b"))
    ta = storage.create_trial(a.id, {"x": 0.5, "k": "a"}, seed_for)
    tb = storage.create_trial(b.id, {"x": 0.5, "k": "a"}, seed_for)
    ids = [storage.add_report(a.id, ta.id, 1, {"loss": 0.9}, 10.0),
           storage.add_report(b.id, tb.id, 1, {"loss": 0.5}, 10.5),
           storage.add_report(a.id, ta.id, 2.5, {"loss": math.nan, "acc": math.inf}, 11.0),
           storage.add_report(a.id, ta.id, 3, {"loss": -math.inf}, 12.0)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    rows = storage.reports(a.id)
    assert [(rid, tid) for rid, tid, _ in rows] == [(ids[0], ta.id), (ids[2], ta.id), (ids[3], ta.id)]
    assert [(r.step, r.time) for _, _, r in rows] == [(1.0, 10.0), (2.5, 11.0), (3.0, 12.0)]
    diverged = rows[1][2].metrics
    assert isinstance(diverged["loss"], float) and math.isnan(diverged["loss"]) and diverged["acc"] == math.inf
    assert rows[2][2].metrics["loss"] == -math.inf
    assert [rid for rid, _, _ in storage.reports(a.id, after_id=ids[0])] == [ids[2], ids[3]]
    assert [rid for rid, _, _ in storage.reports(a.id, after_id=ids[1])] == [ids[2], ids[3]]
    assert storage.reports(a.id, after_id=ids[3]) == []
    assert [rid for rid, _, _ in storage.reports(b.id)] == [ids[1]]


def test_nan_metrics_of_a_finished_trial_come_back_as_floats(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    storage.finish_trial(trial.id, TrialState.PRUNED, metrics={"loss": math.nan, "acc": 0.5})
    metrics = storage.trials(study.id)[0].metrics
    assert math.isnan(metrics["loss"]) and metrics["acc"] == 0.5


def test_trial_attrs_user_and_system(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, system_attrs={"retry_of": 1})
    storage.set_trial_attr(trial.id, "params", 1234)
    storage.set_trial_attr(trial.id, "layers", [64, 32])
    storage.set_trial_attr(trial.id, "params", 99)
    storage.set_trial_attr(trial.id, "cancelled", True, system=True)
    stored = storage.trials(study.id)[0]
    assert stored.user_attrs == {"params": 99, "layers": [64, 32]}
    assert stored.system_attrs == {"retry_of": 1, "cancelled": True}


def test_held_seconds_sums_finished_and_running_trials(storage):
    study = storage.create_study(record())
    done, running = (storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for) for _ in range(2))
    storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, state=TrialState.WAITING)  # never started
    storage.finish_trial(done.id, TrialState.COMPLETED, value=1.0, metrics={"loss": 1.0}, at=done.started_at + 30.0)
    now = running.started_at + 100.0
    assert storage.held_seconds(study.id, now) == pytest.approx(30.0 + 100.0)


def test_a_paused_trial_holds_only_its_running_stretches(storage):
    """held counts the stretches a trial ran; its time paused (between a pause and a resume, or
    until it is retired) holds no worker."""
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    assert trial.running_since == trial.started_at and trial.held == 0.0
    storage.finish_trial(trial.id, TrialState.PAUSED, value=1.0, metrics={"loss": 1.0}, at=trial.started_at + 10.0)
    paused = storage.trials(study.id)[0]
    assert (paused.held, paused.running_since) == (pytest.approx(10.0), None)
    assert storage.held_seconds(study.id, trial.started_at + 1000.0) == pytest.approx(10.0)
    assert storage.resume_trial(trial.id, "p", 3.0)
    resumed = storage.trials(study.id)[0]
    assert resumed.running_since >= trial.started_at and resumed.started_at == trial.started_at
    storage.finish_trial(trial.id, TrialState.COMPLETED, value=0.5, metrics={"loss": 0.5}, at=resumed.running_since + 5.0)
    done = storage.trials(study.id)[0]
    assert (done.held, done.running_since, done.duration) == (pytest.approx(15.0), None, pytest.approx(15.0))
    assert storage.held_seconds(study.id, done.finished_at + 1000.0) == pytest.approx(15.0)
    retired = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for)
    storage.finish_trial(retired.id, TrialState.PAUSED, at=retired.started_at + 2.0)
    storage.finish_trial(retired.id, TrialState.PRUNED, at=retired.started_at + 500.0, paused_only=True)
    assert storage.trials(study.id)[1].held == pytest.approx(2.0)


def test_start_clock_moves_a_running_trial_s_start_past_its_wait_in_a_cluster_queue(storage):
    """The time a cluster task waited for a worker is no trial's: its duration and cost count
    from when its objective began (started_at too, on the first stretch, not on a resumed one)."""
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    begun = trial.running_since + 40.0
    storage.start_clock(trial.id, begun)
    storage.start_clock(trial.id, begun - 20.0)  # never back: a task the cluster runs again keeps the first start
    moved = storage.trials(study.id)[0]
    assert (moved.started_at, moved.running_since) == (begun, begun)
    storage.finish_trial(trial.id, TrialState.PAUSED, value=1.0, metrics={"loss": 1.0}, at=begun + 10.0)
    storage.start_clock(trial.id, begun + 50.0)  # not running: nothing moves
    assert storage.trials(study.id)[0].held == pytest.approx(10.0)
    assert storage.resume_trial(trial.id, "p", 3.0)
    resumed = storage.trials(study.id)[0].running_since
    storage.start_clock(trial.id, resumed + 7.0)
    again = storage.trials(study.id)[0]
    assert (again.started_at, again.running_since) == (begun, resumed + 7.0)
    storage.finish_trial(trial.id, TrialState.COMPLETED, value=0.5, metrics={"loss": 0.5}, at=resumed + 12.0)
    assert storage.held_seconds(study.id, resumed + 1000.0) == pytest.approx(15.0)


def test_requeue_puts_a_running_trial_back_as_it_is_and_claiming_keeps_its_budget(storage):
    """An interrupted trial waits with its number, budget, reports and start, still counted, its
    value cleared (the waiting-trial index reads NULL); the next claim hands it out first, at its
    own budget rather than the fresh one."""
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, owner="p", budget=3.0)
    storage.finish_trial(trial.id, TrialState.PAUSED, value=0.4, metrics={"loss": 0.4})
    assert storage.resume_trial(trial.id, "p", 9.0)
    storage.add_report(study.id, trial.id, 4.0, {"loss": 0.3}, 1.0)
    later = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for, state=TrialState.WAITING)
    # a process whose view is stale (the trial has a new owner) changes nothing
    assert not storage.requeue_trial(trial.id, {}, owner="dead") and storage.abandon_trial(
        trial.id, "abandoned", None, owner="dead") == (False, None)
    assert storage.requeue_trial(trial.id, {"interrupted": [{"step": 4.0}]}, owner="p")
    assert not storage.requeue_trial(trial.id, {})  # not running any more
    waiting = storage.trials(study.id)[0]
    assert (waiting.state, waiting.budget, waiting.value, waiting.running_since) == (TrialState.WAITING, 9.0, None, None)
    assert waiting.system_attrs == {"interrupted": [{"step": 4.0}]} and waiting.started_at == trial.started_at
    assert storage.counted_trials(study.id) == 2 and [t for t, _ in storage.paused_trials(study.id)] == []
    claimed = storage.claim_waiting(study.id, "q", budget=1.0)
    assert (claimed.id, claimed.budget, claimed.started_at) == (trial.id, 9.0, trial.started_at)
    assert claimed.running_since is not None and claimed.held >= 0.0
    assert (storage.claim_waiting(study.id, "q", budget=1.0).id, storage.trials(study.id)[1].budget) == (later.id, 1.0)
    assert [r.step for _, tid, r in storage.reports(study.id) if tid == trial.id] == [4.0]


def test_heartbeat_and_running_trials(storage):
    study = storage.create_study(record())
    t0, t1, t2 = (storage.create_trial(study.id, {"x": i / 4, "k": "a"}, seed_for, owner=f"p{i}") for i in range(3))
    storage.finish_trial(t2.id, TrialState.COMPLETED, value=1.0, metrics={"loss": 1.0})
    storage.heartbeat([t0.id], at=5000.0)
    storage.heartbeat([])  # nothing to do, no error
    running = sorted(storage.running_trials(study.id))
    assert [(tid, owner) for tid, owner, _ in running] == [(t0.id, "p0"), (t1.id, "p1")]
    beats = {tid: at for tid, _, at in running}
    assert beats[t0.id] == 5000.0 and beats[t1.id] is not None and beats[t1.id] != 5000.0
    storage.heartbeat([t0.id, t1.id])
    assert all(at > 5000.0 for _, _, at in storage.running_trials(study.id))


def test_trials_after_id_and_ids(storage):
    study = storage.create_study(record())
    made = [storage.create_trial(study.id, {"x": i / 10, "k": "a"}, seed_for) for i in range(5)]
    assert [t.number for t in storage.trials(study.id)] == [0, 1, 2, 3, 4]
    assert [t.number for t in storage.trials(study.id, after_id=made[2].id)] == [3, 4]
    assert sorted(t.number for t in storage.trials(study.id, after_id=made[3].id, ids=[made[0].id, made[4].id])) \
        == [0, 4]
    assert [t.number for t in storage.trials(study.id, after_id=made[4].id, ids=[made[1].id])] == [1]
    assert storage.trials(study.id, after_id=made[4].id) == []
    assert all(t.reports == [] for t in storage.trials(study.id))


def test_update_study_merges(storage):
    study = storage.create_study(record())
    storage.update_study(study.id, settings={"searcher": {"name": "random"}})
    storage.update_study(study.id, settings={"scheduler": {"name": "fifo"}}, user_attrs={"team": "vision"})
    storage.update_study(study.id, user_attrs={"owner": "you"})
    got = storage.get_study("s")
    assert got.settings == {"objective": None, "searcher": {"name": "random"}, "scheduler": {"name": "fifo"}}
    assert got.user_attrs == {"owner": "you", "team": "vision"}


def test_list_studies_counts_and_best(storage):
    low, high = storage.create_study(record("low")), storage.create_study(record("high", modes=("max",)))
    for study in (low, high):
        for value in (0.3, 0.1, 0.7):
            trial = storage.create_trial(study.id, {"x": value, "k": "a"}, seed_for)
            storage.finish_trial(trial.id, TrialState.COMPLETED, value=value, metrics={"loss": value})
        failed = storage.create_trial(study.id, {"x": 0.9, "k": "a"}, seed_for)
        storage.finish_trial(failed.id, TrialState.FAILED, error="boom")
        storage.create_trial(study.id, {"x": 0.9, "k": "b"}, seed_for, state=TrialState.WAITING)
    storage.create_study(record("empty"))
    summaries = {s.name: s for s in storage.list_studies()}
    assert summaries["low"].counts == {"completed": 3, "failed": 1, "waiting": 1}
    assert summaries["low"].n_trials == 5
    assert summaries["low"].best_value == 0.1 and summaries["high"].best_value == 0.7
    assert (summaries["empty"].counts, summaries["empty"].best_value) == ({}, None)


def test_delete_study_leaves_others_intact(storage):
    a, b = storage.create_study(record("a")), storage.create_study(record("b"))
    for study in (a, b):
        trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
        storage.add_report(study.id, trial.id, 1, {"loss": 1.0}, 1.0)
    storage.delete_study("a")
    assert len(storage.trials(b.id)) == 1 and len(storage.reports(b.id)) == 1
    again = storage.create_study(record("a"))  # the name is free again and numbering restarts
    assert storage.create_trial(again.id, {"x": 0.5, "k": "a"}, seed_for).number == 0


def test_a_deleted_study_s_id_is_never_given_again_and_its_handles_get_a_clear_error(storage):
    """SQLite gives the largest id in use plus one: deleting the newest study gave its id to the
    next, and a worker still holding the deleted one wrote its trials into the new study."""
    old = storage.create_study(record("old"))
    trial = storage.create_trial(old.id, {"x": 0.5, "k": "a"}, seed_for)
    storage.delete_study("old")
    new = storage.create_study(record("new"))
    assert new.id != old.id
    for write in (lambda: storage.create_trial(old.id, {"x": 0.1, "k": "a"}, seed_for),
                  lambda: storage.add_report(old.id, trial.id, 1, {"loss": 1.0}, 1.0),
                  lambda: storage.set_trial_attr(trial.id, "note", 1)):
        with pytest.raises(StorageError, match="does not exist"):
            write()
    assert storage.trials(new.id) == [] and storage.reports(new.id) == []


# -- the SQLite file ---------------------------------------------------------------------------------
def test_sqlite_schema_version_wal_json_and_indices(tmp_path):
    path = tmp_path / "t.db"
    SQLStorage(sqlite_url(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM tunelab_meta WHERE key = 'schema_version'").fetchone() == (
            str(schema.SCHEMA_VERSION),)
    inspector = sqlalchemy.inspect(sqlalchemy.create_engine(sqlite_url(path)))
    assert {"tunelab_meta", "tunelab_studies", "tunelab_trials", "tunelab_reports"} <= set(inspector.get_table_names())
    json_columns = {table: {c["name"] for c in inspector.get_columns(table) if isinstance(c["type"], sqlalchemy.JSON)}
                    for table in ("tunelab_studies", "tunelab_trials", "tunelab_reports")}
    assert json_columns == {
        "tunelab_studies": {"space", "metrics", "modes", "settings", "environment", "user_attrs"},
        "tunelab_trials": {"config", "metrics", "user_attrs", "system_attrs"},
        "tunelab_reports": {"metrics"},
    }
    indices = {table: {i["name"]: i["column_names"] for i in inspector.get_indexes(table)}
               for table in ("tunelab_trials", "tunelab_reports")}
    assert indices["tunelab_trials"] == {"ix_trials_study_state_value_number": ["study_id", "state", "value", "number"]}
    assert indices["tunelab_reports"]["ix_reports_study_id"] == ["study_id", "id"]
    assert indices["tunelab_reports"]["ix_reports_trial"] == ["trial_id", "step"]
    unique = inspector.get_unique_constraints("tunelab_trials")
    assert any(u["column_names"] == ["study_id", "number"] for u in unique)


def test_reopening_keeps_the_data_and_the_version_row(tmp_path):
    url = sqlite_url(tmp_path / "t.db")
    first = SQLStorage(url)
    first.create_study(record())
    first.close()
    second = SQLStorage(url)
    assert second.get_study("s").user_attrs == {"owner": "me"}
    second.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        # the schema's version, and the largest study id given (never given again)
        assert conn.execute("SELECT key FROM tunelab_meta ORDER BY key").fetchall() == [("last_study_id",),
                                                                                       ("schema_version",)]


def test_newer_schema_is_refused_with_upgrade_advice(tmp_path):
    path = tmp_path / "t.db"
    SQLStorage(sqlite_url(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tunelab_meta SET value = ? WHERE key = 'schema_version'", (str(schema.SCHEMA_VERSION + 1),))
    with pytest.raises(StorageError, match="upgrade"):
        SQLStorage(sqlite_url(path))


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_only_strict_json_is_stored_never_pickle(tmp_path):
    path = tmp_path / "t.db"
    url = sqlite_url(path)
    study = tl.create_study(SPACE, metric="loss", mode="min", name="diverged", storage=url, seed=1)
    trial = study.ask()
    trial.report(1, loss=0.5)
    trial.report(2, loss=float("nan"), grad_norm=float("inf"))
    trial.set_user_attr("history", [1.5, float("nan")])
    with pytest.warns(UserWarning, match="failed"):
        study.tell(trial, float("nan"))
    other = study.ask()
    study.tell(other, {"loss": 0.2, "extra": float("-inf")})
    study.storage.close()

    conn = sqlite3.connect(path)
    checked = 0
    for table in ("tunelab_studies", "tunelab_trials", "tunelab_reports"):
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        json_columns = [c for c in columns if c in {"space", "metrics", "modes", "settings", "environment",
                                                     "user_attrs", "config", "system_attrs"}]
        for column in columns:  # nothing binary anywhere: no pickled blobs
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE typeof({column}) = 'blob'").fetchone() == (0,)
        for column in json_columns:
            for (text,) in conn.execute(f"SELECT {column} FROM {table}"):
                if text is not None:
                    _strict_json(text)
                    checked += 1
    conn.close()
    assert checked > 10

    reopened = SQLStorage(url)
    record_ = reopened.get_study("diverged")
    reports = reopened.reports(record_.id)
    assert [r.metrics["loss"] for _, _, r in reports][0] == 0.5
    assert math.isnan(reports[1][2].metrics["loss"]) and reports[1][2].metrics["grad_norm"] == math.inf
    first, second = reopened.trials(record_.id)
    assert first.state is TrialState.FAILED and first.value is None
    assert first.user_attrs["history"][0] == 1.5
    assert second.metrics == {"loss": 0.2, "extra": -math.inf}
    reopened.close()


# -- who owns a running trial ------------------------------------------------------------------------
def test_owner_is_dead_only_when_its_process_is_gone(tmp_path):
    assert not owner_is_dead(process_owner())
    assert not owner_is_dead(None) and not owner_is_dead("garbage")
    assert not owner_is_dead("some-other-host:1:1")
    proc = _run_python("import sys, time\nfrom tunelab.storage.base import process_owner\n"
                       "print(process_owner(), flush=True)\ntime.sleep(120)\n", tmp_path, "owner")
    try:
        owner = proc.stdout.readline().strip()
        assert owner.split(":")[1] == str(proc.pid)
        assert not owner_is_dead(owner)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: owner_is_dead(owner), "the killed (not yet reaped) process to count as dead")
    proc.communicate()
    assert owner_is_dead(owner)


# -- storage URLs --------------------------------------------------------------------------------------
def test_memory_urls():
    assert isinstance(open_storage(None), MemoryStorage)
    assert isinstance(open_storage("memory"), MemoryStorage)
    existing = MemoryStorage()
    assert open_storage(existing) is existing


def test_sqlite_relative_path_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_storage("sqlite:///rel.db")
    store.create_study(record())
    store.close()
    assert (tmp_path / "rel.db").is_file()


def test_sqlite_absolute_path(tmp_path):
    path = tmp_path / "abs.db"
    assert str(path).startswith("/")
    store = open_storage(f"sqlite:///{path}")  # four slashes in all
    store.create_study(record())
    store.close()
    assert path.is_file()


@pytest.mark.parametrize("url, message", [
    ("sqlite://x.db", "three slashes"),
    ("x.db", "sqlite:///x.db"),
    ("sqlite:/x.db", "for a file, write 'sqlite:///x.db'"),
    ("sqlite:///:memory:", "storage='memory'"),
    ("mysql://user@host/db", "sqlite:///"),
    ("", "not a URL"),
    ("sqlite:///\x00.db", "holds a NUL character"),
])
def test_bad_urls_get_clear_errors(url, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match=message):
        open_storage(url)
    assert list(tmp_path.iterdir()) == []


def test_a_path_from_the_home_folder_and_a_percent_escape_open_the_file_the_cli_finds(tmp_path, monkeypatch):
    from tunelab.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for url, made in (("sqlite:///~/home.db", "home.db"), ("sqlite:///with%20space.db", "with space.db")):
        store = open_storage(url)
        store.create_study(record())
        store.close()
        assert (tmp_path / made).is_file()
        assert main(["studies", "--storage", url]) == 0  # the same file, not 'no tunelab database'


def test_an_upper_case_sqlite_scheme_opens_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_storage("SQLITE:///upper.db")
    store.create_study(record())
    store.close()
    assert (tmp_path / "upper.db").is_file()


def test_unknown_scheme_lists_what_is_allowed():
    with pytest.raises(StorageError) as info:
        open_storage("mysql://user@host/db")
    message = str(info.value)
    assert "'mysql'" in message and "memory" in message and "sqlite:///" in message and "postgresql://" in message


def test_non_string_storage_is_refused():
    with pytest.raises(StorageError, match="int"):
        open_storage(42)


def test_missing_directory_and_directory_path(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/no/such/dir/t.db")
    with pytest.raises(StorageError, match="is a directory"):
        open_storage(f"sqlite:///{tmp_path}")


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StorageError, match="not a database"):
        open_storage(f"sqlite:///{path}")
    assert path.read_text().startswith("these are my notes")


def test_postgres_without_driver_names_the_extra():
    for driver in ("psycopg", "psycopg2"):
        try:
            __import__(driver)
        except ImportError:
            continue
        pytest.skip(f"{driver} is installed")
    with pytest.raises(StorageError, match=r"tunelab\[postgres\]"):
        open_storage("postgresql://user@localhost/tunelab")


# -- a study written, closed and read again ----------------------------------------------------------
def _trial_view(trial):
    return canon({**dataclasses.asdict(trial), "reports": [dataclasses.asdict(r) for r in trial.reports]})


def test_round_trip_through_sqlite(tmp_path):
    url = sqlite_url(tmp_path / "t.db")
    study = tl.create_study(SPACE, metric=["loss", "acc"], mode=["min", "max"], name="round", storage=url, seed=11)
    study.storage.update_study(study.record.id, user_attrs={"dataset": "cifar10"})
    for i in range(3):
        trial = study.ask()
        assert study.trials[-1].state is TrialState.RUNNING  # the mirror has read it while it runs
        trial.report(1, loss=1.0 - i / 10, acc=0.5)
        trial.report(2, loss=0.8 - i / 10, acc=0.6 + i / 10)
        trial.set_user_attr("index", i)
        study.tell(trial, {"loss": [0.7, 0.6, 0.5][i], "acc": [0.7, 0.8, 0.9][i], "seconds": 3})
    pruned = study.ask()
    pruned.report(1, loss=2.0, acc=0.1)
    study.tell(pruned, state="pruned")
    study.enqueue({"x": 0.25, "k": "b"})
    running = study.ask()  # left running
    before = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.value for t in before] == ["completed"] * 3 + ["pruned", "running"]
    study.storage.close()

    reloaded = tl.load_study("round", storage=url)
    assert [_trial_view(t) for t in reloaded.trials] == [_trial_view(t) for t in before]
    assert reloaded.record.environment == study.record.environment and reloaded.environment["python"]
    assert reloaded.record.user_attrs == {"dataset": "cifar10"}
    assert (reloaded.seed, reloaded.metrics, reloaded.modes, reloaded.space) == (11, ["loss", "acc"], ["min", "max"],
                                                                                  study.space)
    assert reloaded.record.created_at == study.record.created_at
    assert reloaded.record.settings["searcher"] == study.record.settings["searcher"]
    assert reloaded.record.settings["scheduler"]["name"] == "fifo"

    fresh = SQLStorage(url)
    stored = fresh.trials(fresh.get_study("round").id)
    assert [canon({**dataclasses.asdict(t), "reports": []}) for t in stored] == \
        [canon({**dataclasses.asdict(t), "reports": []}) for t in before]
    assert stored[2].metrics == {"loss": 0.5, "acc": 0.9, "seconds": 3.0}
    assert stored[1].user_attrs == {"index": 1}
    assert stored[4].id == running.id and stored[4].config == {"x": 0.25, "k": "b"}
    fresh.close()


# -- several processes ----------------------------------------------------------------------------------
def _run_python(code: str, tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _counts(path: Path) -> dict[str, int]:
    if not path.exists():  # connecting would create it under the writer's feet
        return {}
    conn = sqlite3.connect(path, timeout=30)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM tunelab_trials GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # its tables do not exist yet
        return {}
    finally:
        conn.close()


KILLED_RUN = """
    import time
    import tunelab as tl

    def objective(config, trial):
        time.sleep(0.05)
        trial.report(1, loss=config["x"])
        if trial.number >= 3:
            time.sleep(120)  # a long trial: the kill lands while it runs
        return config["x"]

    tl.tune(objective, {"x": tl.uniform(0.0, 1.0), "k": tl.choice(["a", "b"])}, metric="loss", mode="min",
            n_trials=6, storage="sqlite:///resume.db", name="resume", seed=5, executor="inline", progress=False)
"""


def test_paused_trials_lists_ids_and_budgets_as_they_change(storage):
    study = storage.create_study(record())
    first = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, budget=1.0)
    second = storage.create_trial(study.id, {"x": 0.2, "k": "b"}, seed_for, budget=1.0)
    assert storage.paused_trials(study.id) == []
    storage.finish_trial(first.id, TrialState.PAUSED, metrics={"loss": 0.7})
    storage.finish_trial(second.id, TrialState.PAUSED, metrics={"loss": 0.9})
    assert sorted(storage.paused_trials(study.id)) == [(first.id, 1.0), (second.id, 1.0)]
    storage.resume_trial(first.id, "me", budget=3.0)
    assert storage.paused_trials(study.id) == [(second.id, 1.0)]
    storage.finish_trial(first.id, TrialState.PAUSED, metrics={"loss": 0.5})
    storage.finish_trial(second.id, TrialState.PRUNED)
    assert storage.paused_trials(study.id) == [(first.id, 3.0)]


def test_furthest_steps_are_the_largest_step_each_listed_trial_reported(storage):
    study = storage.create_study(record())
    first = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for, budget=9.0)
    second = storage.create_trial(study.id, {"x": 0.2, "k": "b"}, seed_for, budget=9.0)
    silent = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for, budget=9.0)
    for step in (1, 2, 3, 2):  # a run rolled back onto an earlier checkpoint reports a step again
        storage.add_report(study.id, first.id, step, {"loss": 1.0 / step}, 0.0)
    storage.add_report(study.id, second.id, 1, {"loss": 0.9}, 0.0)
    assert storage.furthest_steps([first.id, second.id, silent.id]) == {first.id: 3.0, second.id: 1.0}
    assert storage.furthest_steps([second.id]) == {second.id: 1.0} and storage.furthest_steps([]) == {}


def test_resume_after_the_process_is_killed(tmp_path):
    path = tmp_path / "resume.db"
    proc = _run_python(KILLED_RUN, tmp_path, "killed")
    try:
        wait_for(lambda: proc.poll() is not None or (_counts(path).get("completed", 0) >= 3
                                                     and _counts(path).get("running", 0) == 1),
                 "three completed trials and one running")
        assert proc.poll() is None, proc.communicate()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()  # reaps it, so its pid is gone
    url = sqlite_url(path)
    before = {t.number: t for t in tl.load_study("resume", storage=url).trials}
    dead = [t for t in before.values() if t.state is TrialState.RUNNING]
    assert len(dead) == 1
    dead = dead[0]
    completed_before = {n: t for n, t in before.items() if t.state is TrialState.COMPLETED}
    assert len(completed_before) >= 3

    study = tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=6, storage=url,
                    name="resume", seed=5, executor="inline", progress=False)
    trials = study.trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == len(trials)
    by_number = {t.number: t for t in trials}
    abandoned = by_number[dead.number]
    assert abandoned.state is TrialState.FAILED and abandoned.error.startswith("abandoned")
    retries = [t for t in trials if t.system_attrs.get("retry_of") == dead.number]
    assert len(retries) == 1
    retry = retries[0]
    assert (retry.config, retry.seed, retry.state) == (dead.config, dead.seed, TrialState.COMPLETED)
    assert retry.value == dead.config["x"]
    for number, old in completed_before.items():
        assert _trial_view(by_number[number]) == _trial_view(old)
    completed = [t for t in trials if t.state is TrialState.COMPLETED]
    assert len(completed) == 6
    assert len(trials) == 7 and [t.state for t in trials].count(TrialState.FAILED) == 1

    again = tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=6, storage=url,
                    name="resume", seed=5, executor="inline", progress=False)
    assert len(again.trials) == 7  # a finished study stays finished


ASK_TELL_WORKER = """
    import os, sys, time
    import tunelab as tl

    url, go, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    study = tl.load_study("shared", storage=url)
    while not os.path.exists(go):
        time.sleep(0.01)
    for i in range(50):
        trial = study.ask()
        trial.report(1, loss=trial.config["x"])
        study.tell(trial, trial.config["x"] + worker)
    print("done", worker)
"""


def _start_together(procs, go: Path):
    """Release workers at once (each waits for the go file) and return their outputs."""
    go.write_text("go")
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        outputs.append((proc.returncode, out, err))
    return outputs


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request, tmp_path) -> str:
    """A database URL that several processes open at once."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "shared.db")
    return request.getfixturevalue("postgres_url")


def test_concurrent_ask_tell_loses_nothing(tmp_path, shared_url):
    url = shared_url
    tl.create_study(SPACE, metric="loss", mode="min", name="shared", storage=url, seed=0).storage.close()
    go = tmp_path / "go"
    procs = [_run_python(ASK_TELL_WORKER, tmp_path, "asktell", url, str(go), str(w)) for w in range(4)]
    for returncode, out, err in _start_together(procs, go):
        assert returncode == 0, err
        assert "locked" not in err.lower()
        assert out.startswith("done")
    study = tl.load_study("shared", storage=url)
    # Trials two processes were given with one configuration at the same moment: the later gave way
    # (cancelled before it ran, its place in n_trials given back) and its process asked again.
    twins = [t for t in study.trials if t.state is TrialState.FAILED and not t.failed_itself]
    trials = [t for t in study.trials if t not in twins]
    assert len(trials) == 200 and study.counted_trials() == 200
    assert len({config_key(t.config) for t in trials}) == 200
    assert sorted(t.number for t in study.trials) == list(range(200 + len(twins)))
    assert all(t.state is TrialState.COMPLETED for t in trials)
    assert all(len(t.reports) == 1 for t in trials)
    assert sorted(int(t.value - t.config["x"] + 0.5) for t in trials) == sorted(w for w in range(4) for _ in range(50))
    assert len({t.seed for t in trials}) == 200


CLAIM_WORKER = """
    import json, os, sys, time
    from tunelab.storage import open_storage

    url, go, worker, study_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    storage = open_storage(url)
    while not os.path.exists(go):
        time.sleep(0.01)
    claimed = []
    while (trial := storage.claim_waiting(study_id, "worker-" + worker)) is not None:
        claimed.append(trial.number)
    print(json.dumps(claimed))
"""


def test_concurrent_claims_take_each_waiting_trial_once(tmp_path, shared_url):
    url = shared_url
    study = tl.create_study(SPACE, metric="loss", mode="min", name="queue", storage=url, seed=0)
    for i in range(40):
        study.enqueue({"x": i / 40, "k": "a"})
    study.storage.close()
    go = tmp_path / "go"
    procs = [_run_python(CLAIM_WORKER, tmp_path, "claim", url, str(go), str(w), str(study.record.id))
             for w in range(4)]
    claims = []
    for returncode, out, err in _start_together(procs, go):
        assert returncode == 0, err
        claims.append(json.loads(out))
    everything = [n for claimed in claims for n in claimed]
    assert sorted(everything) == list(range(40))
    assert all(claimed == sorted(claimed) for claimed in claims)  # each worker took the oldest first
    store = open_storage(url)
    owners = {tid: owner for tid, owner, _ in store.running_trials(study.record.id)}
    by_number = {t.number: t.id for t in store.trials(study.record.id)}
    for worker, claimed in enumerate(claims):
        assert all(owners[by_number[n]] == f"worker-{worker}" for n in claimed)
    store.close()


# -- budget, cancellation, abandonment, big-study queries (every storage) ------------------------------
def test_limit_spends_the_budget_atomically_and_cancel_gives_it_back(storage):
    study = storage.create_study(record())
    made = [storage.create_trial(study.id, {"x": i / 10, "k": "a"}, seed_for, limit=3) for i in range(4)]
    assert [t.number for t in made[:3]] == [0, 1, 2] and made[3] is None
    assert storage.counted_trials(study.id) == 3
    assert len(storage.trials(study.id)) == 3  # the refused trial left nothing behind, not even a number
    assert storage.cancel_trial(made[1].id, "cancelled: stopped")
    assert not storage.cancel_trial(made[1].id, "cancelled: again")
    assert storage.counted_trials(study.id) == 2
    cancelled = storage.trials(study.id)[1]
    assert (cancelled.state, cancelled.error, cancelled.system_attrs) == (
        TrialState.FAILED, "cancelled: stopped", {"cancelled": True})
    assert storage.create_trial(study.id, {"x": 0.9, "k": "b"}, seed_for, limit=3).number == 3
    assert storage.create_trial(study.id, {"x": 0.9, "k": "b"}, seed_for, limit=3) is None
    uncounted = storage.create_trial(study.id, {"x": 0.9, "k": "b"}, seed_for, limit=3, counted=False)
    assert uncounted.number == 4 and storage.counted_trials(study.id) == 3
    storage.finish_trial(made[0].id, TrialState.COMPLETED, value=0.1, metrics={"loss": 0.1})
    assert not storage.cancel_trial(made[0].id, "cancelled: too late")
    assert storage.counted_trials(study.id) == 3


def test_abandon_fails_and_requeues_once(storage):
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.4, "k": "b"}, seed_for, owner="gone:1:1")
    failed, retry = storage.abandon_trial(trial.id, "abandoned: gone", {"retry_of": trial.number, "attempt": 2})
    assert failed and retry.state is TrialState.WAITING and (retry.config, retry.seed) == (trial.config, trial.seed)
    assert retry.system_attrs == {"retry_of": 0, "attempt": 2}
    assert storage.abandon_trial(trial.id, "abandoned: again", {"retry_of": trial.number}) == (False, None)
    assert storage.counted_trials(study.id) == 1  # the retry takes the place of the trial it repeats
    stored = storage.trials(study.id)
    assert [(t.number, t.state) for t in stored] == [(0, TrialState.FAILED), (1, TrialState.WAITING)]
    assert stored[0].error == "abandoned: gone"
    waiting = storage.create_trial(study.id, {"x": 0.1, "k": "a"}, seed_for, state=TrialState.WAITING)
    assert storage.abandon_trial(waiting.id, "abandoned", None) == (False, None)  # only running trials


def test_top_last_and_counts_of_a_study(storage):
    study, other = storage.create_study(record()), storage.create_study(record("other"))
    values = [0.5, 0.2, None, 0.9, 0.2, 0.7]
    for value in values:
        trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
        if value is not None:
            storage.finish_trial(trial.id, TrialState.COMPLETED, value=value, metrics={"loss": value})
    storage.finish_trial(storage.create_trial(other.id, {"x": 0.5, "k": "a"}, seed_for).id,
                         TrialState.COMPLETED, value=-1.0)
    assert [(t.number, t.value) for t in storage.top_trials(study.id, 3, descending=False)] == [
        (1, 0.2), (4, 0.2), (0, 0.5)]
    assert [t.number for t in storage.top_trials(study.id, 2, descending=True)] == [3, 5]
    assert [t.number for t in storage.top_trials(study.id, 100, descending=False)] == [1, 4, 0, 5, 3]
    assert [t.number for t in storage.last_trials(study.id, 2)] == [4, 5]
    assert [t.number for t in storage.last_trials(study.id, 100)] == [0, 1, 2, 3, 4, 5]
    assert storage.count_states(study.id) == {"completed": 5, "running": 1}
    assert storage.count_states(other.id) == {"completed": 1}


def test_the_questions_of_a_large_study_use_indices(tmp_path):
    """Claiming a waiting trial, the best k, the last k, the counts and the running trials are
    answered from an index (SQLite's plan never scans the trials table): their cost does not grow
    with the study. Checked on the query plans, not on timings."""
    store = SQLStorage(sqlite_url(tmp_path / "t.db"))
    study = store.create_study(record())
    for i in range(50):
        trial = store.create_trial(study.id, {"x": i / 50, "k": "a"}, seed_for)
        store.finish_trial(trial.id, TrialState.COMPLETED, value=i / 50, metrics={"loss": i / 50})
    store.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    questions = [
        "SELECT id FROM tunelab_trials WHERE study_id = 1 AND state = 'waiting' ORDER BY number LIMIT 1",
        "SELECT * FROM tunelab_trials WHERE study_id = 1 AND state = 'completed' AND value IS NOT NULL "
        "ORDER BY value, number LIMIT 100",
        "SELECT * FROM tunelab_trials WHERE study_id = 1 ORDER BY number DESC LIMIT 100",
        "SELECT id, owner, heartbeat_at FROM tunelab_trials WHERE study_id = 1 AND state = 'running'",
        "SELECT counted_trials FROM tunelab_studies WHERE id = 1",
    ]
    for question in questions:
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + question))
        assert "USING" in plan and not plan.startswith("SCAN"), (question, plan)
    conn.close()


def test_a_non_finite_user_attribute_comes_back_a_float(storage):
    """It came back as the string 'Infinity' (metrics were turned back, attributes were not)."""
    study = storage.create_study(record())
    trial = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    storage.set_trial_attr(trial.id, "best", math.inf)
    storage.set_trial_attr(trial.id, "history", [1.0, -math.inf, "text"])
    stored = storage.trials(study.id)[0].user_attrs
    assert stored == {"best": math.inf, "history": [1.0, -math.inf, "text"]}


def test_a_database_password_never_reaches_a_message():
    from tunelab.storage.base import hide_password

    assert hide_password("postgresql+psycopg://lab:s3cr:et@db.example:5432/tunelab") == \
        "postgresql+psycopg://lab:***@db.example:5432/tunelab"
    assert hide_password("postgresql://lab@db/tunelab") == "postgresql://lab@db/tunelab"
    assert hide_password("sqlite:///tunelab.db") == "sqlite:///tunelab.db"


def test_a_study_missing_from_a_database_is_named_without_its_password(postgres_url):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="s3cret").render_as_string(hide_password=False)
    with pytest.raises((StorageError, StudyNotFound)) as caught:  # trust authentication: any password opens it
        open_storage(url).get_study("nope")
    assert "s3cret" not in str(caught.value)
