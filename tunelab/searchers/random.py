"""Random search: the baseline that is hard to beat and trivially parallel."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.history import History
from tunelab.searchers.base import Searcher


class RandomSearcher(Searcher):
    """Independent draws from the priors.

    The stream of draws starts at the study's trial count when the searcher first runs, so a
    resumed study continues with new configurations instead of repeating the first ones, and a
    sequential study with the same seed proposes the same configurations in the same order.
    """

    name = "random"

    def __init__(self, space, seed=None):
        super().__init__(space, seed)
        self._stream: np.random.Generator | None = None

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        if self._stream is None:
            self._stream = self._rng(history.n_trials)
        return [self.space.sample(self._stream) for _ in range(n)]
