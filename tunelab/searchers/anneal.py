"""Simulated annealing: a random walk that goes downhill, and uphill less and less often.

The walk is replayed from the history on every call (with acceptance draws fixed by the seed
and the trial number), so it needs no state of its own: the current point moves to a new
result when that is better, or with probability exp(-worse / temperature); the temperature
and the step size cool geometrically; after ``restart_after`` results without a new best, the
walk restarts from the best point. Steps are Gaussian in the unit cube, choices jump.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.errors import ConfigError
from tunelab.searchers._learning import LearningSearcher, Observations


class AnnealSearcher(LearningSearcher):
    name = "anneal"
    default_startup = 5

    def __init__(self, space, seed=None, n_startup=None, warm_start=None, cooling: float = 0.97,
                 step: float = 0.25, restart_after: int = 25):
        super().__init__(space, seed, n_startup=n_startup, warm_start=warm_start)
        if not 0 < cooling < 1 or not 0 < step <= 1:
            raise ConfigError(f"anneal: cooling must be in (0, 1) and step in (0, 1]; got {cooling!r}, {step!r}")
        self.check_integers(1, restart_after=restart_after)
        self.cooling, self.step, self.restart_after = float(cooling), float(step), restart_after

    def options(self) -> dict[str, Any]:
        return {**super().options(), "cooling": self.cooling, "step": self.step, "restart_after": self.restart_after}

    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        y = data.targets(rng)
        order = np.argsort(data.numbers, kind="stable")
        finite = order[np.isfinite(y[order])]
        scale = np.std(y[finite]) or 1.0
        draws = self._rng("accept").random(len(order) + 1)
        current = best = finite[0]
        since_best, temperature = 0, 1.0
        for t, i in enumerate(finite[1:], start=1):
            temperature *= self.cooling
            worse = (y[i] - y[current]) / scale
            if worse < 0 or draws[t] < np.exp(-worse / max(temperature, 1e-12)):
                current = i
            if y[i] < y[best]:
                best, since_best = i, 0
            else:
                since_best += 1
            if since_best >= self.restart_after:
                current, since_best = best, 0
        size = self.step * max(temperature, 0.02) ** 0.5
        return self.features.perturb(data.points[current], size, rng, flip=min(0.5, 2 * size))[0]
