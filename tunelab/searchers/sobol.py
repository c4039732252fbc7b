"""Quasi-random search: a scrambled Sobol sequence covers the unit cube more evenly than random
draws, which helps most with few trials and many workers."""

from __future__ import annotations

import warnings
from typing import Any

from scipy.stats import qmc

from tunelab.history import History
from tunelab.searchers.base import Searcher


class SobolSearcher(Searcher):
    name = "sobol"

    def __init__(self, space, seed=None):
        super().__init__(space, seed)
        self._engine: qmc.Sobol | None = None

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        dims = len(self.space.dimensions)
        if dims == 0:
            return [self.space.decode([]) for _ in range(n)]
        if self._engine is None:
            self._engine = qmc.Sobol(d=dims, scramble=True, seed=self._rng())
            done = history.n_trials
            if done:  # scipy's fast_forward(0) overflows; a fresh study starts at the first point
                self._engine.fast_forward(done)
        with warnings.catch_warnings():  # balance warnings for non-powers of two do not apply here
            warnings.simplefilter("ignore")
            points = self._engine.random(n)
        return [self.space.decode(point) for point in points]
