"""Grid search: every combination, in order, each tried once.

Categoricals are enumerated fully, numbers on ``points`` values (log-spaced on log scales).
Configurations already in the study (from any process, or enqueued by hand) are skipped; when
the grid is used up the searcher proposes nothing and the tuner stops.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from tunelab.history import History
from tunelab.searchers.base import Searcher
from tunelab.space import config_key


class GridSearcher(Searcher):
    name = "grid"

    def __init__(self, space, seed=None, points: int | Mapping[str, int] = 5):
        super().__init__(space, seed)
        self.points = points
        self.space.grid_size(points)  # validates points early, with a clear error
        self._grid: Iterator[dict[str, Any]] | None = None
        self._proposed: set[str] = set()
        self._history_keys: set[str] = set()

    def options(self) -> dict[str, Any]:
        return {"points": self.points}

    @property
    def size(self) -> int:
        return self.space.grid_size(self.points)

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        if n < 1:
            return []  # (the loop below would hand out, and use up, the whole grid)
        in_history = {config_key(t.config) for t in history.trials}
        if not self._history_keys <= in_history:
            # Trials never leave a study: a history without some seen before is another study's
            # (a searcher object handed to a second study), whose grid starts again from the top.
            # The proposals made for the first one would otherwise count as tried in the second.
            self._grid, self._proposed = None, set()
        self._history_keys = in_history
        if self._grid is None:
            self._grid = self.space.grid(self.points)
        seen = self._proposed | in_history
        out: list[dict[str, Any]] = []
        for config in self._grid:
            key = config_key(config)
            if key not in seen:
                self._proposed.add(key)
                out.append(config)
                if len(out) == n:
                    break
        return out
