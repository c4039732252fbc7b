"""The median stopping rule (Golovin et al., Google Vizier): stop a trial whose best value so far
is worse than the median of the other trials at the same step. The simplest early stopping that
needs no fidelity declared and no tuning; the percentile rule with ``percentile=50``."""

from __future__ import annotations

from typing import Any

from tunelab.schedulers.percentile import PercentileScheduler


class MedianScheduler(PercentileScheduler):
    name = "median"

    def __init__(self, metric: str, mode: str, min_trials: int = 5, warmup_steps: float = 0, interval: int = 1):
        super().__init__(metric, mode, 50.0, min_trials, warmup_steps, interval)

    def options(self) -> dict[str, Any]:
        options = super().options()
        options.pop("percentile")
        return options
