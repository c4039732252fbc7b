"""The simulated-clock backend: the tuner's own loop, with N simulated workers replaying curves.

``SimulatedExecutor`` is an ordinary executor (rule 7): the tuner submits trials, polls for
outcomes and routes every report through the study's scheduler, exactly as with real workers.
Only time is different: each worker replays its trial's curve from the task, and the executor
advances a ``SimulatedClock`` to the next report of whichever worker is due first. A paused
trial's progress is remembered (the simulated checkpoint) so a promotion pays only the extra
epochs; a fresh-run fidelity pays each level in full. Same seed, same run, to the last report.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from tunelab.api import create_study
from tunelab.benchmarks.tasks import Task, at_or_better
from tunelab.errors import ConfigError, check_count
from tunelab.executors.base import Executor, Outcome
from tunelab.storage import MemoryStorage
from tunelab.study import Study
from tunelab.trial import Decision, ReportSink, TrialSpec, TrialState
from tunelab.budgets import Budgets
from tunelab.tuner import Tuner


class SimulatedClock:
    """A clock the tuner reads like ``time.monotonic``; only the executor moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance_to(self, when: float) -> None:
        self.now = max(self.now, when)


@dataclass(order=True)
class _Job:
    due: float  # simulated time of the next report
    order: int  # ties broken by submission order, so runs are deterministic
    spec: TrialSpec = field(compare=False)
    steps: list[float] = field(compare=False)
    done: float = field(compare=False)  # the step reached so far (0 before the first report)
    cost: float = field(compare=False, default=0.0)  # worker-seconds until the next report
    started: float = field(compare=False, default=0.0)  # simulated time the run began (for trial_timeout)


@dataclass(frozen=True)
class Event:
    time: float
    compute: float
    trial: int
    step: float
    value: float


class SimulatedExecutor(Executor):
    name = "simulated"

    def __init__(self, task: Task, workers: int = 1):
        check_count("workers", workers, optional=False)
        self.task, self.workers = task, workers
        self.clock = SimulatedClock()
        self.compute = 0.0  # worker-seconds spent, summed over workers
        self.events: list[Event] = []  # every report, with the time and compute spent so far
        self._jobs: list[_Job] = []
        self._progress: dict[int, float] = {}  # trial id -> step its checkpoint holds
        self._order = 0

    def open(self, objective: Any, sink: ReportSink, metrics: list[str]) -> None:
        self._sink, self._metric = sink, metrics[0]

    def free_slots(self) -> int:
        return self.workers - len(self._jobs)

    def submit(self, spec: TrialSpec) -> None:
        fidelity = self.task.fidelity
        budget = fidelity.max if spec.budget is None else spec.budget
        start = self._progress.get(spec.id, 0.0) if fidelity.resumable else 0.0
        steps = self.task.report_steps(start, budget)
        if not steps:
            raise ConfigError(f"trial {spec.number}: nothing to run from step {start:g} to budget {budget:g}")
        self._order += 1
        self._schedule(_Job(0.0, self._order, spec, steps, start, started=self.clock.now), start)

    def _schedule(self, job: _Job, start: float) -> None:
        job.cost = self.task.cost(job.spec.config, start, job.steps[0])
        job.due = self.clock.now + job.cost
        heapq.heappush(self._jobs, job)

    def poll(self, timeout: float) -> list[Outcome]:
        """Replay the next report due; returns the outcome when that report ends its trial."""
        if not self._jobs:
            return []
        job = heapq.heappop(self._jobs)
        step = job.steps.pop(0)
        self.compute += job.cost
        self.clock.advance_to(job.due)
        if job.spec.timeout is not None and self.clock.now - job.started > job.spec.timeout:
            # as a real run is failed at the report that finds it past its time (simulated seconds)
            return [Outcome(job.spec.id, TrialState.FAILED, error=f"trial ran past trial_timeout="
                            f"{job.spec.timeout:g}s (simulated)")]
        value = self.task.value(job.spec.config, step)
        self.events.append(Event(self.clock.now, self.compute, job.spec.number, step, value))
        decision = self._sink.report(job.spec.id, step, {self._metric: value})
        job.done = step
        if self.task.fidelity.resumable:
            self._progress[job.spec.id] = step
        if decision is Decision.STOP:
            return [Outcome(job.spec.id, TrialState.PRUNED)]
        if decision is Decision.PAUSE:
            return [Outcome(job.spec.id, TrialState.PAUSED)]
        if not job.steps:
            return [Outcome(job.spec.id, TrialState.COMPLETED, metrics={self._metric: value})]
        # Within one run, the next report costs the units between the two steps.
        self._schedule(job, step)
        return []

    def cancel(self, trial_id: int) -> None:
        self._jobs = [j for j in self._jobs if j.spec.id != trial_id]
        heapq.heapify(self._jobs)

    def close(self) -> None:
        self._jobs = []


@dataclass
class SimulationResult:
    study: Study
    events: list[Event]
    elapsed: float  # simulated seconds
    compute: float  # simulated worker-seconds
    stop_reason: str

    def time_to(self, target: float, mode: str, max_step: float,
                until: float | None = None) -> tuple[float, float] | None:
        """(time, compute) when a run first *finished* at full fidelity at or better than target."""
        event = self.first_hit(target, mode, max_step, until)
        return None if event is None else (event.time, event.compute)

    def first_hit(self, target: float, mode: str, max_step: float, until: float | None = None) -> Event | None:
        """The report of the first run to finish at full fidelity at or better than target, at
        or before ``until`` simulated seconds. A timeout stops the tuner at the first report
        past it, and that report is replayed: ``until`` (the timeout) keeps a run that ends after
        the cap from counting, as the Optuna baseline does not count one."""
        for event in self.events:
            if until is not None and event.time > until:
                return None
            if event.step >= max_step * (1 - 1e-9) and at_or_better(event.value, target, mode):
                return event
        return None


def simulate(task: Task, *, searcher: Any = None, scheduler: Any = None, workers: int = 1, seed: int = 0,
             n_trials: int | None = None, timeout: float | None = None, target: float | None = None,
             searcher_options: dict | None = None, scheduler_options: dict | None = None,
             full_budget: bool = False) -> SimulationResult:
    """Tune ``task`` through the real Tuner loop on simulated workers and a simulated clock.

    ``full_budget`` hides the fidelity from the study (every trial runs to the end), which is how
    plain black-box search is compared. ``timeout`` is in simulated seconds. With no scheduler
    named, the study gets tunelab's default multi-fidelity setup.
    """
    study = create_study(task.space, metric=task.metric, mode=task.mode, storage=MemoryStorage(), seed=seed,
                         searcher=searcher, scheduler=scheduler, searcher_options=searcher_options,
                         scheduler_options=scheduler_options, fidelity=None if full_budget else task.fidelity,
                         name=f"sim-{task.name}", environment={"simulated": task.name})
    executor = SimulatedExecutor(task, workers)
    budgets = Budgets(n_trials=n_trials, timeout=timeout, target=target, max_failures=None)
    budgets.validate()
    if n_trials is None and timeout is None and target is None:
        raise ConfigError("simulate needs n_trials, timeout or target so that it ends")
    reason = Tuner(study, task, executor, budgets, progress=False).run()
    return SimulationResult(study, executor.events, executor.clock(), executor.compute, reason)

