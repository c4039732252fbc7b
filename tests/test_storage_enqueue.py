"""A configuration queued once: the storage looks for it and queues it in one atomic step, so that
processes starting one study at once with the same baseline queue it once (memory, SQLite and
PostgreSQL; the last two from several processes at once)."""

from __future__ import annotations

import multiprocessing
import traceback

import pytest

import tunelab as tl
from tunelab.space import config_key
from tunelab.storage import open_storage
from tunelab.study import Study
from tunelab.tracking.environment import capture_environment
from tunelab.tuner import Tuner
from tunelab.trial import TrialState

from test_storage import record, seed_for, sqlite_url, storage  # noqa: F401 (storage: the fixture)

SPACE = {"x": tl.uniform(0.0, 1.0), "k": tl.choice(["a", "b"])}
BASELINE = {"x": 0.5, "k": "a"}
STARTERS = 8


# -- one process ------------------------------------------------------------------------------------
def test_enqueue_once_queues_a_configuration_no_trial_has(storage):
    study = storage.create_study(record())
    first, created = storage.enqueue_once(study.id, {"x": 0.5, "k": "a"}, seed_for)
    assert created and first.state is TrialState.WAITING and (first.number, first.seed) == (0, seed_for(0))
    again, created = storage.enqueue_once(study.id, {"k": "a", "x": 0.5}, seed_for)  # the same, keys reordered
    assert not created and again.id == first.id and again.config == first.config
    other, created = storage.enqueue_once(study.id, {"x": 0.25, "k": "a"}, seed_for)
    assert created and other.number == 1
    assert storage.counted_trials(study.id) == 2 and len(storage.trials(study.id)) == 2


def test_enqueue_once_finds_the_configuration_in_a_trial_of_any_state_and_only_in_its_study(storage):
    study, elsewhere = storage.create_study(record()), storage.create_study(record("elsewhere"))
    tried = storage.create_trial(study.id, {"x": 0.5, "k": "a"}, seed_for)
    storage.finish_trial(tried.id, TrialState.COMPLETED, value=0.1, metrics={"loss": 0.1})
    found, created = storage.enqueue_once(study.id, {"x": 0.5, "k": "a"}, seed_for)
    assert not created and (found.id, found.state, found.value) == (tried.id, TrialState.COMPLETED, 0.1)
    queued, created = storage.enqueue_once(elsewhere.id, {"x": 0.5, "k": "a"}, seed_for)
    assert created and queued.id != tried.id


def test_enqueue_once_at_the_trial_limit(storage):
    study = storage.create_study(record())
    assert storage.enqueue_once(study.id, {"x": 0.5, "k": "a"}, seed_for, limit=1)[1]
    assert storage.enqueue_once(study.id, {"x": 0.1, "k": "a"}, seed_for, limit=1) == (None, False)
    found, created = storage.enqueue_once(study.id, {"x": 0.5, "k": "a"}, seed_for, limit=1)  # queued: found
    assert not created and found.number == 0
    assert storage.counted_trials(study.id) == 1 and len(storage.trials(study.id)) == 1


def test_study_enqueue_queues_a_run_per_call_or_once_when_asked(tmp_path):
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=sqlite_url(tmp_path / "q.db"), seed=0)
    first = study.enqueue(BASELINE)
    assert study.enqueue(dict(BASELINE), once=True).id == first.id
    second = study.enqueue(BASELINE)  # another run of it, asked for
    assert second.id != first.id
    assert [t.config for t in study.trials] == [BASELINE, BASELINE]


# -- several processes at once ----------------------------------------------------------------------
def _objective(config, trial):
    return abs(config["x"] - 0.3)


def _start(url: str, name: str, start, looked, ready, failures) -> None:
    """One process starting the study as users do, at the moment the others do. No process runs a
    trial before every one has looked for the baseline and queued it or not (``ready``, a
    barrier): one that found the study's budget spent by the others would refuse its baseline
    (tl.tune's own check). With ``looked`` (a barrier too), every process has also looked for the
    baseline before any queues it: the gap between the look and the enqueue, where the race lay,
    is stretched to certainty."""
    try:
        enqueue, run = Study.enqueue, Tuner.run

        def after_all_looked(study, config, **options):
            if options.get("retry_of") is None:
                looked.wait(timeout=60)
            return enqueue(study, config, **options)

        def when_all_ready(tuner):
            ready.wait(timeout=60)
            return run(tuner)

        if looked is not None:
            Study.enqueue = after_all_looked  # this forked process's own classes
        Tuner.run = when_all_ready
        start.wait(timeout=60)
        tl.tune(_objective, SPACE, metric="loss", mode="min", n_trials=STARTERS, storage=url, name=name, seed=0,
                searcher="random", enqueue=[BASELINE], executor="inline", progress=False)
    except BaseException:  # noqa: BLE001 (said to the parent, which fails the test with it)
        failures.put(traceback.format_exc())
        raise


def _start_together(url: str, name: str, stretched: bool) -> list[str]:
    """Run STARTERS processes that start study ``name`` at once; their tracebacks, if any."""
    capture_environment()  # its scan of the installed packages, cached before the fork: not done by each
    context = multiprocessing.get_context("fork")  # the test's modules as they are, started in milliseconds
    start, ready, failures = context.Barrier(STARTERS), context.Barrier(STARTERS), context.Queue()
    looked = context.Barrier(STARTERS) if stretched else None
    processes = [context.Process(target=_start, args=(url, name, start, looked, ready, failures))
                 for _ in range(STARTERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    errors = [failures.get(timeout=5) for _ in range(failures.qsize())]
    for process in processes:
        if process.is_alive():
            process.kill()
            errors.append("a starter hung")
        elif process.exitcode and not errors:
            errors.append(f"a starter exited with {process.exitcode}")
    return errors


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "shared.db")
    return request.getfixturevalue("postgres_url")


def test_processes_starting_one_study_at_once_queue_its_baseline_once(shared_url):
    """Eight processes ran ``tl.tune(..., enqueue=[baseline])`` on one new study at once, and about
    one time in fourteen two of them queued the baseline: each looked, found none, and queued it.
    The first round holds every process between its look and its enqueue until all have looked
    (the race made certain); in the second they race as they come."""
    for round_, stretched in enumerate((True, False)):
        name = f"baseline-{round_}"
        errors = _start_together(shared_url, name, stretched)
        assert not errors, errors[0]
        storage = open_storage(shared_url)
        trials = storage.trials(storage.get_study(name).id)
        storage.close()
        baselines = [t for t in trials if config_key(t.config) == config_key(BASELINE)]
        assert len(baselines) == 1, f"round {round_}: the baseline ran {len(baselines)} times"
        assert baselines[0].number == 0 and baselines[0].state is TrialState.COMPLETED
        assert sum(t.state is TrialState.COMPLETED for t in trials) == STARTERS
