"""Learning-curve extrapolation: stop a run whose predicted final value has little chance to beat
the best finished run (after Domhan et al. 2015, with a small ensemble instead of MCMC).

At a few reports (their count growing geometrically, so the fitting cost stays small), the run's
curve is fitted with several parametric families (``curve_models``); the pooled prediction at the
final step and its uncertainty give the probability that the run ends better than the best run
that reached the final step. Below ``threshold`` the run is stopped. Works for metrics to minimise
and to maximise alike: values are oriented before fitting.

No run is judged before ``min_fraction`` (default a tenth) of the final step: the first few
epochs of a power-law curve fit a family that levels off too early, and judged at 4 of 81
epochs every run that would have ended best was stopped (``tunelab bench-mf`` powerlaw: 1 seed
of 10 reached the target; with the tenth, 10 of 10, and sgd-digits went from 2 to 9).
"""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import norm

from tunelab.errors import ConfigError, check_number
from tunelab.history import History
from tunelab.schedulers.base import Scheduler
from tunelab.schedulers.curve_models import predict
from tunelab.trial import Decision, Trial


class CurveScheduler(Scheduler):
    name = "curve"
    stops_only = True

    def __init__(self, metric: str, mode: str, max_step: float | None = None, threshold: float = 0.05,
                 min_points: int = 4, growth: float = 1.4, min_fraction: float = 0.1):
        super().__init__(metric, mode)
        if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) or not 0 <= min_fraction < 1:
            raise ConfigError(f"curve: min_fraction is a share of the final step in [0, 1); got {min_fraction!r}")
        check_number("curve: threshold", threshold, "a probability in (0, 1)", lambda v: 0 < v < 1)
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
            raise ConfigError(f"curve: min_points must be an integer >= 3; got {min_points!r}")
        check_number("curve: growth", growth, "a number > 1", lambda v: v > 1)
        check_number("curve: max_step", max_step, "a positive number (or None: the fidelity's max)",
                     lambda v: 0 < v < math.inf, optional=True)
        self._max_step, self.threshold, self.min_points, self.growth = max_step, threshold, min_points, growth
        self.min_fraction = float(min_fraction)
        self._finals: dict[int, float] = {}  # trial id -> oriented value at the final step
        self._no_final: set[int] = set()  # finished trials that never reached it

    def options(self) -> dict[str, Any]:
        return {"max_step": self._max_step, "threshold": self.threshold, "min_points": self.min_points,
                "growth": self.growth, "min_fraction": self.min_fraction}

    def bind(self, fidelity) -> None:
        super().bind(fidelity)
        self.max_step  # noqa: B018 - fail at creation, not at the first report
        if fidelity is not None and self._max_step is not None and self._max_step > fidelity.max:
            raise ConfigError(f"curve: max_step={self._max_step!r} lies beyond the fidelity's max "
                              f"{fidelity.max:g} ({fidelity.name}): no run reaches it, so none would be judged; "
                              "leave max_step out (it is the fidelity's max) or lower it")

    @property
    def max_step(self) -> float:
        if self._max_step is not None:
            return float(self._max_step)
        if self.fidelity is not None:
            return self.fidelity.max
        raise ConfigError("curve needs the final step: declare a fidelity (tl.fidelity('epochs', min=1, max=50)) "
                          "or give scheduler_options={'max_step': 50}")

    def _decides_at(self, count: int) -> bool:
        """Whether a decision is made at the ``count``-th report: at min_points, then at counts
        growing geometrically, for as long as the run reports (a run that reports every
        iteration is still judged after its ten-thousandth report)."""
        n = float(self.min_points)
        while int(round(n)) < count:
            n *= self.growth
        return int(round(n)) == count

    def chance_to_beat(self, trial: Trial, best: float) -> float | None:
        """Probability that the trial's final oriented value is below ``best`` (None: cannot tell)."""
        sign = 1.0 if self.mode == "min" else -1.0
        curve = [(s, sign * v) for s, v in trial.curve(self.metric) if math.isfinite(v)]
        if len(curve) < self.min_points:
            return None
        prediction = predict([s for s, _ in curve], [v for _, v in curve], self.max_step)
        if prediction is None:
            return None
        return float(norm.cdf((best - prediction.mean) / prediction.std))

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        if step >= self.max_step or step < self.min_fraction * self.max_step * (1 - 1e-9) \
                or not self._decides_at(len(trial.reports)):
            return Decision.CONTINUE
        best = self._best_final(history, trial)
        if best is None:
            return Decision.CONTINUE
        chance = self.chance_to_beat(trial, best)
        return Decision.STOP if chance is not None and chance < self.threshold else Decision.CONTINUE

    def _best_final(self, history: History, trial: Trial) -> float | None:
        """The best oriented value any other run reported at the final step. A run's final value
        never changes once reported, so each is read once (a decision must not rescan every curve)."""
        sign = 1.0 if self.mode == "min" else -1.0
        for other in history.trials:
            if other.id in self._finals or other.id in self._no_final:
                continue
            values = [v for s, v in other.curve(self.metric) if s >= self.max_step * (1 - 1e-9) and math.isfinite(v)]
            if values:
                self._finals[other.id] = sign * values[0]
            elif other.state.finished:
                self._no_final.add(other.id)
        finals = [v for trial_id, v in self._finals.items() if trial_id != trial.id]
        return min(finals) if finals else None
