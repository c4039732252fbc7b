"""Trials as Ray tasks: on an existing cluster (``address="ray://head:10001"`` or ``"auto"``) or on
a local Ray started for the run. Each trial asks for its own resources (``resources={"cpus": 2,
"gpus": 1}``); reports come back through a small async actor that holds each one until the tuner
answers it. Needs ``pip install 'tunelab[ray]'``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from typing import Any, Mapping

from tunelab.errors import ConfigError
from tunelab.executors.base import Objective, Outcome
from tunelab.executors.remote import Channel, RemoteExecutor, WorkerLost, check_resources, run_remote
from tunelab.trial import TrialSpec

_RESOURCE_NAMES = {"cpus": "num_cpus", "gpus": "num_gpus", "memory": "memory"}
#: Ray's errors for a task whose worker process (or node) went away: the OOM killer, a segfault,
#: os._exit, a preempted machine; not the trial's own error.
_WORKER_DEATHS = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError")

#: The Ray that a run started in this process is shared by every run that starts while it is up
#: (several studies tuned at once, in threads): the last of them to end shuts it down. Each run
#: starting its own failed ("called ray.init twice"), and the first run to end shut Ray down
#: under the others' trials.
_SHARED_LOCK = threading.Lock()
_shared_users = 0  # runs using the Ray a run started; 0 when none (or when the user started Ray)
_keeper_stop: threading.Event | None = None  # ends the thread that started the shared Ray, if not the main one


def _init_ray(ray: Any, **options: Any) -> None:
    """``ray.init`` from a thread that lives as long as the Ray it starts. Ray's own processes get
    a parent-death signal, which Linux sends when the *thread* that started them ends: a run in a
    thread that ended before the runs sharing its Ray killed their trials (NodeDiedError)."""
    global _keeper_stop
    if threading.current_thread() is threading.main_thread():
        # ray.init sets its own SIGTERM handler, which ended the tuner at once (exit 15, a stack
        # dump) where tunelab's cancels the running trials and queues them again first
        previous = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(**options)
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    started, stop, failed = threading.Event(), threading.Event(), []

    def keep() -> None:
        try:
            ray.init(**options)
        except BaseException as err:  # noqa: BLE001 - raised again in the run's own thread
            failed.append(err)
            return
        finally:
            started.set()
        stop.wait()

    threading.Thread(target=keep, name="tunelab-ray", daemon=True).start()
    started.wait()
    if failed:
        raise failed[0]
    _keeper_stop = stop


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("executor='ray' needs Ray: pip install 'tunelab[ray]'") from None
    return ray


class _Broker:
    """The tuner's mailbox on the cluster: trials post reports and wait; the tuner takes them and
    answers. An async actor, so thousands of waiting reports cost no threads."""

    def __init__(self) -> None:
        self._inbox: list[tuple] = []
        self._waiting: dict[str, asyncio.Future] = {}

    async def ask(self, key: str, message: tuple) -> str:
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self._inbox.append(message)
        return await future

    async def send(self, message: tuple) -> None:
        self._inbox.append(message)

    async def take(self) -> list[tuple]:
        inbox, self._inbox = self._inbox, []
        return inbox

    async def answer(self, key: str, decision: str) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(decision)


class _RayChannel(Channel):
    def __init__(self, broker: Any):
        self._broker = broker

    def ask(self, key: str, message: tuple) -> str:
        # Not ray.get (nor ray.wait, even with timeout=0): in a task, Ray counts a call into its own
        # get/wait on an object not yet there as the task blocking and lends the task's CPUs to the
        # next queued task, so a trial waiting for its answer let another start beside it on one CPU
        # (and the one with timeout=0 lends them for an instant on every call, enough for the
        # raylet to start the next). A future completed by Ray's callback waits in Python alone: the
        # task keeps its resources, and the answer comes as soon as the broker has it.
        return self._broker.ask.remote(key, message).future().result()

    def send(self, message: tuple) -> None:
        self._broker.send.remote(message)


def _trial_task(objective: Objective, spec: TrialSpec, metrics: list[str], channel: Channel) -> Outcome:
    return run_remote(objective, spec, metrics, channel)


def local_runtime_env() -> dict[str, Any]:
    """Workers of a local Ray import what this process imports (its sys.path), so an objective
    defined in the user's module is found; a remote cluster has its own (``init_options``)."""
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)}}


class RayExecutor(RemoteExecutor):
    name = "ray"

    def __init__(self, workers: int = 2, trial_timeout: float | None = None, *, address: str | None = None,
                 resources: Mapping[str, float] | None = None, init_options: Mapping[str, Any] | None = None):
        super().__init__(workers, trial_timeout)
        _ray()  # a missing extra is said before tl.tune makes a study (it left an empty one behind)
        resources = check_resources({"cpus": 1} if resources is None else resources, "{'cpus': 2, 'gpus': 1}")
        unknown = sorted(set(resources) - set(_RESOURCE_NAMES))
        if unknown:
            raise ConfigError(f"Ray resources per trial are {sorted(_RESOURCE_NAMES)}; got {unknown}")
        if init_options is not None and not isinstance(init_options, Mapping):
            raise ConfigError(f"init_options must be a dict of ray.init arguments; got {init_options!r}")
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"address must be a Ray address such as 'ray://10.0.0.5:10001' or 'auto'; got {address!r}")
        self.address, self.resources, self.init_options = address, resources, dict(init_options or {})
        self._started_ray = False

    def _connect(self, objective: Objective) -> None:
        ray = _ray()
        with _SHARED_LOCK:
            self._start_or_join(ray)
        if self.address is None:
            self._check_feasible(ray.cluster_resources())
        self._broker = ray.remote(num_cpus=0)(_Broker).options(name=f"tunelab-{uuid.uuid4().hex[:8]}").remote()
        self._channel = _RayChannel(self._broker)
        self._objective_ref = ray.put(objective)
        options = {_RESOURCE_NAMES[k]: v for k, v in self.resources.items()}
        self._task = ray.remote(max_retries=0, **options)(_trial_task)

    def _start_or_join(self, ray: Any) -> None:
        """Start Ray, or use the one that is up: the user's (left as it is at the end) or one that
        another run started (shared, see ``_shared_users``)."""
        global _shared_users
        if ray.is_initialized():
            if _shared_users:
                _shared_users += 1
                self._started_ray = True
            return
        _shared_users = 0  # (a Ray the user shut down under a run)
        options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
        if self.address is None and "runtime_env" not in options:
            options["runtime_env"] = local_runtime_env()
        try:
            _init_ray(ray, address=self.address, **options)
        except ConnectionError as err:
            raise ConfigError(f"cannot reach the Ray cluster at {self.address!r}: {err}") from None
        except (TypeError, ValueError, RuntimeError) as err:  # an init option ray.init does not take
            if ray.is_initialized():
                raise
            raise ConfigError(f"ray.init refused init_options {sorted(self.init_options)}: {err}") from None
        _shared_users, self._started_ray = 1, True

    def _check_feasible(self, total: Mapping[str, float]) -> None:
        """A trial asking a local Ray for more than it has would wait for ever, without a word
        (Ray's warning goes to the log tunelab keeps out of the terminal)."""
        have = {"cpus": total.get("CPU", 0.0), "gpus": total.get("GPU", 0.0), "memory": total.get("memory", 0.0)}
        short = {k: v for k, v in self.resources.items() if v > have[k]}
        if short:  # (open disconnects)
            raise ConfigError(f"each trial asks Ray for {short}, and this machine's Ray has "
                              f"{ {k: have[k] for k in short} }: no trial could ever start; ask for less")

    def _disconnect(self) -> None:
        global _shared_users, _keeper_stop
        ray = _ray()
        if getattr(self, "_broker", None) is not None:
            ray.kill(self._broker)
            self._broker = None
        if self._started_ray:
            self._started_ray = False
            with _SHARED_LOCK:
                _shared_users = max(_shared_users - 1, 0)
                if not _shared_users:
                    ray.shutdown()
                    if _keeper_stop is not None:
                        _keeper_stop.set()
                        _keeper_stop = None

    def _pickle(self, value: Any) -> bytes:
        _ray()
        import ray.cloudpickle

        return ray.cloudpickle.dumps(value)

    def _launch(self, spec: TrialSpec) -> Any:
        return self._task.remote(self._objective_ref, spec, self._metrics, self._channel)

    def _done(self, handles: list[Any]) -> list[Any]:
        if not handles:
            return []
        ready, _ = _ray().wait(handles, num_returns=len(handles), timeout=0)
        return ready

    def _result(self, handle: Any) -> Outcome:
        ray = _ray()
        lost = tuple(getattr(ray.exceptions, name) for name in _WORKER_DEATHS if hasattr(ray.exceptions, name))
        try:
            return ray.get(handle)
        except lost as err:  # retried as a local worker process's death is (it failed for good before)
            raise WorkerLost(f"the Ray worker running the trial died ({type(err).__name__})") from None

    def _kill(self, handle: Any) -> None:
        try:
            _ray().cancel(handle, force=True)
        except Exception:  # noqa: BLE001 - a task that already ended cannot be cancelled
            pass

    def _messages(self) -> list[tuple]:
        return _ray().get(self._broker.take.remote())

    def _answer(self, key: str, decision: str) -> None:
        self._broker.answer.remote(key, decision)
