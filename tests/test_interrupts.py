"""A Ctrl-C or SIGTERM whose exception is lost on its way (in a finalizer, or turned into another
exception by code that is not signal-safe) still stops the run."""

from __future__ import annotations

import gc
import signal

import pytest

import tunelab as tl
from tunelab.interrupts import StopSignals, raise_if_stopped, stop_requested
from tunelab.trial import TrialState

# The point of these tests: an exception raised in a finalizer is printed and dropped.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _SignalInFinalizer:
    """Garbage whose finalizer is where the signal's exception is raised: Python drops it there."""

    def __init__(self, signum: int):
        self.signum, self.cycle = signum, self

    def __del__(self) -> None:
        signal.raise_signal(self.signum)


def _lose(signum: int) -> None:
    _SignalInFinalizer(signum)
    gc.collect()  # the handler runs inside __del__; "Exception ignored in ..." and nothing else


def test_a_ctrl_c_lost_in_a_finalizer_is_raised_again():
    with pytest.raises(KeyboardInterrupt):  # caught inside and gone on from: the block's end raises it once more
        with StopSignals():
            _lose(signal.SIGINT)
            assert stop_requested() == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):
                raise_if_stopped()
    raise_if_stopped()  # the block is over: nothing is left pending
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_lost_sigterm_is_raised_again_as_system_exit():
    before = signal.getsignal(signal.SIGTERM)  # not always the default: ray.init earlier in this process sets one
    with pytest.raises(SystemExit) as at_end:
        with StopSignals(sigint=False):
            _lose(signal.SIGTERM)
            with pytest.raises(SystemExit) as exit_:
                raise_if_stopped()
    assert exit_.value.code == at_end.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_signal_lost_as_a_block_ends_is_raised_when_it_ends():
    """Where no loop looks again (the work was done), the block's end raises the stop itself,
    and in place of an ordinary exception on its way out, which a caller may catch and go on."""
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_:
        with StopSignals(sigint=False):
            _lose(signal.SIGTERM)
    assert exit_.value.code == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(KeyboardInterrupt) as interrupt:
        with StopSignals():
            _lose(signal.SIGINT)
            raise RuntimeError("release unlocked lock")
    assert isinstance(interrupt.value.__context__, RuntimeError)
    raise_if_stopped()  # nothing is left pending after either


@pytest.mark.parametrize("budget", [{"target": -1.0}, {"patience": 1}])
def test_a_stop_lost_on_the_turn_a_budget_ends_the_run_still_stops_the_program(budget):
    """A signal lost in a finalizer (a Study's lock leaving its WeakKeyDictionary: "Exception
    ignored in ... WeakKeyDictionary") during the trial after which a budget ended the run: tl.tune
    returned as if nothing had come, and a program tuning one study after another went on."""
    calls = []

    def objective(config):
        calls.append(config)
        if len(calls) == 2:
            _lose(signal.SIGINT)
            return -1.0 if "target" in budget else 1.0
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="y", mode="min", n_trials=5, seed=0, progress=False,
                **budget)
    assert len(calls) == 2


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a worker process
    try:
        with StopSignals():
            signal.raise_signal(signal.SIGINT)
            raise_if_stopped()
            assert stop_requested() is None
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_lost_ctrl_c_stops_the_tuner_before_its_next_trial():
    calls = []

    def objective(config):
        calls.append(config)
        if len(calls) == 1:
            _lose(signal.SIGINT)
        return config["x"]

    with pytest.raises(KeyboardInterrupt):
        tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="y", mode="max", n_trials=5, seed=0, progress=False)
    assert len(calls) == 1


def test_an_exception_caused_by_a_lost_ctrl_c_cancels_the_trial_instead_of_failing_it():
    """E.g. queue.Queue.get, interrupted at the wrong moment, raises 'release unlocked lock'."""
    storage = tl.open_storage("memory")

    def objective(config):
        _lose(signal.SIGINT)
        raise RuntimeError("release unlocked lock")

    with pytest.raises(KeyboardInterrupt):
        tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="y", mode="max", n_trials=5, seed=0, progress=False,
                storage=storage, name="lost")
    study = tl.load_study("lost", storage=storage)
    cancelled, again = study.trials
    assert (cancelled.state, cancelled.error) == (tl.TrialState.FAILED, "cancelled: interrupted")
    assert again.state is tl.TrialState.WAITING and (again.config, again.seed) == (cancelled.config, cancelled.seed)


def test_a_configuration_ctrl_c_interrupted_runs_first_when_the_study_goes_on():
    """An enqueued baseline (or any configuration) stopped by Ctrl-C before it saved a checkpoint
    is cancelled, and runs again, with its seed, in its place in n_trials, when the study goes on."""
    storage = tl.open_storage("memory")
    seen = []

    def objective(config, trial):
        seen.append((config["x"], trial.seed))
        if len(seen) == 1:
            raise KeyboardInterrupt
        return config["x"]

    with pytest.raises(KeyboardInterrupt):
        tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="y", mode="max", n_trials=3, seed=0, progress=False,
                storage=storage, name="baseline", enqueue=[{"x": 0.25}])
    study = tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="y", mode="max", n_trials=3, seed=0, progress=False,
                    storage=storage, name="baseline")
    assert seen[1] == seen[0] == (0.25, study.trials[0].seed)  # the baseline first, with its seed
    assert study.counts() == {"completed": 3, "failed": 1} and len(seen) == 4
    assert [t.config["x"] for t in study.trials if t.state is TrialState.COMPLETED][0] == 0.25


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_sigterm_to_the_tuner_ends_the_run_and_the_next_run_goes_on_with_nothing_lost(tmp_path, executor):
    """`kill PID` (docker stop, a batch system's preemption) ends tl.tune as Ctrl-C does: the
    running trial goes back in the queue with its checkpoint, not counted as a death, and no
    trial is left RUNNING; the next run finishes it from there and nothing fails."""
    import os
    import subprocess
    import sys
    import time

    from faults import ENV

    started = tmp_path / "started"
    script = tmp_path / "tune.py"
    script.write_text(f"""
import os, sys, time
import tunelab as tl
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from mf_objectives import SPACE

def objective(config, trial):
    state = trial.load_checkpoint() or {{"epoch": 0}}
    loss = None
    for epoch in range(state["epoch"] + 1, int(trial.budget) + 1):
        loss = config["x"] + 1.0 / epoch
        trial.save_checkpoint({{"epoch": epoch}})
        trial.report(epoch, loss=loss)
        if trial.number == 0 and epoch == 2 and sys.argv[1] == "first":
            open({str(started)!r}, "w").close()
            time.sleep(60)  # the SIGTERM comes here
    return loss

if __name__ == "__main__":
    tl.tune(objective, SPACE, metric="loss", mode="min", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True),
            scheduler="asha", scheduler_options={{"promotion": False}}, searcher="random", n_trials=3, seed=0,
            storage="sqlite:///{tmp_path / 't.db'}", name="t", executor={executor!r}, workers=1, progress=False)
""")
    first = subprocess.Popen([sys.executable, str(script), "first"], env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert started.exists(), first.communicate()[1]
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM, stderr
    assert "BrokenPipeError" not in stderr
    study = tl.load_study("t", storage=f"sqlite:///{tmp_path / 't.db'}")
    trial = study.get_trial(0)
    assert trial.state is TrialState.WAITING and not study.storage.running_trials(study.record.id)
    assert trial.system_attrs["interrupted"][0]["step"] == 2 and "attempt" not in trial.system_attrs
    second = subprocess.run([sys.executable, str(script), "again"], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    study = tl.load_study("t", storage=f"sqlite:///{tmp_path / 't.db'}")
    trial = study.get_trial(0)
    assert trial.state is TrialState.COMPLETED and [r.step for r in trial.reports] == list(range(1, 10))
    assert len(study.trials) == 3 and all(t.state in (TrialState.COMPLETED, TrialState.PRUNED) for t in study.trials)


def test_a_ctrl_c_while_the_tuner_records_a_result_leaves_no_trial_running(monkeypatch):
    """A Ctrl-C landing after the tuner took a finished trial off its list of running ones and
    before it stored the end left the trial "running" in storage for ever (its owner, this
    process, alive: nobody takes it over)."""
    from tunelab.study import Study

    finish, calls = Study.finish, []

    def interrupted_once(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt  # as if Ctrl-C came while this result was being recorded
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(Study, "finish", interrupted_once)
    storage = tl.open_storage("memory")
    with pytest.raises(KeyboardInterrupt):
        tl.tune(lambda config: config["x"], {"x": tl.uniform(0, 1)}, metric="y", mode="max", n_trials=3, seed=0,
                progress=False, storage=storage, name="recording")
    study = tl.load_study("recording", storage=storage)
    assert study.trials and all(t.state is not TrialState.RUNNING for t in study.trials), study.trials


def test_a_stop_lost_during_a_long_objective_in_the_tuners_process_ends_it_at_its_next_report():
    """Nothing else looks again until the objective returns: docker stop waited for the whole run."""
    import tunelab as tl

    reports = []

    def objective(config, trial):
        for epoch in range(1, 50):
            if epoch == 3:
                _lose(signal.SIGINT)  # (SIGINT: a test runner may own SIGTERM, and tl.tune then leaves it)
            trial.report(epoch, loss=config["x"])
            reports.append(epoch)
        return config["x"]

    with pytest.raises(KeyboardInterrupt):
        tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0, progress=False)
    assert reports == [1, 2]
