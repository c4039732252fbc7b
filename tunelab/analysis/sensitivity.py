"""Tuning by hand, done carefully: change one value at a time around a baseline.

Each searched parameter is moved alone across its range (``points`` values; every option of a
choice) while the others keep their baseline values and the seed stays fixed, so a change in the
metric is the parameter's doing. The spread of the metric along each line says how sensitive the
model is to that parameter: a wide one can ruin a model, a narrow one only needs to be in range.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from tunelab.analysis.rerun import check_named_metric, rerun
from tunelab.errors import ConfigError
from tunelab.space import Space


@dataclass
class ParameterSweep:
    """The metric along one parameter's line through the baseline."""

    name: str
    values: list[Any]
    metric: list[float | None]  # None where the run failed
    errors: list[str | None] = field(default_factory=list)
    #: the baseline's value: the baseline lies on every line (swept around an optimum with an even
    #: number of points, the line's own points all sit off it, and may all score alike)
    baseline: float | None = None

    @property
    def spread(self) -> float:
        finite = [m for m in self.metric if m is not None and math.isfinite(m)]
        if not finite:  # every run of the line failed: nothing is known of it
            return math.nan
        finite += [self.baseline] if self.baseline is not None and math.isfinite(self.baseline) else []
        return max(finite) - min(finite)


@dataclass
class Sensitivity:
    baseline: dict[str, Any]
    baseline_value: float | None
    metric: str
    sweeps: dict[str, ParameterSweep]
    #: Parameters not varied: the baseline switches them off (a momentum when the optimizer is adam).
    inactive: list[str] = field(default_factory=list)
    #: Parameters searched on a log scale (a learning rate): plotted on one.
    log_scale: list[str] = field(default_factory=list)

    @property
    def ranking(self) -> list[str]:
        """Parameters, most sensitive first (a parameter whose every run failed comes last)."""
        return sorted(self.sweeps, key=lambda n: -self.sweeps[n].spread if math.isfinite(self.sweeps[n].spread)
                      else math.inf)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "baseline": self.baseline, "baseline_value": self.baseline_value,
                "ranking": self.ranking, "inactive": self.inactive,
                "sweeps": {n: {"values": s.values, "metric": s.metric, "spread": s.spread, "errors": s.errors}
                           for n, s in self.sweeps.items()}}


def _varied(space: Space, baseline: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """The baseline with one parameter changed; parameters that this switches on take the middle
    of their range, those it switches off are dropped."""
    config: dict[str, Any] = {}
    for param, dist in space.params.items():
        if dist.when and not space.is_active(param, config):
            continue
        config[param] = value if param == name else baseline.get(param, dist.from_unit(0.5))
    return space.validate(config, where="sensitivity")


def sensitivity(objective: Callable, baseline: Mapping[str, Any], space: Any, points: int = 7, *,
                metric: str | None = None, seed: int = 0, params: list[str] | None = None,
                budget: float | None = None) -> Sensitivity:
    """Vary each parameter of ``space`` alone around ``baseline`` and record ``metric``.

    ``objective`` is called as in :func:`tl.tune` (``objective(config, trial)``) with the same
    seed for every run. ``metric`` names the value to read when the objective returns a dict;
    ``budget`` is ``trial.budget`` in every run (a multi-fidelity objective's level, e.g. epochs).
    """
    space = Space.coerce(space)
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ConfigError(f"points must be an integer >= 2; got {points!r}")
    baseline = space.validate(baseline, where="sensitivity baseline")
    metric_name = metric or "value"
    if isinstance(params, str) or params is not None and not isinstance(params, (list, tuple)):
        raise ConfigError(f"sensitivity: params must be a list of parameter names, e.g. ['lr']; got {params!r}")
    names = [n for n in space.dimensions if n in baseline] if params is None else list(params)
    if len(set(names)) != len(names):
        raise ConfigError(f"sensitivity: params names a parameter twice; got {names!r}")
    unknown = [n for n in names if n not in space.dimensions]
    if unknown:
        raise ConfigError(f"sensitivity: {unknown[0]!r} is not a searched parameter of the space "
                          f"(searched: {', '.join(space.dimensions)})")
    switched_off = [n for n in names if n not in baseline]
    if switched_off:
        raise ConfigError(f"sensitivity: the baseline switches {switched_off} off (their conditions do not hold "
                          "for it), so sweeping them would change nothing: set their parents in the baseline "
                          "so that they are on, or leave them out")

    runs = itertools.count()  # each run its own number (a script keeps a folder per run)

    def run(config: dict[str, Any]) -> tuple[float | None, str | None]:
        result = rerun(objective, config, seed, [metric_name], study="sensitivity", number=next(runs),
                       budget=budget)
        check_named_metric(result, metric is not None)
        return (result.metrics.get(metric_name) if result.error is None else None), result.error

    base_value, base_error = run(baseline)
    if base_error is not None:
        raise ConfigError(f"the baseline itself failed: {base_error}")
    sweeps = {}
    for name in names:
        values = space.params[name].grid(points)
        outcomes = [run(_varied(space, baseline, name, v)) for v in values]
        sweeps[name] = ParameterSweep(name, values, [o[0] for o in outcomes], [o[1] for o in outcomes], base_value)
    inactive = [n for n in space.dimensions if n not in baseline] if params is None else []
    log_scale = [n for n in sweeps if getattr(space.params[n], "log", False)]
    return Sensitivity(baseline, base_value, metric_name, sweeps, inactive, log_scale)
