"""Local worker processes under real faults: what a trial started dies with its worker, a worker
killed right after it reported fails its trial only, a worker's start-up is no trial's time, and
a worker that cannot load the objective ends the run saying why.

The objectives live here, at module level, so that worker processes import them from this file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import tunelab as tl
from tunelab.trial import TrialState

from faults import ENV

SPACE = {"x": tl.uniform(0.0, 1.0)}


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie left for init to reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait_until(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def start_child_then_hang(config, trial):
    """Starts a process of its own (as a training script or a data loader does), leaves its pid
    in $TUNELAB_TEST_PID_DIR, then hangs."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(os.environ["TUNELAB_TEST_PID_DIR"], f"{child.pid}.child").write_text(str(child.pid))
    time.sleep(300)
    return 0.0


def test_a_trial_that_runs_past_its_timeout_takes_the_processes_it_started_with_it(tmp_path, monkeypatch):
    """They ran on (holding a GPU, say) after their worker was killed."""
    monkeypatch.setenv("TUNELAB_TEST_PID_DIR", str(tmp_path))
    study = tl.tune(start_child_then_hang, SPACE, metric="loss", mode="min", n_trials=1, workers=2,
                    trial_timeout=1, progress=False, seed=0)
    assert "trial_timeout" in study.trials[0].error
    children = [int(p.stem) for p in tmp_path.glob("*.child")]
    assert len(children) == 1
    try:
        assert _wait_until(lambda: _gone(children[0]))
    finally:
        if not _gone(children[0]):
            os.kill(children[0], 9)


def test_a_killed_tuner_takes_the_processes_its_trials_started_with_it(tmp_path):
    """kill -9 of the tuner: its workers leave, and what their trials started leaves with them."""
    script = tmp_path / "tune.py"
    script.write_text(
        "import tunelab as tl\n"
        "from test_executors_processes import SPACE, start_child_then_hang\n"
        "if __name__ == '__main__':\n"
        "    tl.tune(start_child_then_hang, SPACE, metric='loss', mode='min', n_trials=2, workers=2, progress=False)\n")
    tuner = subprocess.Popen([sys.executable, str(script)], env={**ENV, "TUNELAB_TEST_PID_DIR": str(tmp_path)},
                             cwd=tmp_path)
    try:
        assert _wait_until(lambda: len(list(tmp_path.glob("*.child"))) == 2, 120)
    finally:
        tuner.kill()
        tuner.wait()
    children = [int(p.stem) for p in tmp_path.glob("*.child")]
    try:
        assert _wait_until(lambda: all(_gone(pid) for pid in children))
    finally:
        for pid in children:
            if not _gone(pid):
                os.kill(pid, 9)


def report_then_die(config, trial):
    """Trial 1 reports and its process dies at once (killed, say by the OOM killer), while the
    tuner is busy with trial 0's end; the report is sent as trial.report sends it."""
    folder = Path(os.environ["TUNELAB_TEST_PID_DIR"])
    if trial.number == 0:
        return 0.0
    while not (folder / "go").exists():
        time.sleep(0.01)
    (folder / "worker.pid").write_text(str(os.getpid()))
    trial._sink._conn.send(("report", trial.id, 1.0, {"loss": 1.0}))
    os._exit(9)


class HoldTheTuner(tl.Callback):
    """At trial 0's end, lets trial 1 go and returns only once its worker is dead: the tuner then
    finds trial 1's report and its death together."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_trial_end(self, study, trial):
        if trial.number == 0:
            (self.folder / "go").write_text("")
            pid_file = self.folder / "worker.pid"
            assert _wait_until(lambda: pid_file.exists() and pid_file.read_text() != "" and
                               _gone(int(pid_file.read_text())), 60)


def test_a_worker_killed_right_after_it_reported_fails_its_trial_only(tmp_path, monkeypatch):
    """The answer to its report could not be sent back: BrokenPipeError ended the whole run."""
    monkeypatch.setenv("TUNELAB_TEST_PID_DIR", str(tmp_path))
    study = tl.tune(report_then_die, SPACE, metric="loss", mode="min", n_trials=2, workers=2, max_retries=0,
                    progress=False, seed=0, callbacks=[HoldTheTuner(tmp_path)])
    first, second = study.trials
    assert first.state is TrialState.COMPLETED
    assert second.state is TrialState.FAILED and "exited with code 9" in second.error
    assert [r.step for r in second.reports] == [1.0]  # what it reported before it died is kept


class SlowToLoad:
    """An objective whose loading in a worker process takes a while (a module that imports a deep
    learning library, reads a data set...); it says when its worker was ready."""

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        time.sleep(0.5)
        self.ready_at = time.time()

    def __call__(self, config):
        return {"loss": config["x"], "ready_at": getattr(self, "ready_at", None)}


def test_a_trials_duration_leaves_out_the_start_of_its_worker_process(tmp_path):
    """The first trial of each worker was billed for the worker's start-up (seconds, with a
    large import), its duration and cost counted from when it was handed out."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    tl.tune(SlowToLoad(), SPACE, metric="loss", mode="min", n_trials=4, workers=2, progress=False, seed=0,
            storage=url, name="t")
    trials = tl.load_study("t", storage=url).trials
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETED for t in trials)
    for trial in trials:
        assert trial.started_at >= trial.metrics["ready_at"], trial.number


def test_a_script_that_tunes_without_the_main_guard_ends_saying_why(tmp_path):
    """Each worker process loads the script again and crashed in its tl.tune: every trial failed
    with "worker process exited with code 1" (and ran once more), and the run went on."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    script = tmp_path / "tune.py"
    script.write_text(
        "import tunelab as tl\n"
        "def objective(config):\n"
        "    return config['x']\n"
        f"tl.tune(objective, {{'x': tl.uniform(0, 1)}}, metric='y', mode='min', n_trials=4, workers=2, "
        f"progress=False, storage={url!r}, name='t')\n")
    run = subprocess.run([sys.executable, str(script)], env=ENV, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert 'if __name__ == "__main__":' in run.stderr.strip().splitlines()[-1]
    study = tl.load_study("t", storage=url)
    assert not any("exited with code" in (t.error or "") for t in study.trials)
    assert not study.storage.running_trials(study.record.id)
    assert all(t.state in (TrialState.WAITING, TrialState.FAILED) and (t.error or "cancelled").startswith("cancelled")
               for t in study.trials)


def hang_on_first(config, trial):
    if trial.number == 0:
        time.sleep(300)
    return config["x"]


def test_a_cancelled_trial_starts_no_worker_in_its_place_until_a_trial_needs_one():
    """A tuner cancels its running trials as it stops (Ctrl-C, SIGTERM, a budget): each cancel
    started a fresh worker, which loaded the objective (and the script) only to be killed."""
    from tunelab.executors.processes import ProcessExecutor
    from tunelab.trial import ReportSink

    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0)
    executor = ProcessExecutor(workers=1)
    executor.open(hang_on_first, ReportSink(), ["loss"])
    try:
        first = study.spec(study._start()[0])
        executor.submit(first)
        assert _wait_until(lambda: executor.poll(0.1) == [] and executor._pool[0].started is not None, 120)
        executor.cancel(first.id)
        assert not any(worker.process.is_alive() for worker in executor._pool)
        assert executor.free_slots() == 1
        second = study.spec(study._start()[0])  # the next trial gets a fresh worker
        executor.submit(second)
        outcomes: list = []
        assert _wait_until(lambda: outcomes.extend(executor.poll(0.1)) or outcomes, 120)
        assert [(o.trial_id, o.state) for o in outcomes] == [(second.id, TrialState.COMPLETED)]
    finally:
        executor.close()


def test_a_script_without_the_main_guard_leaves_no_empty_study_per_worker(tmp_path):
    """Each worker loading the unguarded script again made a study (of a new name, none being
    given) before its tl.tune was refused."""
    url = f"sqlite:///{tmp_path / 'n.db'}"
    script = tmp_path / "tune.py"
    script.write_text(
        "import tunelab as tl\n"
        "def objective(config):\n"
        "    return config['x']\n"
        f"tl.tune(objective, {{'x': tl.uniform(0, 1)}}, metric='y', mode='min', n_trials=4, workers=2, "
        f"progress=False, storage={url!r})\n")
    run = subprocess.run([sys.executable, str(script)], env=ENV, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert len(tl.list_studies(url)) == 1, [s.name for s in tl.list_studies(url)]
