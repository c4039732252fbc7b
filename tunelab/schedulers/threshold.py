"""Threshold stopping: stop a trial as soon as a report is worse than a fixed bar (after a warm-up).

For the cases where the user knows what "hopeless" looks like (an accuracy at chance level after
two epochs, a loss that exploded) and wants those runs gone without comparing to other trials.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.errors import ConfigError, check_number
from tunelab.fidelity import Fidelity
from tunelab.history import History
from tunelab.schedulers.base import Scheduler
from tunelab.schedulers.percentile import warn_if_warmup_outlasts
from tunelab.trial import Decision, Trial


class ThresholdScheduler(Scheduler):
    name = "threshold"
    stops_only = True

    def __init__(self, metric: str, mode: str, threshold: float | None = None, warmup_steps: float = 0):
        super().__init__(metric, mode)
        if threshold is None or isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not math.isfinite(threshold):
            raise ConfigError(f"{self.name}: give scheduler_options={{'threshold': number}}; got {threshold!r}")
        check_number(f"{self.name}: warmup_steps", warmup_steps, "a step >= 0", lambda v: 0 <= v < math.inf)
        self.threshold, self.warmup_steps = float(threshold), float(warmup_steps)

    def bind(self, fidelity: Fidelity | None) -> None:
        super().bind(fidelity)
        warn_if_warmup_outlasts(self, self.warmup_steps, fidelity)

    def options(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "warmup_steps": self.warmup_steps}

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        value = metrics.get(self.metric)
        if value is None or step < self.warmup_steps:
            return Decision.CONTINUE
        if not math.isfinite(value):
            return Decision.STOP
        worse = value < self.threshold if self.mode == "max" else value > self.threshold
        return Decision.STOP if worse else Decision.CONTINUE
