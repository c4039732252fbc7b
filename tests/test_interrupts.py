"""A Ctrl-C or SIGTERM whose exception is lost on its way (in a finalizer, or turned into another
exception by code that is not signal-safe) still stops the run."""

from __future__ import annotations

import gc
import signal

import pytest

import tunelab as tl
from tunelab.interrupts import StopSignals, raise_if_stopped, stop_requested

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
    with StopSignals():
        _lose(signal.SIGINT)
        assert stop_requested() == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            raise_if_stopped()
    raise_if_stopped()  # the block is over: nothing is left pending
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_lost_sigterm_is_raised_again_as_system_exit():
    with StopSignals(sigint=False):
        _lose(signal.SIGTERM)
        with pytest.raises(SystemExit) as exit_:
            raise_if_stopped()
    assert exit_.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


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
    assert [(t.state, t.error) for t in study.trials] == [(tl.TrialState.FAILED, "cancelled: interrupted")]
