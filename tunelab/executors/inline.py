"""Run trials one at a time in the tuner's own thread: no processes, easy to debug.

A trial cannot be killed from outside here, so ``trial_timeout`` is enforced at the trial's
next ``report``; use ``workers >= 2`` (local processes) for objectives that may hang. While the
objective runs, a thread keeps the trial's heartbeat going (the tuner's loop, which beats for
other executors, waits for the objective here): without it, a tuner on another machine sharing
the study took a trial longer than ``stale_after`` for abandoned and ran it again.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque

from tunelab.executors.base import HEARTBEAT_SECONDS, Executor, Objective, Outcome, run_objective
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
        spec = self._queue.popleft()
        done = threading.Event()
        beating = threading.Thread(target=self._beat, args=(spec.id, done), daemon=True, name="tunelab-heartbeat")
        beating.start()
        try:
            return [run_objective(self._objective, spec, self._sink, self._metrics)]
        finally:
            done.set()
            beating.join()

    def _beat(self, trial_id: int, done: threading.Event) -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat is made up at the next; the run goes on
                self._sink.heartbeat(trial_id)

    def cancel(self, trial_id: int) -> None:
        self._queue = deque(s for s in self._queue if s.id != trial_id)

    def close(self) -> None:
        self._queue.clear()
