"""The executor protocol: *where trials run*.

An executor only runs objectives and carries their reports back; every decision (which trial,
whether to stop it) stays with the tuner. Reports flow through a :class:`ReportSink` that the
tuner supplies, so a worker in another process waits for the scheduler's answer exactly like an
objective running in the tuner's own thread.
"""

from __future__ import annotations

import copy

import inspect
import multiprocessing as mp
import os
import socket
import traceback as tb
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from tunelab import _json
from tunelab.errors import ConfigError, TrialPaused, TrialPruned
from tunelab.interrupts import raise_if_stopped, stop_requested
from tunelab.tracking.artifacts import capture_output
from tunelab.tracking.environment import code_path_of, compare_with_study
from tunelab.results import normalize_result
from tunelab.trial import (Decision, InvalidResult, ReportSink, RunningTrial, TrialSpec, TrialState, TrialTimeout,
                           warn_ended_short)

Objective = Callable[..., Any]
#: How often a running trial's heartbeat is written (``tunelab.recovery`` reads it).
HEARTBEAT_SECONDS = 10.0


@dataclass
class Outcome:
    """How a trial ended on its worker."""

    trial_id: int
    state: TrialState
    metrics: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    worker: dict[str, Any] | None = None  # where it ran: host, pid, environment if not the study's
    died: bool = False  # its worker process died under it (killed, crashed): it may go on from its checkpoint
    warnings: list[str] | None = None  # how the objective misused its trial handle, said in the worker



def guard_advice(otherwise: str) -> str:
    """What to do about a main script that tunes at its top level, for executors whose worker
    processes load it again to find the objective (``otherwise``: how to run without them)."""
    return ("A script that tunes with worker processes must call tl.tune under `if __name__ == \"__main__\":` "
            "(each worker process loads the main script again) and define the objective above that line or in a "
            f"module it imports; or {otherwise}.")


def refuse_in_reloading_process(advice: str) -> None:
    """Refuse tl.tune in a worker process that is loading the main script again: an unguarded
    script reaches its tl.tune there. Called as the executor is built, before a study is made or
    opened (each worker would otherwise leave an empty study, or start a cluster of its own)."""
    if getattr(mp.current_process(), "_inheriting", False):
        raise ConfigError("tl.tune was called in a worker process while it loaded the main script again (to find "
                          f"the objective there). {advice}")

class Executor(ABC):
    name: ClassVar[str]

    def check_objective(self, objective: Objective) -> None:
        """Refuse an objective this executor cannot run (ConfigError), before a study is made or
        anything started: by default, any runs."""

    @abstractmethod
    def open(self, objective: Objective, sink: ReportSink, metrics: list[str]) -> None:
        """Get ready to run ``objective``; reports go to ``sink``."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more trials can be submitted right now."""

    @abstractmethod
    def submit(self, spec: TrialSpec) -> None: ...

    @abstractmethod
    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes of trials that ended, waiting up to ``timeout`` seconds for at least one."""

    def collect(self) -> list[Outcome]:
        """Answer what the running trials reported meanwhile and return those that ended, without
        waiting or starting anything: a tuner about to stop them records it first (an executor
        that runs trials only inside ``poll``, as the inline one does, has nothing)."""
        return []

    @abstractmethod
    def cancel(self, trial_id: int) -> None:
        """Stop a running trial now (its record is the tuner's business)."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything and release the workers."""


def accepts_trial(objective: Objective) -> bool:
    """Objectives may be ``f(config, trial)`` or just ``f(config)``."""
    try:
        params = list(inspect.signature(objective).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def run_objective(objective: Objective, spec: TrialSpec, sink: ReportSink, metrics: list[str],
                  whole_process: bool = False) -> Outcome:
    """Run one trial and turn whatever happens into an Outcome; only KeyboardInterrupt escapes.

    What the trial prints is saved in its folder; ``whole_process`` (a dedicated worker process)
    captures at the file-descriptor level, so C extensions and child processes are kept too."""
    trial = RunningTrial(spec, sink, managed=True)
    with capture_output(spec.artifact_dir, whole_process=whole_process):
        outcome = _run(objective, trial, spec, metrics)
    outcome.worker = worker_record(objective, spec)
    outcome.warnings = trial.warnings or None
    return outcome


def _run(objective: Objective, trial: RunningTrial, spec: TrialSpec, metrics: list[str]) -> Outcome:
    try:
        config = copy.deepcopy(spec.config)  # the objective's own: changed in place, the record stays
        result = objective(config, trial) if accepts_trial(objective) else objective(config)
        if trial.decision is Decision.CONTINUE and spec.budget is not None and \
                (not trial.reports or trial.reports[-1].step < spec.budget * (1 - 1e-9)):
            _report_at_budget(trial, spec, result, metrics)
    except TrialPruned:
        return Outcome(spec.id, TrialState.PRUNED)
    except TrialPaused:
        return Outcome(spec.id, TrialState.PAUSED)
    except TrialTimeout as err:
        return Outcome(spec.id, TrialState.FAILED, error=str(err))
    except SystemExit as err:
        if stop_requested() is not None:
            raise  # a SIGTERM: the run stops (tunelab.interrupts)
        # sys.exit() in the objective: its trial fails; the study (and this process) goes on
        return Outcome(spec.id, TrialState.FAILED, error=f"SystemExit: the objective called sys.exit({err.code!r})",
                       traceback=_traceback())
    except Exception as err:  # noqa: BLE001 - a failing objective fails its trial, not the study
        # ...unless a stop signal came: its KeyboardInterrupt may have turned into this exception
        # in code that is not signal-safe (see tunelab.interrupts); the run stops, the trial is
        # cancelled rather than failed for a reason that is not its own.
        raise_if_stopped()
        return Outcome(spec.id, TrialState.FAILED, error=describe(err), traceback=_traceback())
    if trial.past_timeout():  # it returned late, or caught its TrialTimeout and went on: it fails all the same
        return Outcome(spec.id, TrialState.FAILED, error=trial.timed_out)
    try:
        values = normalize_result(result, metrics, trial.reports, spec.reported)
        return Outcome(spec.id, TrialState.COMPLETED, metrics=values)
    except InvalidResult as err:
        return Outcome(spec.id, TrialState.FAILED, error=str(err))
    except Exception as err:  # noqa: BLE001 - a value no float holds (10**400), an array in a dict...
        return Outcome(spec.id, TrialState.FAILED, error=f"the objective's result could not be read: {describe(err)}",
                       traceback=_traceback())


def describe(err: BaseException) -> str:
    """"Type: message" of an exception, also when its ``__str__`` itself fails. A file name that
    was not UTF-8 in the message (a lone surrogate) is written as its escape: as it was, the
    warning that names the failed trial could not be printed or logged."""
    try:
        message = str(err)
    except Exception as inner:  # noqa: BLE001 - the message of a broken exception class
        message = f"(its message could not be made: {type(inner).__name__})"
    return _json.text(f"{type(err).__name__}: {message}")


def _traceback() -> str:
    return _json.text(tb.format_exc())


def _report_at_budget(trial: RunningTrial, spec: TrialSpec, result: Any, metrics: list[str]) -> None:
    """A result that came without a report at the trial's budget is reported there, so that its
    scheduler decides (a rung pauses it) instead of the trial completing below the full budget:
    an objective that fits a subsample of size ``trial.budget`` and returns its score, or a
    continued trial whose checkpoint had already reached its budget (its process died between
    saving it and reporting), which trains nothing and reports nothing (see tunelab.telling)."""
    try:
        values = normalize_result(result, metrics, [], spec.reported)
    except InvalidResult:
        return  # the result itself is refused below
    warn_ended_short(spec.number, trial.reports, spec.budget)
    trial.report(spec.budget, **{m: values[m] for m in metrics})


def worker_record(objective: Objective, spec: TrialSpec) -> dict[str, Any]:
    """Host and process of the worker, and its whole environment only when its fingerprint is not
    the study's: "same environment?" stays one comparison, and differences stay on record."""
    record: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    if spec.environment and spec.environment.get("fingerprint"):
        fingerprint, env = compare_with_study(spec.environment, code_path_of(objective))
        record["environment_fingerprint"] = fingerprint
        if fingerprint != spec.environment["fingerprint"]:
            record["environment"] = env
    return record
