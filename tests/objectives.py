"""Objectives used by the tests; module-level so that worker processes can import them."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import time

import tunelab as tl

SPACE = {"x": tl.uniform(-5.0, 5.0), "kind": tl.choice(["a", "b"]), "n": tl.randint(1, 4)}


def quadratic(config, trial):
    """Minimum 0 at x = 1; reports a short curve."""
    loss = (config["x"] - 1.0) ** 2 + (0.5 if config["kind"] == "b" else 0.0)
    for step in range(1, 4):
        trial.report(step, loss=loss + 1.0 / step)
    return {"loss": loss, "accuracy": 1.0 / (1.0 + loss)}


def quadratic_float(config):
    return (config["x"] - 1.0) ** 2


def sometimes_failing(config, trial):
    """Fails in every way an objective can, depending on the trial number."""
    kind = trial.number % 5
    if kind == 1:
        raise ZeroDivisionError("boom")
    if kind == 2:
        return float("nan")
    if kind == 3:
        return "not a number"
    return (config["x"] - 1.0) ** 2


def always_failing(config, trial):
    raise RuntimeError("this objective is broken")


def crash_hard(config, trial):
    """Trial 1 leaves by os._exit, trial 2 segfaults, the others succeed."""
    if trial.number == 1:
        os._exit(7)
    if trial.number == 2:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return (config["x"] - 1.0) ** 2


def hang_on_first(config, trial):
    if trial.number == 0:
        time.sleep(600)
    return (config["x"] - 1.0) ** 2


def report_slowly(config, trial):
    """Reports often, so a timeout is enforced even in-process."""
    for step in range(1, 1000):
        time.sleep(0.01)
        trial.report(step, loss=1.0 / step)
        if trial.number != 0:
            break
    return 1.0


def record_pid(config, trial):
    trial.set_user_attr("pid", os.getpid())
    return math.fabs(config["x"])


def write_pid_then_hang(config, trial):
    """Leaves its pid in $TUNELAB_TEST_PID_DIR, then hangs: for orphaned-worker tests."""
    directory = os.environ["TUNELAB_TEST_PID_DIR"]
    with open(os.path.join(directory, f"{os.getpid()}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(600)
    return 0.0


def sleepy(config, trial):
    """A short trial (a fraction of a second) with one report: long enough for a kill to land in it."""
    time.sleep(0.1 + 0.1 * (trial.number % 3))
    trial.report(1, loss=(config["x"] - 1.0) ** 2 + 1.0)
    return (config["x"] - 1.0) ** 2


def reporting(config, trial):
    """Reports every step, stops when the tuner says so, and leaves a user attribute."""
    trial.set_user_attr("where", "worker")
    for step in range(1, 5):
        trial.report(step, loss=config["x"] ** 2 + 1.0 / step)  # raises TrialPruned on a STOP
    return config["x"] ** 2


class StopOddTrialsAtStep2(tl.Scheduler):
    """A scheduler whose decision is visible in the record: odd trials are stopped at step 2."""

    name = "stop-odd"

    def on_report(self, trial, step, metrics, history):
        return tl.Decision.STOP if trial.number % 2 and step >= 2 else tl.Decision.CONTINUE


def dies_once_at_epoch_3(config, trial):
    """Six epochs with a checkpoint each; trial 0, started afresh, kills its own process (kill -9)
    after reporting epoch 3: a worker dying mid-trial. Run on from its checkpoint, it finishes."""
    done = trial.load_checkpoint() or 0
    loss = None
    for epoch in range(done + 1, 7):
        time.sleep(0.02)
        loss = (config["x"] - 1.0) ** 2 + 1.0 / epoch
        trial.save_checkpoint(epoch)
        trial.report(epoch, loss=loss)
        if trial.number == 0 and done == 0 and epoch == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return loss


def epochs_with_checkpoints(config, trial):
    """Trains to trial.budget epochs (30 ms each), from its checkpoint when it has one."""
    done = trial.load_checkpoint() or 0
    loss = None
    for epoch in range(done + 1, int(trial.budget) + 1):
        time.sleep(0.03)
        loss = (config["x"] - 1.0) ** 2 + 1.0 / epoch
        trial.save_checkpoint(epoch)
        trial.report(epoch, loss=loss)
    return loss


def chatty_sleeper(config, trial):
    """Prints three lines with pauses between them, so that trials on threads interleave."""
    for _ in range(3):
        print(f"trial {trial.number}")
        time.sleep(0.02)
    return config["x"] ** 2


def repeating(config, trial):
    """Reports its first step twice (a misuse its trial handle warns about)."""
    trial.report(1, loss=config["x"] ** 2)
    trial.report(1, loss=config["x"] ** 2)
    return config["x"] ** 2


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no message")


def odd_results(config, trial):
    """By trial number mod 6: numpy's True, an array beside the metric, an integer past any float,
    an exception whose message fails, sys.exit(2), and a plain number."""
    import sys

    import numpy as np

    kind = trial.number % 6
    if kind == 0:
        return np.bool_(True)
    if kind == 1:
        return {"loss": 0.5, "hist": np.array([0.5, 0.4])}
    if kind == 2:
        return 10 ** 400
    if kind == 3:
        raise _Unprintable()
    if kind == 4:
        sys.exit(2)
    return 0.25


def tags_a_set(config, trial):
    """Trial 1 stores a set (no JSON holds it) as an attribute; the others a list."""
    trial.set_user_attr("tags", {"a", "b"} if trial.number == 1 else ["a", "b"])
    time.sleep(0.2)
    return config["x"]


def kills_its_worker_on_trial_1(config, trial):
    """Reports, then (trial 1 only) its worker process dies: the OOM killer, a preemption."""
    trial.report(1, loss=config["x"])
    if trial.number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return config["x"]


def sleeps_two_seconds(config, trial):
    time.sleep(2.0)
    return config["x"]


def dies_on_its_first_run(config, trial):
    """Its worker process dies the first time (no checkpoint yet): a preempted node, the OOM killer."""
    if trial.load_checkpoint() is None:
        trial.save_checkpoint({"started": True})
        trial.report(1, loss=config["x"] + 1)
        os._exit(9)
    trial.report(2, loss=config["x"])
    return config["x"]



def the_worst_dies_once(config, trial):
    """The worst configuration's worker dies on its first run, before it saved a checkpoint (a
    preempted node): it runs again, from scratch, as a retry. Once: a marker file in the folder
    named by $DIES_ONCE_DIR says it died."""
    marker = os.path.join(os.environ["DIES_ONCE_DIR"], "died")
    if config["x"] > 0.95 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)
    trial.report(trial.budget, loss=config["x"])
    return config["x"]


def reports_slowly_catching_everything(config, trial):
    """Reports often inside an `except Exception:` that swallows what report raises (a timeout)."""
    for step in range(1, 60):
        time.sleep(0.01)
        try:
            trial.report(step, loss=1.0 / step)
        except Exception:  # noqa: BLE001 - the user's habit this objective stands for
            pass
    return 1.0
