"""Run trials in local worker processes, one trial per worker at a time.

Workers are started with ``spawn`` (safe with threads, CUDA and every OS) and reused across
trials. Each talks to the tuner over its own pipe: a report goes up and the worker waits for the
scheduler's decision. A worker that dies in any way (an exception escaping, ``os._exit``, a
segfault, the OOM killer) fails only the trial it was running and is replaced; a trial that runs
past ``trial_timeout`` has its worker killed. Workers exit on their own if the tuner disappears.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from tunelab.errors import ConfigError, check_count
from tunelab.executors.base import Executor, Objective, Outcome, run_objective
from tunelab.trial import Decision, ReportSink, TrialSpec, TrialState

_GRACE_SECONDS = 2.0


class _PipeSink(ReportSink):
    """The worker's side of a report: send it up, wait for the tuner's decision."""

    def __init__(self, conn: Connection):
        self._conn = conn

    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        self._conn.send(("report", trial_id, step, metrics))
        kind, decision = self._conn.recv()
        return Decision(decision)

    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._conn.send(("attr", trial_id, key, value))


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(3)


def _worker_main(conn: Connection, objective: Objective, metrics: list[str], parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the tuner's to handle
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    sink = _PipeSink(conn)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            return
        spec: TrialSpec = message[1]
        try:
            conn.send(("started", spec.id))
            outcome = run_objective(objective, spec, sink, metrics, whole_process=True)
            try:
                conn.send(("done", outcome))
            except (TypeError, pickle.PicklingError, AttributeError) as err:
                conn.send(("done", Outcome(spec.id, TrialState.FAILED, error=f"result could not be sent back: {err}")))
        except (BrokenPipeError, ConnectionResetError):
            return  # the tuner is gone (killed): nobody to tell; its next start recovers the trial


@dataclass
class _Worker:
    process: Any
    conn: Connection
    spec: TrialSpec | None = None
    started: float | None = None
    messages: list = field(default_factory=list)


class ProcessExecutor(Executor):
    name = "processes"

    def __init__(self, workers: int = 2, trial_timeout: float | None = None):
        check_count("workers", workers, optional=False)
        self.workers, self.trial_timeout = workers, trial_timeout
        self._ctx = mp.get_context("spawn")
        self._pool: list[_Worker] = []

    def open(self, objective: Objective, sink: ReportSink, metrics: list[str]) -> None:
        try:
            pickle.dumps(objective)
        except Exception as err:  # noqa: BLE001 - any pickling failure gets the same advice
            raise ConfigError(
                f"workers={self.workers} runs the objective in other processes, so it must be picklable "
                f"(a function defined at the top level of a module); {objective!r} is not ({err}). "
                "Move it to module level, or use workers=1."
            ) from None
        self._objective, self._sink, self._metrics = objective, sink, list(metrics)
        self._pool = [self._spawn() for _ in range(self.workers)]

    def _spawn(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, daemon=True, name="tunelab-worker",
                                    args=(child_end, self._objective, self._metrics, os.getpid()))
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def free_slots(self) -> int:
        return sum(1 for w in self._pool if w.spec is None)

    def submit(self, spec: TrialSpec) -> None:
        worker = next((w for w in self._pool if w.spec is None), None)
        if worker is None:
            raise RuntimeError("submit called with no free worker; check free_slots() first")
        if not worker.process.is_alive():  # died while idle: replace it quietly
            _terminate(worker)
            index = self._pool.index(worker)
            worker = self._pool[index] = self._spawn()
        worker.spec, worker.started = spec, None
        worker.conn.send(("run", spec))

    def poll(self, timeout: float) -> list[Outcome]:
        busy = [w for w in self._pool if w.spec is not None]
        if not busy:
            return []
        deadline_wait = self._time_to_next_deadline(busy)
        waits = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(waits, timeout=min(timeout, deadline_wait) if deadline_wait is not None else timeout))
        outcomes: list[Outcome] = []
        for worker in busy:
            if worker.conn in ready:
                outcome = self._drain(worker)
                if outcome is not None:
                    outcomes.append(outcome)
                    continue
            if worker.spec is not None and not worker.process.is_alive():
                outcomes.append(self._replace(worker, _death_message(worker.process.exitcode), died=True))
            elif worker.spec is not None and self._timed_out(worker):
                outcomes.append(self._replace(worker, f"trial ran past trial_timeout={self.trial_timeout:g}s and was killed"))
        return outcomes

    def _drain(self, worker: _Worker) -> Outcome | None:
        """Handle every message a worker has sent; returns its outcome when its trial ended."""
        while worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                return None  # the process died; the sentinel check reports it
            kind = message[0]
            if kind == "started":
                worker.started = time.monotonic()
            elif kind == "report":
                _, trial_id, step, metrics = message
                worker.conn.send(("decision", self._sink.report(trial_id, step, metrics).value))
            elif kind == "attr":
                _, trial_id, key, value = message
                self._sink.set_user_attr(trial_id, key, value)
            elif kind == "done":
                worker.spec = worker.started = None
                return message[1]
        return None

    def _time_to_next_deadline(self, busy: list[_Worker]) -> float | None:
        if self.trial_timeout is None:
            return None
        started = [w.started for w in busy if w.started is not None]
        if not started:
            return None
        return max(min(started) + self.trial_timeout - time.monotonic(), 0.0)

    def _timed_out(self, worker: _Worker) -> bool:
        return (self.trial_timeout is not None and worker.started is not None
                and time.monotonic() - worker.started > self.trial_timeout)

    def _replace(self, worker: _Worker, error: str, died: bool = False) -> Outcome:
        """Kill a worker (if still alive), start a fresh one in its place, fail its trial."""
        spec = worker.spec
        _terminate(worker)
        self._pool[self._pool.index(worker)] = self._spawn()
        return Outcome(spec.id, TrialState.FAILED, error=error, died=died)

    def collect(self) -> list[Outcome]:
        return self.poll(timeout=0)

    def cancel(self, trial_id: int) -> None:
        for worker in self._pool:
            if worker.spec is not None and worker.spec.id == trial_id:
                _terminate(worker)
                self._pool[self._pool.index(worker)] = self._spawn()

    def close(self) -> None:
        for worker in self._pool:
            if worker.spec is None and worker.process.is_alive():
                try:
                    worker.conn.send(("exit",))
                except (OSError, BrokenPipeError):
                    pass
        deadline = time.monotonic() + _GRACE_SECONDS
        for worker in self._pool:
            if worker.spec is None:
                worker.process.join(max(deadline - time.monotonic(), 0.0))
            _terminate(worker)
        self._pool = []


def _terminate(worker: _Worker) -> None:
    process = worker.process
    if process.is_alive():
        process.terminate()
        process.join(_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(_GRACE_SECONDS)
    worker.conn.close()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process died ({name}) while running the trial"
    return f"worker process exited with code {exitcode} while running the trial"
