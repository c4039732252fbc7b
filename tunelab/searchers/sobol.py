"""Quasi-random search: a scrambled Sobol sequence covers the unit cube more evenly than random
draws, which helps most with few trials and many workers."""

from __future__ import annotations

import warnings
from typing import Any

from scipy.stats import qmc

from tunelab.history import History
from tunelab.searchers.base import Searcher


class SobolSearcher(Searcher):
    """Trial ``n`` gets point ``n`` of the sequence (``by_number``): processes sharing a study each
    drew the sequence from its start, so the same points ran two and three times."""

    name = "sobol"
    by_number = True

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        return [self.config_for_number(history.n_trials + i) for i in range(n)]

    def config_for_number(self, number: int) -> dict[str, Any]:
        dims = len(self.space.dimensions)
        if dims == 0:
            return self.space.decode([])
        engine = qmc.Sobol(d=dims, scramble=True, seed=self._rng())
        with warnings.catch_warnings():  # balance warnings for non-powers of two do not apply here
            warnings.simplefilter("ignore")
            if number:  # scipy's fast_forward(0) overflows
                engine.fast_forward(number)
            return self.space.decode(engine.random(1)[0])
