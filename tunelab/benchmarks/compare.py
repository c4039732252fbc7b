"""Time-to-quality of tuning methods on learning-curve tasks, in simulated time.

The target of a task is the median best final value that a full-budget random search finds in
100 trials (estimated from TARGET_RUNS independent searches). Each method then tunes the task through the real tuner loop
on the simulated backend until a run *finishes at full fidelity* at the target or better; its
time (and compute, the worker-seconds spent) is recorded per seed. A method that has not got
there after ``cap`` times random search's median time, or after MAX_TRIALS trials (ten times the
random searches that set the target), is marked as not reaching it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tunelab.benchmarks import optuna_baseline
from tunelab.benchmarks.simulator import simulate
from tunelab.benchmarks.tasks import Task

DEFAULT = "tunelab default"
#: name -> options of ``simulate``; the first one is the reference (random, full budget).
METHODS: dict[str, dict[str, Any]] = {
    "random (full budget)": {"searcher": "random", "full_budget": True},
    "tpe/kde (full budget)": {"searcher": "kde", "full_budget": True},
    "median": {"searcher": "random", "scheduler": "median"},
    "curve": {"searcher": "random", "scheduler": "curve"},
    "sh": {"searcher": "random", "scheduler": "sh"},
    "asha (stopping)": {"searcher": "random", "scheduler": "asha", "scheduler_options": {"promotion": False}},
    "asha (promotion)": {"searcher": "random", "scheduler": "asha"},
    "hyperband": {"searcher": "random", "scheduler": "hyperband"},
    "hyperband (async)": {"searcher": "random", "scheduler": "hyperband", "scheduler_options": {"asynchronous": True}},
    "bohb": {"scheduler": "bohb"},
    "asha (promotion) + kde": {"searcher": "kde", "scheduler": "asha"},
    DEFAULT: {},  # scheduler=None: what tl.tune uses with a fidelity (tunelab.api.default_setup)
}
#: name -> Optuna pruner (None: TPE at full budget)
OPTUNA_METHODS: dict[str, str | None] = {
    "optuna tpe (full budget)": None,
    "optuna tpe + sh pruner": "sh",
    "optuna tpe + hyperband pruner": "hyperband",
}
STOPPING_ONLY = {"median", "curve", "asha (stopping)", "optuna tpe + sh pruner", "optuna tpe + hyperband pruner"}


@dataclass
class Outcome:
    times: list[float | None] = field(default_factory=list)
    computes: list[float | None] = field(default_factory=list)
    applicable: bool = True

    def median(self, values: list[float | None]) -> float | None:
        """Median over seeds, counting a seed that never got there as infinitely slow."""
        if not values:
            return None
        median = float(np.median([math.inf if v is None else v for v in values]))
        return median if math.isfinite(median) else None

    @property
    def time(self) -> float | None:
        return self.median(self.times)

    @property
    def compute(self) -> float | None:
        return self.median(self.computes)

    @property
    def reached(self) -> int:
        return sum(t is not None for t in self.times)


@dataclass
class TaskReport:
    task: str
    target: float
    outcomes: dict[str, Outcome]
    scaling: dict[int, float | None]  # workers -> median time of the default setup


#: The target is estimated from this many random searches of 100 trials, seeded apart from the
#: methods' own runs: were they the reference run's, random search would be timed on the very
#: runs that set the bar (and reach it suspiciously early); were they few, the bar would move a
#: lot from one benchmark to the next (the best of 100 trials varies widely).
TARGET_RUNS = 20
MAX_TRIALS = 1000
TARGET_SEED_OFFSET = 1_000_000


def random_target(task: Task, runs: int = TARGET_RUNS) -> float:
    """The median best final value of ``runs`` independent full-budget random searches of 100
    trials each (see TARGET_RUNS)."""
    bests = []
    for seed in range(TARGET_SEED_OFFSET, TARGET_SEED_OFFSET + runs):
        result = simulate(task, searcher="random", full_budget=True, n_trials=100, seed=seed)
        values = [e.value for e in result.events if e.step >= task.fidelity.max * (1 - 1e-9)]
        bests.append(min(values) if task.mode == "min" else max(values))
    return float(np.median(bests))


def compare(task: Task, seeds: list[int], methods: list[str] | None = None, cap: float = 2.0,
            scaling_method: str = DEFAULT, workers: tuple[int, ...] = (1, 2, 4),
            on_result: Callable[[str, Outcome], None] | None = None) -> TaskReport:
    target = random_target(task)
    names = methods or list(METHODS) + list(OPTUNA_METHODS)
    outcomes: dict[str, Outcome] = {}
    reference = _run(task, "random (full budget)", seeds, target, None)
    limit = cap * (reference.time or max(t for t in reference.times if t is not None))
    for name in names:
        outcome = reference if name == "random (full budget)" else _run(task, name, seeds, target, limit)
        outcomes[name] = outcome
        if on_result is not None:
            on_result(name, outcome)
    scaling = {}
    for n in workers:
        scaling[n] = _run(task, scaling_method, seeds, target, limit, workers=n).time
    return TaskReport(task.name, target, outcomes, scaling)


def _run(task: Task, name: str, seeds: list[int], target: float, limit: float | None, workers: int = 1) -> Outcome:
    outcome = Outcome()
    fresh_run = not task.fidelity.resumable
    if name in STOPPING_ONLY and fresh_run:
        outcome.applicable = False  # one run per level: nothing to stop part-way
        return outcome
    for seed in seeds:
        if name in OPTUNA_METHODS:
            if not optuna_baseline.available():
                outcome.applicable = False
                return outcome
            hit = optuna_baseline.run_optuna(task, OPTUNA_METHODS[name], seed, target, limit or math.inf,
                                             max_trials=MAX_TRIALS)
        else:
            timeout = limit if limit is not None else None
            n_trials = MAX_TRIALS if limit is not None else 2 * MAX_TRIALS  # the reference runs until it gets there
            result = simulate(task, seed=seed, workers=workers, target=target, timeout=timeout, n_trials=n_trials,
                              **METHODS[name])
            hit = result.time_to(target, task.mode, task.fidelity.max)
        outcome.times.append(None if hit is None else hit[0])
        outcome.computes.append(None if hit is None else hit[1])
    return outcome
