"""Trials as Dask tasks: on an existing scheduler (``address="tcp://scheduler:8786"``) or on a
LocalCluster started for the run (threads in this process by default, ``processes=True`` for
worker processes). Reports come back through Dask queues held by the scheduler: a trial posts its
report and waits on a queue of its own for the tuner's decision. ``resources`` are Dask's abstract
worker resources (e.g. ``{"GPU": 1}``, for workers started with ``--resources GPU=1``). Needs
``pip install 'tunelab[dask]'``.
"""

from __future__ import annotations

import ctypes
import threading
import uuid
from typing import Any, Mapping

from tunelab.errors import ConfigError
from tunelab.executors.base import Objective, Outcome, guard_advice, refuse_in_reloading_process
from tunelab.executors.remote import Channel, RemoteExecutor, WorkerLost, check_resources, run_remote
from tunelab.trial import TrialSpec, TrialState


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError("executor='dask' needs Dask: pip install 'tunelab[dask]'") from None
    return distributed


#: Said where Dask's local worker processes could not start, and in each of them when it loads an
#: unguarded main script again and reaches tl.tune there (it would start a cluster of its own).
_GUARD_ADVICE = guard_advice("leave processes out (trials then run in threads)")

#: How long a finished task's result may take to arrive before it is taken for lost.
_RESULT_SECONDS = 10.0


class _DaskChannel(Channel):
    """Each handle on a queue is released after use: the scheduler keeps a queue until every handle
    on it is, and one queue per report stayed on it for good (a long-lived shared scheduler grew
    with every study run on it)."""

    def __init__(self, name: str):
        self.name = name

    def ask(self, key: str, message: tuple) -> str:
        # the queue of the answer is held before the report goes up: it cannot be released (and
        # the answer lost) between the tuner's answer and this trial's reading it
        answer = _distributed().Queue(f"{self.name}-{key}")
        try:
            self.send(message)
            return answer.get()
        finally:
            answer.close()

    def send(self, message: tuple) -> None:
        inbox = _distributed().Queue(self.name)
        try:
            inbox.put(message)
        finally:
            inbox.close()


class TrialCancelled(BaseException):
    """Raised in the thread of a trial the tuner cancelled (its trial_timeout, the run's budget,
    Ctrl-C). A BaseException, so that an objective's own ``except Exception`` does not keep it
    running."""


#: The threads of this process that run trials now, by task key. Dask cannot stop a task running
#: in a thread (the default local cluster's workers are threads of this process), so a cancelled
#: trial would hold its thread to its natural end: later trials waited for it, and closing the
#: cluster at the end of the run (or on Ctrl-C) waited for every such trial to finish.
_THREADS: dict[str, int] = {}
_THREADS_LOCK = threading.Lock()


def _trial_task(key: str, objective: Objective, spec: TrialSpec, metrics: list[str], channel: Channel) -> Outcome:
    try:
        try:
            with _THREADS_LOCK:
                _THREADS[key] = threading.get_ident()
            return run_remote(objective, spec, metrics, channel)
        finally:
            with _THREADS_LOCK:
                if _THREADS.get(key) == threading.get_ident():
                    del _THREADS[key]
            _settle()
    except TrialCancelled:
        return Outcome(spec.id, TrialState.FAILED, error="cancelled by the tuner")


def _settle() -> None:
    """A call of a Python function: a cancellation sent just before the task left ``_THREADS`` is
    raised here, inside the task, and never in the next task that this thread runs."""


def _stop_thread_of(key: str) -> None:
    """Raise TrialCancelled in the thread running task ``key``, if it runs in this process: the
    objective stops at its next Python instruction (a long call into C finishes first)."""
    with _THREADS_LOCK:
        ident = _THREADS.pop(key, None)
        if ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(TrialCancelled))


class DaskExecutor(RemoteExecutor):
    name = "dask"

    def __init__(self, workers: int = 2, trial_timeout: float | None = None, *, address: str | None = None,
                 processes: bool = False, resources: Mapping[str, float] | None = None):
        super().__init__(workers, trial_timeout)
        _distributed()  # a missing extra is said before tl.tune makes a study (it left an empty one behind)
        refuse_in_reloading_process(_GUARD_ADVICE)
        if not isinstance(processes, bool):  # 'no' is true
            raise ConfigError(f"processes must be True or False; got {processes!r}")
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"address must be a scheduler address such as 'tcp://10.0.0.5:8786'; got {address!r}")
        self.address, self.processes = address, bool(processes)
        self.resources = {} if resources is None else check_resources(resources, "{'GPU': 1}")
        self._client = self._cluster = None

    def _connect(self, objective: Objective) -> None:
        distributed = _distributed()
        if self.address:
            try:
                self._client = distributed.Client(self.address, timeout="10s")
            except (OSError, TimeoutError) as err:
                raise ConfigError(f"cannot reach the Dask scheduler at {self.address!r}: {err}") from None
        else:
            if self.resources:
                raise ConfigError(f"resources={self.resources!r} asks for what Dask workers declare (dask worker "
                                  "--resources 'GPU=1'), and the local cluster tunelab starts declares none: no trial "
                                  "would ever start. Leave resources out, or pass the address of a cluster whose "
                                  "workers declare them")
            try:
                self._cluster = distributed.LocalCluster(
                    n_workers=self.workers if self.processes else 1,
                    threads_per_worker=1 if self.processes else self.workers,
                    processes=self.processes, dashboard_address=None,
                    # its scheduler's HTTP server took port 8787 (a user's own Dask dashboard's), or said
                    # "Port 8787 is already in use" on every run beside another; any free local port
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0",
                                      # A worker dying under a trial fails it at once (tunelab retries it,
                                      # max_retries), not after Dask ran it on three more workers. Given to
                                      # this scheduler alone: set in Dask's global config for the run, it
                                      # changed the user's own Dask work meanwhile, and two runs at once
                                      # left it changed for good (each restored what it found).
                                      "allowed_failures": 0})
            except RuntimeError as err:  # "Nanny failed to start.", after pages of its workers' tracebacks
                if not self.processes:
                    raise
                raise ConfigError(f"Dask's local worker processes did not start ({err}). {_GUARD_ADVICE}") from None
            self._client = distributed.Client(self._cluster)
        self._channel = _DaskChannel(f"tunelab-{uuid.uuid4().hex[:12]}")
        self._inbox = distributed.Queue(self._channel.name, client=self._client)
        self._objective = objective

    def _disconnect(self) -> None:
        if self._client is not None:
            if getattr(self, "_inbox", None) is not None:
                self._inbox.close()
                self._inbox = None
            self._client.close()
        if self._cluster is not None:
            if not self.processes:  # its threads: a trial still in one (a long C call) ends on its own
                for worker in list(self._cluster.workers.values()):
                    self._cluster.sync(worker.close, executor_wait=False, reason="tunelab run ended")
            self._cluster.close()
        self._client = self._cluster = None

    def _pickle(self, value: Any) -> bytes:
        _distributed()
        import cloudpickle  # what Dask falls back on, where plain pickle fails (closures, lambdas)

        return cloudpickle.dumps(value)

    def _launch(self, spec: TrialSpec) -> Any:
        key = f"tunelab-trial-{spec.id}-{uuid.uuid4().hex[:8]}"
        return self._client.submit(_trial_task, key, self._objective, spec, self._metrics, self._channel, pure=False,
                                   key=key, resources=self.resources or None)

    def _done(self, handles: list[Any]) -> list[Any]:
        return [h for h in handles if h.done()]

    def _result(self, handle: Any) -> Outcome:
        distributed = _distributed()
        try:
            # Done, so at hand, unless the worker holding it died: then Dask would run the trial
            # again to get it, and that run would wait for answers to its reports from this very
            # call, for ever.
            return handle.result(timeout=_RESULT_SECONDS)
        except TimeoutError:
            handle.cancel()
            raise WorkerLost("the Dask worker holding the trial's result died") from None
        except distributed.KilledWorker:
            raise WorkerLost("the Dask worker running the trial died") from None

    def _kill(self, handle: Any) -> None:
        handle.cancel()
        _stop_thread_of(handle.key)

    def _messages(self) -> list[tuple]:
        return [tuple(m) for m in self._inbox.get(batch=True)]

    def _answer(self, key: str, decision: str) -> None:
        answer = _distributed().Queue(f"{self._channel.name}-{key}", client=self._client)
        try:
            answer.put(decision)
        finally:
            answer.close()
