"""Run trials one at a time in the tuner's own thread: no processes, easy to debug.

A trial cannot be killed from outside here, so ``trial_timeout`` is enforced at the trial's
next ``report``; use ``workers >= 2`` (local processes) for objectives that may hang.
"""

from __future__ import annotations

from collections import deque

from tunelab.executors.base import Executor, Objective, Outcome, run_objective
from tunelab.trial import ReportSink, TrialSpec


class InlineExecutor(Executor):
    name = "inline"

    def __init__(self) -> None:
        self._queue: deque[TrialSpec] = deque()

    def open(self, objective: Objective, sink: ReportSink, metrics: list[str]) -> None:
        self._objective, self._sink, self._metrics = objective, sink, metrics

    def free_slots(self) -> int:
        return 0 if self._queue else 1

    def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._queue:
            return []
        return [run_objective(self._objective, self._queue.popleft(), self._sink, self._metrics)]

    def cancel(self, trial_id: int) -> None:
        self._queue = deque(s for s in self._queue if s.id != trial_id)

    def close(self) -> None:
        self._queue.clear()
