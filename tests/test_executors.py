"""Where trials run: local worker processes survive whatever an objective does."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.trial import TrialState

from objectives import SPACE, crash_hard, hang_on_first, quadratic, record_pid, report_slowly, \
    reports_slowly_catching_everything


def run(objective, **kwargs):
    options = dict(metric="loss", mode="min", n_trials=6, seed=0, progress=False, workers=2)
    options.update(kwargs)
    return tl.tune(objective, SPACE, **options)


def test_parallel_workers_record_every_trial_exactly_once(tmp_path):
    study = run(quadratic, n_trials=20, storage=f"sqlite:///{tmp_path / 'p.db'}", name="par")
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(20))
    assert all(t.state is TrialState.COMPLETED and len(t.reports) == 3 for t in study.trials)
    reloaded = tl.load_study("par", storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert [t.value for t in reloaded.trials] == [t.value for t in study.trials]


def test_trials_really_run_in_other_processes():
    import os

    study = run(record_pid, n_trials=6)
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_a_worker_that_exits_or_segfaults_fails_only_its_trial():
    study = run(crash_hard, n_trials=6)
    states = {t.number: t for t in study.trials}
    assert "exited with code 7" in states[1].error
    assert "SIGSEGV" in states[2].error
    assert all(states[n].state is TrialState.COMPLETED for n in (0, 3, 4, 5))
    # a trial whose worker process died on its first attempt runs again (max_retries=1 by
    # default), with its configuration and seed; a retry that dies too is not retried
    retries = {t.system_attrs["retry_of"]: t for t in study.trials if "retry_of" in t.system_attrs}
    first_deaths = [t for t in study.trials if "worker process" in (t.error or "") and "retry_of" not in t.system_attrs]
    assert first_deaths and sorted(retries) == sorted(t.number for t in first_deaths)
    assert all((retries[t.number].config, retries[t.number].seed) == (t.config, t.seed) for t in first_deaths)
    assert not any("retry_of" in t.system_attrs for t in run(crash_hard, n_trials=6, max_retries=0).trials)


def test_trial_timeout_kills_a_hanging_worker_and_the_study_goes_on():
    study = run(hang_on_first, n_trials=4, trial_timeout=2)
    first = study.trials[0]
    assert first.state is TrialState.FAILED and "trial_timeout=2s" in first.error
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETED] * 3


def test_inline_trial_timeout_is_enforced_at_reports():
    study = run(report_slowly, n_trials=2, workers=1, trial_timeout=0.3)
    assert study.trials[0].state is TrialState.FAILED and "trial_timeout" in study.trials[0].error
    assert study.trials[1].state is TrialState.COMPLETED


def test_an_inline_timeout_caught_by_the_objective_fails_its_trial_all_the_same():
    """TrialTimeout is an Exception: an objective reporting inside `except Exception:` swallowed
    it and the trial completed, past its timeout."""
    study = run(reports_slowly_catching_everything, n_trials=1, workers=1, trial_timeout=0.2)
    assert study.trials[0].state is TrialState.FAILED and "trial_timeout=0.2s" in study.trials[0].error


def test_unpicklable_objective_gets_clear_advice():
    with pytest.raises(tl.ConfigError, match="must be picklable.*module level, or use workers=1"):
        run(lambda config, trial: 1.0, n_trials=2)


def test_inline_executor_refuses_several_workers():
    with pytest.raises(tl.ConfigError, match="one trial at a time"):
        run(quadratic, executor="inline", workers=2)


def test_workers_exit_when_the_tuner_is_killed(tmp_path):
    """kill -9 of the tuner must not leave worker processes running its trials."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "tuner.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import tunelab as tl\n"
        "from objectives import SPACE, write_pid_then_hang\n"
        "if __name__ == '__main__':\n"
        "    tl.tune(write_pid_then_hang, SPACE, metric='loss', mode='min', n_trials=4, workers=2, progress=False)\n"
    )
    env = dict(os.environ, TUNELAB_TEST_PID_DIR=str(tmp_path))
    tuner = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert len(pids) == 2
    finally:
        tuner.send_signal(signal.SIGKILL)
        tuner.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for init to reap it is gone too
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)


def test_a_worker_whose_tuner_is_gone_ends_quietly():
    """A worker finishing its trial after kill -9 of its tuner finds the pipe broken: it ends
    without a traceback on the tuner's terminal (the next start recovers the trial)."""
    import multiprocessing
    import os
    import signal

    from tunelab.executors.processes import _worker_main

    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0)
    spec = study.spec(study._start()[0])
    tuner_end, worker_end = multiprocessing.Pipe()
    tuner_end.send(("run", spec))
    tuner_end.close()  # the tuner dies with the trial handed out
    ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        _worker_main(worker_end, quadratic, ["loss"], os.getppid())  # returns: no BrokenPipeError
    finally:
        signal.signal(signal.SIGINT, ctrl_c)  # the worker ignores Ctrl-C; this test process must not


def test_a_warning_about_the_objectives_use_of_its_trial_reaches_the_user_from_a_worker_process():
    """Said in the worker, it went only to the trial's stderr.txt."""
    from objectives import repeating

    with pytest.warns(UserWarning, match=r"trial \d reports step 1 after step 1: steps must increase"):
        study = tl.tune(repeating, SPACE, metric="loss", mode="min", n_trials=2, workers=2, executor="processes",
                        storage=None, seed=0, progress=False)
    assert study.counts() == {"completed": 2}


def test_an_inline_trial_keeps_its_heartbeat_while_its_objective_runs(tmp_path, monkeypatch):
    """The heartbeat came from the tuner's loop, which waits for an inline objective: a tuner on another
    machine took a trial longer than stale_after for abandoned and ran it again."""
    import time

    import tunelab.executors.inline as inline

    monkeypatch.setattr(inline, "HEARTBEAT_SECONDS", 0.05)
    url = f"sqlite:///{tmp_path / 'h.db'}"

    def slow(config, trial):
        started = time.time()
        time.sleep(0.5)
        reader = tl.load_study("beat", storage=url)
        (beat,) = [b for i, _, b in reader.storage.running_trials(reader.record.id) if i == trial.id]
        trial.set_user_attr("beat_after", beat - started)
        return 0.0

    study = tl.tune(slow, SPACE, metric="loss", mode="min", n_trials=1, storage=url, name="beat", progress=False)
    assert study.trials[0].user_attrs["beat_after"] > 0.2  # beaten while it slept, not only when it started


def grow_the_constant(config):
    config["sizes"].append(1)
    config["head"]["units"] = 0
    return float(len(config["sizes"]))


def test_an_objective_that_changes_its_configuration_in_place_leaves_the_record_as_it_ran():
    """In memory the stored configuration was the very object the objective got: a constant's
    list grown by the objective was recorded grown, though the trial ran without it."""
    space = {"sizes": tl.fixed([64, 32]), "head": tl.fixed({"units": 10}), "x": tl.uniform(0, 1)}
    study = tl.tune(grow_the_constant, space, metric="loss", mode="min", n_trials=2, seed=0, searcher="random")
    assert [t.config["sizes"] for t in study.trials] == [[64, 32], [64, 32]]
    assert [t.config["head"] for t in study.trials] == [{"units": 10}, {"units": 10}]
    assert [t.value for t in study.trials] == [3.0, 3.0]
