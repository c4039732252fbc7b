"""Trials as Dask tasks: on an existing scheduler (``address="tcp://scheduler:8786"``) or on a
LocalCluster started for the run (threads in this process by default, ``processes=True`` for
worker processes). Reports come back through Dask queues held by the scheduler: a trial posts its
report and waits on a queue of its own for the tuner's decision. ``resources`` are Dask's abstract
worker resources (e.g. ``{"GPU": 1}``, for workers started with ``--resources GPU=1``). Needs
``pip install 'tunelab[dask]'``.
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from tunelab.errors import ConfigError
from tunelab.executors.base import Objective, Outcome
from tunelab.executors.remote import Channel, RemoteExecutor, WorkerLost, run_remote
from tunelab.trial import TrialSpec


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError("executor='dask' needs Dask: pip install 'tunelab[dask]'") from None
    return distributed


#: How long a finished task's result may take to arrive before it is taken for lost.
_RESULT_SECONDS = 10.0


class _DaskChannel(Channel):
    def __init__(self, name: str):
        self.name = name

    def ask(self, key: str, message: tuple) -> str:
        distributed = _distributed()
        distributed.Queue(self.name).put(message)
        return distributed.Queue(f"{self.name}-{key}").get()

    def send(self, message: tuple) -> None:
        _distributed().Queue(self.name).put(message)


class DaskExecutor(RemoteExecutor):
    name = "dask"

    def __init__(self, workers: int = 2, trial_timeout: float | None = None, *, address: str | None = None,
                 processes: bool = False, resources: Mapping[str, float] | None = None):
        super().__init__(workers, trial_timeout)
        if resources is not None and not isinstance(resources, Mapping):
            raise ConfigError(f"resources must be a dict such as {{'GPU': 1}}; got {resources!r}")
        if not isinstance(processes, bool):  # 'no' is true
            raise ConfigError(f"processes must be True or False; got {processes!r}")
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"address must be a scheduler address such as 'tcp://10.0.0.5:8786'; got {address!r}")
        self.address, self.processes, self.resources = address, bool(processes), dict(resources or {})
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
            import dask

            # A worker dying under a trial fails it at once (tunelab retries it, max_retries), not
            # after Dask ran it on three more workers.
            self._config = dask.config.set({"distributed.scheduler.allowed-failures": 0})
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers if self.processes else 1, threads_per_worker=1 if self.processes else self.workers,
                processes=self.processes, dashboard_address=None)
            self._client = distributed.Client(self._cluster)
        self._channel = _DaskChannel(f"tunelab-{uuid.uuid4().hex[:12]}")
        self._inbox = distributed.Queue(self._channel.name, client=self._client)
        self._objective = objective

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._config.__exit__(None, None, None)
        self._client = self._cluster = None

    def _launch(self, spec: TrialSpec) -> Any:
        return self._client.submit(run_remote, self._objective, spec, self._metrics, self._channel, pure=False,
                                   key=f"tunelab-trial-{spec.id}-{uuid.uuid4().hex[:8]}",
                                   resources=self.resources or None)

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

    def _messages(self) -> list[tuple]:
        return [tuple(m) for m in self._inbox.get(batch=True)]

    def _answer(self, key: str, decision: str) -> None:
        _distributed().Queue(f"{self._channel.name}-{key}", client=self._client).put(decision)
