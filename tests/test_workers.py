"""Workers sharing one study through one database: `tunelab worker` processes spend the stored
budget exactly, and kill -9 of workers and tuners at random moments loses no trial and runs none
twice. Runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import random

import pytest

import tunelab as tl
from tunelab.storage import open_storage
from tunelab.trial import TrialState

from faults import chains, kill_busy_workers, start_worker
from objectives import SPACE

DEADLINE = 120.0


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def assert_complete_without_loss_or_duplicates(trials, n_trials: int) -> None:
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # numbering never skipped or reused
    assert not [t for t in trials if not t.state.finished]
    groups = chains(trials)
    assert len(groups) == n_trials
    for root, group in groups.items():
        done = [t for t in group if t.state is TrialState.COMPLETED]
        assert len(done) == 1, (root, [(t.number, t.state, t.error) for t in group])  # 0 lost, 0 duplicated
        assert all(t.error.startswith("abandoned") for t in group if t.state is TrialState.FAILED)
        assert {(t.seed, tuple(sorted(t.config.items()))) for t in group} == {
            (done[0].seed, tuple(sorted(done[0].config.items())))}


def test_workers_spend_the_stored_budget_exactly(tmp_path):
    """(The fault test below checks the same exactness on PostgreSQL.)"""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    tl.create_study(SPACE, metric="loss", mode="min", name="shared", storage=url, seed=0, n_trials=10)
    workers = [start_worker(url, "shared", *(["--workers", "2"] if i == 0 else [])) for i in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=DEADLINE)
        assert worker.returncode == 0, err
        assert "worker done: n_trials=10 reached" in out
    study = tl.load_study("shared", storage=url)
    assert study.counted_trials() == 10
    # (a trial given, at the same moment, the configuration of another worker's trial is cancelled before it runs)
    assert [t.state for t in study.trials if not t.system_attrs.get("cancelled")] == [TrialState.COMPLETED] * 10
    assert_complete_without_loss_or_duplicates(study.trials, 10)
    assert len({tuple(sorted(t.config.items())) for t in study.trials if t.state is TrialState.COMPLETED}) == 10
    assert study.record.settings["objective"] == "objectives:sleepy"  # made without one: its trials can be re-run


def test_a_worker_keeps_to_the_max_cost_of_the_run_that_set_the_budget(tmp_path):
    from objectives import sleepy

    url = f"sqlite:///{tmp_path / 'cost.db'}"
    study = tl.tune(sleepy, SPACE, metric="loss", mode="min", n_trials=50, max_cost=0.5, storage=url, name="cost",
                    seed=0, prices=tl.Prices(cpu_hour=3600), progress=False)  # 1 per second: a few trials
    ran = len(study.trials)
    assert ran < 50
    worker = start_worker(url, "cost")
    out, err = worker.communicate(timeout=DEADLINE)
    assert worker.returncode == 0, err
    assert "max_cost=0.5 USD reached" in out and len(tl.load_study("cost", storage=url).trials) == ran


def test_random_kill_9_of_workers_loses_nothing(url):
    """Five kill -9 at random moments, each while the victim runs a trial (single-process workers
    and tuners with worker processes alike); a replacement starts after each kill."""
    n_trials, rng = 16, random.Random(8)
    study = tl.create_study(SPACE, metric="loss", mode="min", name="faults", storage=url, seed=0, n_trials=n_trials)
    store, study_id = open_storage(url), study.record.id
    flavours = [("--max-retries", "10"), ("--max-retries", "10", "--workers", "2")]
    procs = [start_worker(url, "faults", *flavour) for flavour in flavours]
    kills = kill_busy_workers(procs, store, study_id, 5, rng, lambda: start_worker(url, "faults", *flavours[0]))
    assert kills == 5
    for proc in procs:
        out, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode in (0, -9), err
    final = start_worker(url, "faults", "--max-retries", "10")  # finishes whatever the last kills left
    out, err = final.communicate(timeout=DEADLINE)
    assert final.returncode == 0, err
    trials = tl.load_study("faults", storage=url).trials
    assert sum(t.state is TrialState.FAILED for t in trials) >= 5  # every kill abandoned at least one trial
    assert_complete_without_loss_or_duplicates(trials, n_trials)
    assert store.counted_trials(study_id) == n_trials
    store.close()
