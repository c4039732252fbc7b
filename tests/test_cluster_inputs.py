"""What a cluster run refuses, and what it leaves behind: an objective the cluster cannot receive
and a missing extra are refused with a clear error before anything starts (and before a study
is made), and a run leaves nothing on a scheduler it shares with others."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import tunelab as tl
from tunelab.errors import ConfigError

from objectives import SPACE, quadratic

def _unpicklable_objective():
    """A closure over what no pickler can carry: a lock made outside the objective."""
    lock = threading.Lock()

    def objective(config):
        with lock:
            return config["x"] ** 2

    return objective


@pytest.mark.parametrize("name, package", [("ray", "ray"), ("dask", "distributed")])
def test_a_missing_extra_is_said_before_a_study_is_made(name, package, monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setitem(sys.modules, package, None)  # as where the extra is not installed
    with pytest.raises(ConfigError, match=rf"executor='{name}' needs .*pip install 'tunelab\[{name}\]'"):
        tl.tune(quadratic, SPACE, metric="loss", mode="min", n_trials=1, workers=2, executor=name, storage=url,
                name="never", progress=False)
    assert tl.list_studies(url) == []  # it left an empty study behind


@pytest.mark.parametrize("name", ["ray", "dask"])
def test_an_objective_the_cluster_cannot_receive_is_refused_clearly(name):
    """Ray failed with its own serialization dump after starting; Dask only when it submitted
    the first trial, with "Could not serialize object of type LLGExpr"."""
    ray = pytest.importorskip("ray") if name == "ray" else None
    pytest.importorskip("distributed")
    was_up = ray is not None and ray.is_initialized()
    with pytest.raises(ConfigError, match=rf"executor='{name}' sends the objective to the cluster's workers, so it "
                                          r"must be picklable; .* is not \(TypeError: cannot pickle '_thread.lock'"):
        tl.tune(_unpicklable_objective(), SPACE, metric="loss", mode="min", n_trials=1, workers=2, executor=name,
                storage=None, progress=False)
    if ray is not None:
        assert ray.is_initialized() == was_up  # refused before a cluster was started


def test_a_closure_the_cluster_can_receive_runs(tmp_path):
    """Closures and lambdas travel by value (cloudpickle): not refused by the check above."""
    pytest.importorskip("distributed")
    offset = 3.0
    study = tl.tune(lambda config: config["x"] ** 2 + offset, SPACE, metric="loss", mode="min", n_trials=2,
                    workers=2, executor="dask", storage=None, seed=0, progress=False)
    assert study.counts() == {"completed": 2}
    assert all(t.value == pytest.approx(t.config["x"] ** 2 + offset) for t in study.trials)


def test_a_run_on_a_shared_dask_scheduler_leaves_no_queues_on_it():
    """Each report's answer went through a queue of its own that the scheduler kept for good: a
    long-lived scheduler shared by many studies grew with every report of every trial."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        study = tl.tune(quadratic, SPACE, metric="loss", mode="min", n_trials=4, workers=2, executor="dask",
                        executor_options={"address": cluster.scheduler_address}, storage=None, seed=0,
                        progress=False)
        assert study.counts() == {"completed": 4}
        assert all(len(t.reports) == 3 for t in study.trials)
        left = cluster.scheduler.extensions["queues"].queues
        assert not [name for name in left if name.startswith("tunelab-")], sorted(left)


def test_an_unguarded_script_with_dask_worker_processes_gets_the_guard_advice(tmp_path):
    """Each Dask worker process loads the main script again and reached tl.tune there: the run
    ended with "RuntimeError: Nanny failed to start." after pages of the workers' tracebacks."""
    pytest.importorskip("distributed")
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import tunelab as tl\n"
        "def objective(config):\n"
        "    return config['x'] ** 2\n"
        "tl.tune(objective, {'x': tl.uniform(0, 1)}, metric='loss', mode='min', n_trials=2, workers=2,\n"
        "        executor='dask', executor_options={'processes': True}, storage=None, progress=False)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=180,
                          cwd=tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tunelab.errors.ConfigError: Dask's local worker processes did not start"), done.stderr
    assert 'under `if __name__ == "__main__":`' in last and "leave processes out" in last


def test_a_local_dask_cluster_leaves_port_8787_alone():
    """Its scheduler's HTTP server took 8787, the port of a user's own Dask dashboard, and said
    "Port 8787 is already in use. Perhaps you already have a cluster running?" on every run made
    while another (a user's cluster, another study) held it."""
    import socket
    import warnings

    pytest.importorskip("distributed")
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))  # where it is taken already, the condition holds as well
    except OSError:
        pass
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            study = tl.tune(quadratic, SPACE, metric="loss", mode="min", n_trials=1, workers=1, executor="dask",
                            storage=None, seed=0, progress=False)
    finally:
        holder.close()
    assert study.counts() == {"completed": 1}
    assert not [w for w in said if "8787" in str(w.message)], [str(w.message) for w in said]
