"""Random search: the baseline that is hard to beat and trivially parallel."""

from __future__ import annotations

from typing import Any

from tunelab.history import History
from tunelab.searchers.base import Searcher


class RandomSearcher(Searcher):
    """Independent draws from the priors; trial n's configuration is a function of (seed, n).

    So a sequential study with the same seed proposes the same configurations in the same order,
    a resumed study continues with new ones, and any number of processes sharing one study never
    duplicate each other's draws.
    """

    name = "random"
    by_number = True

    def config_for_number(self, number: int) -> dict[str, Any]:
        return self.space.sample(self._rng(number))

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        start = history.n_trials
        return [self.config_for_number(start + i) for i in range(n)]
