"""Fidelity: the knob that makes a try cheaper (epochs, a data subsample, a model size).

Multi-fidelity schedulers rank configurations on cheap runs and spend more only on the promising
ones. They must know the knob's range, and whether a run can *continue* from where it stopped
(epochs: load the checkpoint, train further) or must *start again* at the higher level (a larger
subsample, a bigger model). That one bit changes what a promotion costs, so it is declared here
and recorded with the study; the objective reads the level it must reach from ``trial.budget``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from tunelab.budgets import plain_number
from tunelab.errors import ConfigError


@dataclass(frozen=True)
class Fidelity:
    name: str
    min: float
    max: float
    resumable: bool = False

    def __post_init__(self) -> None:
        for what in ("min", "max"):  # np.int64(81) is 81 (a whole number: the budgets are rounded)
            object.__setattr__(self, what, plain_number(getattr(self, what)))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"fidelity needs a name such as 'epochs'; got {self.name!r}")
        for what in ("min", "max"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"fidelity {self.name!r}: {what} must be a finite number; got {value!r}")
        if not 0 < self.min < self.max:
            raise ConfigError(f"fidelity {self.name!r} needs 0 < min < max; got min={self.min!r}, max={self.max!r}")
        if not isinstance(self.resumable, bool):
            raise ConfigError(f"fidelity {self.name!r}: resumable must be True or False; got {self.resumable!r}")

    @property
    def integer(self) -> bool:
        """Epochs and layers come in whole numbers; budgets are rounded for them."""
        return float(self.min).is_integer() and float(self.max).is_integer()

    def level(self, value: float) -> float:
        """A budget in range, rounded to a whole number for integer fidelities."""
        value = min(max(float(value), self.min), self.max)
        return float(round(value)) if self.integer else value

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "min": self.min, "max": self.max, "resumable": self.resumable}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Fidelity | None":
        if not data:
            return None
        return cls(data["name"], data["min"], data["max"], data.get("resumable", False))


def fidelity(name: str, *, min: float, max: float, resumable: bool = False) -> Fidelity:  # noqa: A002
    """Declare the fidelity of a study: ``tl.fidelity("epochs", min=1, max=81, resumable=True)``.

    ``resumable`` runs continue from their checkpoint when promoted (epochs); the others are run
    afresh at the higher level (a data subsample, a model size).
    """
    return Fidelity(name, min, max, resumable)


def coerce_fidelity(value: Any) -> Fidelity | None:
    if value is None or isinstance(value, Fidelity):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - {"name", "min", "max", "resumable"})
        if unknown:
            raise ConfigError(f"fidelity dict: unknown key(s) {', '.join(unknown)}; allowed: name, min, max, resumable")
        try:
            return Fidelity.from_json(value)
        except KeyError as err:
            raise ConfigError(f"fidelity dict needs name, min and max; missing {err}") from None
    raise ConfigError(f"fidelity must be tl.fidelity(name, min=..., max=...); got {value!r}")
