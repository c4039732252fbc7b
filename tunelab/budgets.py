"""When a tuning run ends: its budgets, checked once, and remembered with the study so that a
``tunelab worker`` joining it later keeps to the same ones."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, Mapping

from tunelab.errors import ConfigError, check_count, check_number


@dataclass
class Budgets:
    """When a tuning run ends. ``n_trials`` counts the study's trials in total, so re-running
    the same call after a crash finishes the study instead of starting over."""

    n_trials: int | None = None
    timeout: float | None = None
    target: float | None = None
    patience: int | None = None
    max_failures: int | None = 20
    max_cost: float | None = None  # the study's total cost, in the currency of its prices

    def to_settings(self) -> dict[str, Any]:
        """What a study remembers of the run that set its budget, for workers that join it later."""
        return {"n_trials": self.n_trials, "timeout": self.timeout, "target": self.target,
                "patience": self.patience, "max_failures": self.max_failures, "max_cost": self.max_cost}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> "Budgets":
        known = {k: v for k, v in (settings or {}).items() if k in cls.__dataclass_fields__}
        budgets = cls(**known)
        budgets.validate()
        return budgets

    def validate(self) -> None:
        """Refuse what no run can keep to; numpy numbers (``np.int64(50)`` from a sweep over
        ``np.arange``) become the Python numbers they stand for, as they are stored as JSON."""
        for spec in fields(self):
            setattr(self, spec.name, plain_number(getattr(self, spec.name)))
        for name in ("n_trials", "patience", "max_failures"):
            check_count(name, getattr(self, name))
        for name in ("timeout", "target", "max_cost"):
            check_number(name, getattr(self, name), "a finite number or None", math.isfinite, optional=True)
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"timeout must be positive (seconds); got {self.timeout!r}")
        if self.max_cost is not None and self.max_cost <= 0:
            raise ConfigError(f"max_cost must be positive; got {self.max_cost!r}")

    def check_room(self, queued: int, counted: int, study: str | None) -> None:
        """Refuse a queue of new configurations (``enqueue=``) longer than what n_trials leaves
        to a study that has ``counted`` trials: they would not all run."""
        room = None if self.n_trials is None else max(self.n_trials - counted, 0)
        if room is not None and queued > room:
            raise ConfigError(f"enqueue lists {queued} new configurations, and n_trials={self.n_trials} leaves room "
                              f"for {room} more trials in {f'study {study!r}' if study else 'the new study'}: raise "
                              "n_trials or enqueue fewer")

    def ends(self) -> bool:
        return any(v is not None for v in (self.n_trials, self.timeout, self.target, self.patience, self.max_cost))


def run_options(workers: Any, trial_timeout: Any, max_retries: Any) -> tuple[int, float | None, int]:
    """How a run runs, checked: its ``workers``, its ``trial_timeout`` (seconds) and the
    ``max_retries`` of a trial whose process died (numpy numbers as the plain ones)."""
    workers, trial_timeout, max_retries = map(plain_number, (workers, trial_timeout, max_retries))
    check_count("workers", workers, optional=False)  # before auto reads it (its error named auto)
    check_number("trial_timeout", trial_timeout, "a positive number of seconds", lambda v: v > 0, optional=True)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries must be a whole number >= 0 (re-runs of a trial whose process died); "
                          f"got {max_retries!r}")
    return workers, trial_timeout, max_retries


def plain_number(value: Any) -> Any:
    """A numpy integer or float (any ``numbers`` integer or real) as the Python int or float it
    stands for; anything else, bools included, as it is, for the checks to judge."""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) else value
