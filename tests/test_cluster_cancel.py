"""Stopping trials on a cluster: a trial the tuner cancels (its trial_timeout, the run's budget)
stops, and the run ends when the tuner says so, not when the trials end on their own. Dask's
default workers are threads of the tuner's process, which Dask cannot stop."""

from __future__ import annotations

import threading
import time

import pytest

import tunelab as tl
from tunelab.trial import TrialState

#: Set at the end of each test, so that what a test left running ends.
_RELEASE = threading.Event()
_IN_OBJECTIVE: list[int] = []  # one entry per objective running now (in threads of this process)


def loops_until_released(config):
    """Never reports and never ends on its own: only stopping its thread ends it."""
    _IN_OBJECTIVE.append(1)
    try:
        while not _RELEASE.is_set():
            time.sleep(0.01)
        return config["x"]
    finally:
        _IN_OBJECTIVE.pop()


def waits_until_released(config):
    """Blocked in one call into C (a lock), which no exception interrupts."""
    _RELEASE.wait()
    return config["x"]


def tune_in_a_thread(objective, wait: float = 90, **options):
    """tl.tune in a thread, so that a run that hangs fails its test instead of the whole session."""
    done = {}

    def run():
        done["study"] = tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", executor="dask",
                                storage=None, seed=0, progress=False, **options)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=wait)
    return done.get("study")


@pytest.fixture(autouse=True)
def release_at_the_end():
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'tunelab[dask]')")
    _RELEASE.clear()
    yield
    _RELEASE.set()


def test_a_dask_thread_whose_trial_timed_out_is_free_for_the_next_trial():
    """One thread, three trials that never end: each timed-out trial held the thread for ever, so
    the second never started and the run hung."""
    study = tune_in_a_thread(loops_until_released, n_trials=3, workers=1, trial_timeout=0.5)
    assert study is not None, "tl.tune hung: a timed-out trial kept its Dask thread"
    assert [t.state for t in study.trials] == [TrialState.FAILED] * 3
    assert all("trial_timeout" in t.error for t in study.trials), [t.error for t in study.trials]
    deadline = time.monotonic() + 30
    while _IN_OBJECTIVE and time.monotonic() < deadline:  # the last one stops at its next instruction
        time.sleep(0.05)
    assert not _IN_OBJECTIVE, "a cancelled trial still runs in its thread"


def test_a_dask_run_ends_at_its_time_budget_even_with_trials_blocked_in_c():
    """Closing the local cluster waited for its threads, that is for trials the tuner had already
    cancelled, which here never end: Dask gives up on them after 30 s, so a budget of one second
    (or a Ctrl-C) ended the run half a minute late, or when the trials ended, if sooner."""
    study = tune_in_a_thread(waits_until_released, wait=20, n_trials=4, workers=2, timeout=1.0)
    assert study is not None, "tl.tune did not return at its time budget"
    assert not any(t.state is TrialState.COMPLETED for t in study.trials)
