"""Run trials in local worker processes, one trial per worker at a time.

Workers are started with ``spawn`` (safe with threads, CUDA and every OS) and reused across
trials. Each talks to the tuner over its own pipe: a report goes up and the worker waits for the
scheduler's decision. A worker that dies in any way (an exception escaping, ``os._exit``, a
segfault, the OOM killer) fails only the trial it was running and is replaced; a trial that runs
past ``trial_timeout`` has its worker killed. Workers exit on their own if the tuner disappears.

Each worker leads a process group of its own, and a worker is stopped with its whole group: the
processes its trial started (a data loader's workers, a training script, ``torchrun``) would
otherwise run on, holding a GPU, after their trial timed out, was cancelled or lost its tuner.
A worker that cannot even start (its objective does not load in a fresh process, as when a
script tunes at its top level without the ``__main__`` guard) ends the run with that said,
instead of failing every trial with an exit code.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Sequence

from tunelab.errors import ConfigError, check_count
from tunelab.executors.base import Executor, Objective, Outcome, guard_advice, refuse_in_reloading_process, \
    run_objective
from tunelab.trial import Decision, ReportSink, TrialSpec, TrialState

_GRACE_SECONDS = 2.0
#: The user attribute in which a trial keeps the GPUs its worker had (``gpus=``).
GPUS_ATTR = "worker_gpus"


def check_gpus(gpus: Any) -> list[str] | None:
    """``gpus=`` as the list of CUDA_VISIBLE_DEVICES values the workers take in turn: GPU
    numbers (``[0, 1]`` or ``"0,1"``) or UUIDs (``"GPU-..."``)."""
    if gpus is None:
        return None
    items = gpus.split(",") if isinstance(gpus, str) else gpus
    allowed = ("gpus must be a list of GPU numbers or UUIDs ([0, 1], '0,1' or ['GPU-5a1c...']), [] for none, "
               "or None for every GPU this process sees")
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{allowed}; got {gpus!r}")
    chosen = []
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if isinstance(item, bool) or not (isinstance(item, int) and item >= 0 or isinstance(item, str)
                                          and item.strip() and not set(item.strip()) & set(", \t\n")):
            raise ConfigError(f"{allowed}; got {gpus!r}")
        chosen.append(str(item).strip())
    return chosen


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


def _exit_when_orphaned(parent_pid: int, own_group: bool) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            if own_group:  # what the trial started goes too: nobody is left to stop it
                _signal_group(os.getpid(), signal.SIGKILL)
            os._exit(3)


def _worker_process(conn: Connection, objective: bytes, metrics: list[str], parent_pid: int,
                    gpus: str | None = None) -> None:
    """A worker process's entry: lead a process group of its own, so that stopping the worker
    reaches whatever its trial started, then serve trials.

    The objective comes pickled, and is loaded only after the worker's GPUs are set: loading it
    imports the user's modules, and one that touches CUDA as it is imported must already see
    the worker's GPUs alone."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    own_group = hasattr(os, "setpgid")  # POSIX; elsewhere the worker alone is stopped
    if own_group:
        try:
            os.setpgid(0, 0)
        except OSError:
            own_group = False
    _worker_main(conn, pickle.loads(objective), metrics, parent_pid, own_group=own_group, gpus=gpus)


def _worker_main(conn: Connection, objective: Objective, metrics: list[str], parent_pid: int,
                 own_group: bool = False, gpus: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the tuner's to handle
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid, own_group), daemon=True).start()
    sink = _PipeSink(conn)
    try:
        conn.send(("ready",))  # it loaded the objective: a death from now on is a trial's
    except (BrokenPipeError, ConnectionResetError):
        return
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
            if gpus is not None:  # which of the machine's GPUs the trial had, for its record
                sink.set_user_attr(spec.id, GPUS_ATTR, gpus)
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
    ready: bool = False  # it has said so: it loaded the objective and serves trials


class ProcessExecutor(Executor):
    """``gpus``: the GPUs the workers share out, one each in turn (worker ``i`` sees
    ``gpus[i % len(gpus)]`` alone, through ``CUDA_VISIBLE_DEVICES``, so ``"cuda"`` in its trials
    is its own GPU); ``[]`` hides every GPU; None (the default) leaves the workers the GPUs
    this process sees. A worker started in place of a dead one keeps its GPU."""

    name = "processes"

    def __init__(self, workers: int = 2, trial_timeout: float | None = None,
                 gpus: Sequence[int | str] | str | None = None):
        refuse_in_reloading_process(_GUARD_ADVICE)
        check_count("workers", workers, optional=False)
        self.workers, self.trial_timeout = workers, trial_timeout
        self.gpus = check_gpus(gpus)
        self._ctx = mp.get_context("spawn")
        self._pool: list[_Worker] = []

    def check_objective(self, objective: Objective) -> None:
        self._pickled(objective)

    def _pickled(self, objective: Objective) -> bytes:
        try:
            return pickle.dumps(objective)
        except Exception as err:  # noqa: BLE001 - any pickling failure gets the same advice
            raise ConfigError(
                f"workers={self.workers} runs the objective in other processes, so it must be picklable "
                f"(a function defined at the top level of a module); {objective!r} is not ({err}). "
                "Move it to module level, or use workers=1."
            ) from None

    def open(self, objective: Objective, sink: ReportSink, metrics: list[str]) -> None:
        self._objective = self._pickled(objective)
        self._sink, self._metrics = sink, list(metrics)
        self._pool = [self._spawn(slot) for slot in range(self.workers)]

    def _spawn(self, slot: int) -> _Worker:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        gpus = None if self.gpus is None else self.gpus[slot % len(self.gpus)] if self.gpus else ""
        process = self._ctx.Process(target=_worker_process, daemon=True, name="tunelab-worker",
                                    args=(child_end, self._objective, self._metrics, os.getpid(), gpus))
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def free_slots(self) -> int:
        return sum(1 for w in self._pool if w.spec is None)

    def submit(self, spec: TrialSpec) -> None:
        worker = next((w for w in self._pool if w.spec is None), None)
        if worker is None:
            raise RuntimeError("submit called with no free worker; check free_slots() first")
        if not worker.process.is_alive():  # died while idle, or stopped: replace it, unless it never started
            if not worker.conn.closed:
                self._drain(worker)
            self._refuse_if_never_ready(worker)
            _terminate(worker)
            index = self._pool.index(worker)
            worker = self._pool[index] = self._spawn(index)
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
                outcome = self._drain(worker)  # what it said before it died (its result, maybe) counts
                if outcome is not None:
                    outcomes.append(outcome)
                    continue
                self._refuse_if_never_ready(worker)
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
            kind, worker.ready = message[0], True
            if kind == "started":
                worker.started = time.monotonic()
                self._sink.started(message[1])  # its duration and cost count from here, not from the spawn
            elif kind == "report":
                _, trial_id, step, metrics = message
                decision = self._sink.report(trial_id, step, metrics).value
                try:
                    worker.conn.send(("decision", decision))
                except OSError:
                    pass  # it died after it reported (killed meanwhile): the sentinel check says so
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

    def _refuse_if_never_ready(self, worker: _Worker) -> None:
        """A worker that exited with an error before it loaded the objective: every worker would
        (the objective does not load in a fresh process), so the run ends, saying why."""
        code = worker.process.exitcode
        if not worker.ready and code is not None and code > 0:
            _terminate(worker)
            self._pool.remove(worker)  # its trial is the tuner's to put back in the queue
            raise ConfigError(f"a worker process exited with code {code} before it could run a trial: it could not "
                              "load the objective (its error is printed above). Worker processes load the main script "
                              f"again to find the objective. {_GUARD_ADVICE}")

    def _replace(self, worker: _Worker, error: str, died: bool = False) -> Outcome:
        """Kill a worker (if still alive), start a fresh one in its place, fail its trial."""
        spec = worker.spec
        if worker.started is None:  # it never began: it ran for no time at all
            self._sink.started(spec.id)
        _terminate(worker)
        index = self._pool.index(worker)
        self._pool[index] = self._spawn(index)
        return Outcome(spec.id, TrialState.FAILED, error=error, died=died)

    def collect(self) -> list[Outcome]:
        return self.poll(timeout=0)

    def cancel(self, trial_id: int) -> None:
        for worker in self._pool:
            if worker.spec is not None and worker.spec.id == trial_id:
                if worker.started is None:  # it never began: it ran for no time at all
                    self._sink.started(trial_id)
                _terminate(worker)
                # A fresh worker takes its place when a trial needs one (``submit``): a tuner cancels
                # as it stops, and one started now would only load the objective to be killed.
                worker.spec = worker.started = None

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
    """Stop a worker and every process of its group: SIGTERM first (a script may clean up), then
    SIGKILL for whatever is left. The last signal goes out after the worker has ended, to the
    processes of its group still alive: a group keeps its number while any of them lives."""
    process = worker.process
    if process.is_alive():
        _signal_group(process.pid, signal.SIGTERM)
        process.terminate()
        process.join(_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
    _signal_group(process.pid, signal.SIGKILL)
    process.join(_GRACE_SECONDS)
    worker.conn.close()


def _signal_group(pgid: int, sig: int) -> None:
    if hasattr(os, "killpg"):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # no such group (the worker did not make one, or it has ended)


_GUARD_ADVICE = guard_advice("use workers=1 (the trials then run in the tuner's process)")


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process died ({name}) while running the trial"
    return f"worker process exited with code {exitcode} while running the trial"
