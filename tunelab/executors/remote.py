"""What the cluster executors (Ray, Dask) share: trials run as remote tasks, and each report
travels back to the tuner through a channel and waits there for the scheduler's decision, so that
pruning and pausing work on a cluster exactly as in local processes.

A backend supplies five things: connect/disconnect, launch a task for a trial, tell whether a
task is done and fetch its Outcome, cancel a task, and a channel (messages from the trials, and
answers to them). Everything else (slots, timeouts, turning a lost task into a failed trial) is
here once.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
import traceback as tb
import uuid
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping

from tunelab.errors import ConfigError, check_count, check_number
from tunelab.executors.base import Executor, Objective, Outcome, run_objective
from tunelab.trial import Decision, ReportSink, TrialSpec, TrialState

#: How often poll() looks at the channel and the tasks while it waits.
_TICK_SECONDS = 0.01
#: The answers to a task that asks to start.
_RUN, _SKIP = "run", "skip"
#: A run none of whose trials has begun after this many seconds says so, once, until one begins:
#: a cluster busy with other work, or with no worker that has what each trial asks for (a node
#: type an autoscaler never adds), would otherwise hold the run in silence.
STALL_SECONDS = 120.0

log = logging.getLogger("tunelab")


def check_resources(resources: object, example: str) -> dict[str, float]:
    """What each trial asks of a worker: names, and amounts a scheduler can compare. A string
    amount failed every trial on Dask ("'>=' not supported"), and a name that is not a string
    left every trial waiting for a worker that has it."""
    if not isinstance(resources, Mapping):
        raise ConfigError(f"resources must be a dict such as {example}; got {resources!r}")
    for key, value in resources.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"resource names must be non-empty strings such as {example}; got {key!r}")
        check_number(f"resources[{key!r}]", value, "a non-negative number", lambda v: math.isfinite(v) and v >= 0)
    return dict(resources)


class Channel:
    """The trial's side of the channel (pickled into the task): a report goes up and the trial
    waits for the decision; a user attribute goes up without waiting."""

    @abstractmethod
    def ask(self, key: str, message: tuple) -> str:
        ...

    @abstractmethod
    def send(self, message: tuple) -> None:
        ...


class ChannelSink(ReportSink):
    def __init__(self, channel: Channel, trial_id: int):
        self._channel, self._trial_id, self._count = channel, trial_id, 0

    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        self._count += 1
        key = f"{trial_id}-{self._count}"
        return Decision(self._channel.ask(key, ("report", key, trial_id, step, metrics)))

    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._channel.send(("attr", None, trial_id, key, value))


def run_remote(objective: Objective, spec: TrialSpec, metrics: list[str], channel: Channel) -> Outcome:
    """The body of every remote task. It asks before it runs (which starts its trial_timeout): a
    cluster may run a task again on its own (Dask recomputes the results a dead worker held),
    and the objective of a trial the tuner has finished must not run a second time."""
    key = f"{spec.id}-start-{uuid.uuid4().hex[:8]}"
    if channel.ask(key, ("started", key, spec.id)) == _SKIP:
        return Outcome(spec.id, TrialState.FAILED, error="not run again: the trial had ended")
    return run_objective(objective, spec, ChannelSink(channel, spec.id), metrics)


@dataclass
class _Task:
    spec: TrialSpec
    handle: Any
    handed: float  # when it was handed to the cluster
    started: float | None = None  # when the task began to run: time in a queue or starting a worker is no trial's


class WorkerLost(Exception):
    """The cluster worker running a trial (or holding its result) died; a backend's ``_result``
    raises it so that the trial fails as one whose process died."""


class RemoteExecutor(Executor):
    """``workers`` trials at once on the cluster; ``trial_timeout`` is enforced by cancelling the
    task (and at the trial's next report, for backends that cannot stop a running task)."""

    def __init__(self, workers: int = 2, trial_timeout: float | None = None):
        check_count("workers", workers, optional=False)
        self.workers, self.trial_timeout = workers, trial_timeout
        self._tasks: dict[int, _Task] = {}
        self._stall_said = False

    # -- the backend ---------------------------------------------------------------------------
    @abstractmethod
    def _connect(self, objective: Objective) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def _launch(self, spec: TrialSpec) -> Any: ...

    @abstractmethod
    def _done(self, handles: list[Any]) -> list[Any]:
        """The handles among ``handles`` whose task has ended (without waiting)."""

    @abstractmethod
    def _result(self, handle: Any) -> Outcome:
        """The task's Outcome; raises if the task itself failed (lost worker, cancelled)."""

    @abstractmethod
    def _kill(self, handle: Any) -> None: ...

    @abstractmethod
    def _messages(self) -> list[tuple]:
        """Messages the trials sent since the last call."""

    @abstractmethod
    def _answer(self, key: str, decision: str) -> None: ...

    def _pickle(self, value: Any) -> bytes:
        """How the backend ships the objective to its workers (backends pickle by value where they can)."""
        return pickle.dumps(value)

    # -- the protocol --------------------------------------------------------------------------
    def check_objective(self, objective: Objective) -> None:
        """Refuses an objective the cluster cannot receive before starting anything: it failed
        with the backend's own error (Dask's only when the first trial was submitted)."""
        try:
            self._pickle(objective)
        except ConfigError:  # the backend is not installed
            raise
        except Exception as err:  # noqa: BLE001 - any pickling failure gets the same advice
            raise ConfigError(
                f"executor={self.name!r} sends the objective to the cluster's workers, so it must be picklable; "
                f"{objective!r} is not ({type(err).__name__}: {err}). Create what it cannot pickle (a lock, an open "
                "file or connection, a client) inside the objective, or use executor='inline'.") from None

    def open(self, objective: Objective, sink: ReportSink, metrics: list[str]) -> None:
        self.check_objective(objective)
        self._sink, self._metrics = sink, list(metrics)
        try:
            self._connect(objective)
        except BaseException:  # what it started (a local cluster) does not outlive the refusal
            self._disconnect()
            raise

    def free_slots(self) -> int:
        return self.workers - len(self._tasks)

    def submit(self, spec: TrialSpec) -> None:
        if self.free_slots() < 1:
            raise RuntimeError("submit called with no free slot; check free_slots() first")
        self._tasks[spec.id] = _Task(spec, self._launch(spec), time.monotonic())

    def poll(self, timeout: float) -> list[Outcome]:
        deadline = time.monotonic() + timeout
        while True:
            self._serve()
            self._say_if_stalled()
            outcomes = self._finished() + self._timed_out()
            if outcomes or not self._tasks or time.monotonic() >= deadline:
                return outcomes
            time.sleep(_TICK_SECONDS)

    def _serve(self) -> None:
        for kind, key, trial_id, *rest in self._messages():
            if kind == "report":
                step, metrics = rest
                self._answer(key, self._sink.report(trial_id, step, metrics).value)
            elif kind == "attr":
                self._sink.set_user_attr(trial_id, *rest)
            elif kind == "started":  # (again, if the cluster runs a task again: its timeout starts anew)
                task = self._tasks.get(trial_id)
                if task is not None:
                    if task.started is None:  # the time before, in the cluster's queue, is no trial's
                        self._sink.started(trial_id)
                    task.started = time.monotonic()
                self._answer(key, _RUN if trial_id in self._tasks else _SKIP)

    def _say_if_stalled(self) -> None:
        tasks = list(self._tasks.values())
        if any(t.started is not None for t in tasks):
            self._stall_said = False
            return
        if self._stall_said or not tasks or time.monotonic() - min(t.handed for t in tasks) < STALL_SECONDS:
            return
        self._stall_said = True
        asks = getattr(self, "resources", None)
        log.warning("none of the %d trials handed to %s has started in %.0f s: the cluster may be busy with other "
                    "work, or have no worker with what each trial asks for (%s); check its resources", len(tasks),
                    self.name, STALL_SECONDS, f"resources={asks}" if asks else "no resources named")

    def _finished(self) -> list[Outcome]:
        done = {id(h) for h in self._done([t.handle for t in self._tasks.values()])}
        outcomes = []
        for trial_id, task in list(self._tasks.items()):
            if id(task.handle) not in done:
                continue
            del self._tasks[trial_id]
            self._serve()  # reports sent just before the end are answered (and stored) first
            try:
                outcomes.append(self._result(task.handle))
            except WorkerLost as err:  # as a local worker process's death: retried up to max_retries
                outcomes.append(Outcome(trial_id, TrialState.FAILED, error=str(err), died=True))
            except Exception as err:  # noqa: BLE001 - a lost task fails its trial, not the study
                outcomes.append(Outcome(trial_id, TrialState.FAILED, error=f"the task running the trial failed: "
                                        f"{type(err).__name__}: {err}", traceback=tb.format_exc()))
        return outcomes

    def _timed_out(self) -> list[Outcome]:
        if self.trial_timeout is None:
            return []
        now, outcomes = time.monotonic(), []
        for trial_id, task in list(self._tasks.items()):
            if task.started is not None and now - task.started > self.trial_timeout:
                self.cancel(trial_id)
                outcomes.append(Outcome(trial_id, TrialState.FAILED,
                                        error=f"trial ran past trial_timeout={self.trial_timeout:g}s and was cancelled"))
        return outcomes

    def collect(self) -> list[Outcome]:
        return self.poll(timeout=0)

    def cancel(self, trial_id: int) -> None:
        task = self._tasks.pop(trial_id, None)
        if task is not None:
            if task.started is None:  # it never left the cluster's queue: it ran for no time at all
                self._sink.started(trial_id)
            self._kill(task.handle)

    def close(self) -> None:
        for trial_id in list(self._tasks):
            self.cancel(trial_id)
        self._disconnect()
