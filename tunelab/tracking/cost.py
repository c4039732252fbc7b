"""What a study cost: the time each trial ran times the price per hour of what it held.

Machines are cheaper than people, but not free: a tuning run that trains a thousand times should
say what it spent, and stop when told (``tl.tune(..., max_cost=20)``). Prices live here, in one
place. The defaults are round figures from the on-demand list prices of the big clouds (2024-25):
a general-purpose vCPU costs about $0.04-0.05 an hour, a data-centre GPU (V100/A10/L4 class) about
$1-3 an hour and an A100/H100 more; we take $0.05 per CPU core-hour and $2.50 per GPU-hour.
Give your own with ``tl.Prices(cpu_hour=..., gpu_hour=...)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Mapping

from tunelab.errors import ConfigError
from tunelab.trial import Trial

DEFAULT_CPU_HOUR = 0.05
DEFAULT_GPU_HOUR = 2.50


def _amount(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a non-negative number; got {value!r}")
    return float(value)


def _coerce(cls: type, value: Any, what: str) -> Any:
    """An instance of ``cls`` from itself, a dict of its fields (as stored), or None (defaults)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    names = [f.name for f in fields(cls)]
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(f"{cls.__name__} knows {', '.join(names)}; got {unknown}")
        return cls(**value)
    raise ConfigError(f"{what} must be tl.{cls.__name__}({', '.join(n + '=...' for n in names)}); got {value!r}")


@dataclass(frozen=True)
class Resources:
    """What one trial holds while it runs: CPU cores and GPUs (fractions allowed)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cpus", _amount(self.cpus, "Resources.cpus"))
        object.__setattr__(self, "gpus", _amount(self.gpus, "Resources.gpus"))
        if self.cpus == 0 and self.gpus == 0:
            raise ConfigError("Resources needs at least some cpus or gpus")

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: "Resources | Mapping[str, Any] | None") -> "Resources":
        return _coerce(cls, value, "resources")


@dataclass(frozen=True)
class Prices:
    """Price per hour of one CPU core and of one GPU, in ``currency``."""

    cpu_hour: float = None  # type: ignore[assignment]  # None: the default, DEFAULT_CPU_HOUR (USD)
    gpu_hour: float = None  # type: ignore[assignment]  # None: the default, DEFAULT_GPU_HOUR (USD)
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not isinstance(self.currency, str) or not self.currency:
            raise ConfigError(f"Prices.currency must be a name such as 'USD'; got {self.currency!r}")
        missing = [name for name in ("cpu_hour", "gpu_hour") if getattr(self, name) is None]
        if missing and self.currency != "USD":  # the defaults are dollars: read as yen they would be wrong
            raise ConfigError(f"Prices in {self.currency} need {' and '.join(missing)} in {self.currency} too "
                              f"(the defaults, {DEFAULT_CPU_HOUR:g} and {DEFAULT_GPU_HOUR:g}, are USD)")
        defaults = {"cpu_hour": DEFAULT_CPU_HOUR, "gpu_hour": DEFAULT_GPU_HOUR}
        for name in defaults:
            value = defaults[name] if getattr(self, name) is None else getattr(self, name)
            object.__setattr__(self, name, _amount(value, f"Prices.{name}"))

    def per_hour(self, resources: Resources) -> float:
        return resources.cpus * self.cpu_hour + resources.gpus * self.gpu_hour

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: "Prices | Mapping[str, Any] | None") -> "Prices":
        return _coerce(cls, value, "prices")


def study_pricing(settings: Mapping[str, Any]) -> tuple[Resources, Prices]:
    """The resources and prices recorded in a study's settings (defaults for older studies)."""
    return Resources.coerce(settings.get("resources")), Prices.coerce(settings.get("prices"))


def trial_cost(trial: Trial, resources: Resources, prices: Prices, now: float | None = None) -> float:
    """Cost of one trial so far: the time it has run, over all its running stretches (a paused
    trial holds no worker while it waits), up to ``now`` for one running."""
    if trial.started_at is None:
        return 0.0
    running = (time.time() if now is None else now) - trial.running_since if trial.running_since is not None else 0.0
    return (trial.held + max(running, 0.0)) / 3600.0 * prices.per_hour(resources)


@dataclass
class StudyCost:
    total: float
    per_trial: dict[int, float]
    currency: str
    resources: Resources
    prices: Prices

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "currency": self.currency, "per_trial": {str(k): v for k, v in self.per_trial.items()},
                "resources": self.resources.to_json(), "prices": self.prices.to_json()}


def study_cost(study: Any, trials: Iterable[Trial] | None = None) -> StudyCost:
    """The study's total cost, and the cost of each of ``trials`` (default: every trial).

    The total is summed by the storage, so a caller showing a few trials of a large study does
    not load them all."""
    resources, prices = study_pricing(study.record.settings)
    now = time.time()
    trials = study.trials if trials is None else trials
    per_trial = {t.number: trial_cost(t, resources, prices, now) for t in trials}
    total = study.storage.held_seconds(study.record.id, now) / 3600.0 * prices.per_hour(resources)
    return StudyCost(total, per_trial, prices.currency, resources, prices)


class CostMeter:
    """The tuner's running total for ``max_cost``: what each trial held when it last stopped
    running (finished or paused: a paused trial is added again, with its new stretch, when it
    stops next), plus the stretches under way of the running ones, so a budget is checked
    without re-reading the study."""

    def __init__(self, study: Any):
        self.resources, self.prices = study_pricing(study.record.settings)
        self._held = {t.id: t.held for t in study.trials if t.running_since is None}
        self._total = sum(self._held.values())

    def add(self, trial: Trial) -> None:
        self._total += trial.held - self._held.get(trial.id, 0.0)
        self._held[trial.id] = trial.held

    def spent(self, running: Iterable[Trial]) -> float:
        now = time.time()
        seconds = self._total + sum(max(now - t.running_since, 0.0) for t in running if t.running_since is not None)
        return seconds / 3600.0 * self.prices.per_hour(self.resources)
