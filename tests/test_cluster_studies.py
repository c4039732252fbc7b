"""Several studies tuned at once in one process, on the Ray a run starts: they share it, and the
last run to end shuts it down (the first to end shut it down under the others' trials)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import tunelab as tl

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster needs no token


def _wait_for(path: Path, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


def first_run_objective(config):
    """Ends once the second run's trial has begun."""
    folder = Path(config["dir"])
    (folder / "first-running").touch()
    _wait_for(folder / "second-running")
    return 1.0


def second_run_objective(config, trial):
    """Still running when the first run ends."""
    folder = Path(config["dir"])
    (folder / "second-running").touch()
    _wait_for(folder / "first-done")
    trial.report(1, loss=2.0)
    return 2.0


def test_two_studies_tuned_at_once_share_the_ray_the_first_started(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunelab[ray]')")
    if ray.is_initialized():
        pytest.skip("a Ray started by another test is up")
    space = {"dir": tl.choice([str(tmp_path)])}
    options = {"executor": "ray", "executor_options": {"init_options": {"num_cpus": 2}}, "n_trials": 1,
               "workers": 1, "metric": "loss", "mode": "min", "storage": None, "progress": False}
    first: dict = {}

    def run_first():
        try:
            first["study"] = tl.tune(first_run_objective, space, name="first", **options)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            first["error"] = err
        finally:
            (tmp_path / "first-done").touch()

    thread = threading.Thread(target=run_first, daemon=True)
    thread.start()
    assert _wait_for(tmp_path / "first-running"), first
    second = tl.tune(second_run_objective, space, name="second", **options)
    thread.join(timeout=120)
    assert "error" not in first, first
    assert first["study"].counts() == {"completed": 1}
    assert second.counts() == {"completed": 1}, [t.error for t in second.trials]
    assert second.trials[0].value == 2.0
    assert not ray.is_initialized()  # the last run to end shut it down


_FIRST_RUNNING, _SECOND_RUNNING, _FIRST_DONE = threading.Event(), threading.Event(), threading.Event()


def first_dask_objective(config):
    _FIRST_RUNNING.set()
    _SECOND_RUNNING.wait(60)
    return 1.0


def second_dask_objective(config):
    _SECOND_RUNNING.set()
    _FIRST_DONE.wait(60)
    return 2.0


def test_two_dask_runs_at_once_leave_the_user_s_dask_config_as_it_was():
    """Each run set Dask's global allowed-failures to 0 and restored, at its end, what it had
    found: the first to end restored Dask's 3 under the second, which restored 0 for good, and
    the user's own Dask work went on with it (one lost worker failed a task for good)."""
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    before = dask.config.get("distributed.scheduler.allowed-failures")
    options = {"executor": "dask", "n_trials": 1, "workers": 1, "metric": "loss", "mode": "min", "storage": None,
               "progress": False}
    first: dict = {}

    def run_first():
        try:
            first["study"] = tl.tune(first_dask_objective, {"x": tl.uniform(0, 1)}, name="first", **options)
        finally:
            _FIRST_DONE.set()

    for event in (_FIRST_RUNNING, _SECOND_RUNNING, _FIRST_DONE):
        event.clear()
    thread = threading.Thread(target=run_first, daemon=True)
    thread.start()
    assert _FIRST_RUNNING.wait(60)  # the first run started first, and ends first
    second = tl.tune(second_dask_objective, {"x": tl.uniform(0, 1)}, name="second", **options)
    thread.join(timeout=60)
    assert first["study"].counts() == {"completed": 1} and second.counts() == {"completed": 1}
    assert dask.config.get("distributed.scheduler.allowed-failures") == before
