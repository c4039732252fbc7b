"""Schedulers decide *how much to spend on each try*; one file per algorithm, found by name here."""

from __future__ import annotations

from typing import Any, Mapping

from tunelab._registry import Registry
from tunelab.schedulers.base import Scheduler

__all__ = ["Scheduler", "SCHEDULERS", "make_scheduler"]

SCHEDULERS = Registry("scheduler", {
    "fifo": "tunelab.schedulers.fifo:FIFOScheduler",
    "median": "tunelab.schedulers.median:MedianScheduler",
    "percentile": "tunelab.schedulers.percentile:PercentileScheduler",
    "threshold": "tunelab.schedulers.threshold:ThresholdScheduler",
    "curve": "tunelab.schedulers.curve:CurveScheduler",
    "sh": "tunelab.schedulers.sh:SuccessiveHalvingScheduler",
    "asha": "tunelab.schedulers.asha:ASHAScheduler",
    "hyperband": "tunelab.schedulers.hyperband:HyperbandScheduler",
    "bohb": "tunelab.schedulers.bohb:BOHBScheduler",
}, peer_names={  # Ray Tune's and Optuna's names for the same options
    "grace_period": ("min_budget", "warmup_steps"), "min_resource": ("min_budget",), "max_t": ("max_budget",),
    "max_resource": ("max_budget",), "reduction_factor": ("eta",), "n_startup_trials": ("min_trials",),
    "min_samples_required": ("min_trials",), "n_warmup_steps": ("warmup_steps",), "interval_steps": ("interval",),
})


def make_scheduler(spec: "str | Scheduler", metric: str, mode: str,
                   options: Mapping[str, Any] | None = None) -> Scheduler:
    """A scheduler from a registry name (with options) or an instance built by the user."""
    if isinstance(spec, Scheduler):
        return spec
    return SCHEDULERS.create(spec, metric, mode, options=options)
