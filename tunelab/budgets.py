"""When a tuning run ends: its budgets, checked once, and remembered with the study so that a
``tunelab worker`` joining it later keeps to the same ones."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from tunelab.errors import ConfigError, check_count


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
        for name in ("n_trials", "patience", "max_failures"):
            check_count(name, getattr(self, name))
        for name in ("timeout", "target", "max_cost"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number or None; got {value!r}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"timeout must be positive (seconds); got {self.timeout!r}")
        if self.max_cost is not None and self.max_cost <= 0:
            raise ConfigError(f"max_cost must be positive; got {self.max_cost!r}")

    def ends(self) -> bool:
        return any(v is not None for v in (self.n_trials, self.timeout, self.target, self.patience, self.max_cost))
