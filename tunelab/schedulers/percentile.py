"""Percentile stopping: stop a trial whose best value so far, at a step, is worse than the given
percentile of what the other trials had reached by the same step.

Comparing at the *same step* is what makes the rule fair to slow starters only as far as they
keep up; ``warmup_steps`` keeps it from judging the first noisy epochs and ``min_trials`` from
judging against too few others. ``percentile=50`` is the median rule; 25 keeps the top quarter.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunelab.errors import ConfigError, SetupWarning, check_count, check_number, warn_caller
from tunelab.fidelity import Fidelity
from tunelab.history import History
from tunelab.schedulers.base import Scheduler
from tunelab.trial import Decision, Trial


def warn_if_warmup_outlasts(scheduler: Scheduler, warmup_steps: float, fidelity: Fidelity | None) -> None:
    """A warm-up that lasts to the fidelity's max leaves no report to judge before the run is over
    (and a finished run is never stopped): say so when the study is made, not at its end."""
    if fidelity is not None and warmup_steps >= fidelity.max * (1 - 1e-9):
        warn_caller(f"{scheduler.name}: warmup_steps={warmup_steps:g} reaches the fidelity's max {fidelity.max:g} "
                    f"({fidelity.name}): no report comes before a run is over, so none is stopped; give a "
                    f"warm-up below {fidelity.max:g}, in the fidelity's units", SetupWarning)


class PercentileScheduler(Scheduler):
    name = "percentile"
    stops_only = True

    def __init__(self, metric: str, mode: str, percentile: float = 50.0, min_trials: int = 5,
                 warmup_steps: float = 0, interval: int = 1):
        super().__init__(metric, mode)
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
            raise ConfigError(f"{self.name}: percentile must be in (0, 100); got {percentile!r}")
        for what, value in (("min_trials", min_trials), ("interval", interval)):
            check_count(f"{self.name}: {what}", value, optional=False)
        check_number(f"{self.name}: warmup_steps", warmup_steps, "a step >= 0", lambda v: 0 <= v < math.inf)
        self.percentile, self.min_trials = float(percentile), min_trials
        self.warmup_steps, self.interval = float(warmup_steps), interval

    def bind(self, fidelity: Fidelity | None) -> None:
        super().bind(fidelity)
        warn_if_warmup_outlasts(self, self.warmup_steps, fidelity)

    def options(self) -> dict[str, Any]:
        return {"percentile": self.percentile, "min_trials": self.min_trials,
                "warmup_steps": self.warmup_steps, "interval": self.interval}

    def _best_by(self, trial: Trial, step: float) -> float | None:
        """The trial's best oriented value (lower is better) at reports up to ``step``."""
        values = [r.metrics[self.metric] for r in trial.reports if r.step <= step and self.metric in r.metrics]
        values = [v if self.mode == "min" else -v for v in values if math.isfinite(v)]
        return min(values) if values else None

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        if step < self.warmup_steps or len(trial.reports) % self.interval:
            return Decision.CONTINUE
        mine = self._best_by(trial, step)
        if mine is None:
            return Decision.STOP  # a trial whose metric is NaN from the start is not going anywhere
        others = []
        for other in history.trials:
            if other.id != trial.id and other.reports and other.reports[-1].step >= step:
                best = self._best_by(other, step)
                if best is not None:
                    others.append(best)
        if len(others) < self.min_trials:
            return Decision.CONTINUE
        return Decision.STOP if mine > float(np.percentile(others, self.percentile)) else Decision.CONTINUE
