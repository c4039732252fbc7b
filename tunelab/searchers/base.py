"""The searcher protocol: *what to try next*.

A searcher sees the study's history (completed, failed and pending trials) and proposes
configurations; it never runs anything and keeps no state that storage cannot rebuild, so a
resumed or shared study gets sensible proposals from a fresh searcher.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from tunelab.history import History
from tunelab.space import Space
from tunelab.tracking.seeds import derive_seed, new_seed


class Searcher(ABC):
    """Subclasses implement :meth:`suggest`; the constructor takes the space, a seed and options."""

    name: ClassVar[str]
    #: True for searchers whose n-th proposal depends only on (seed, n), like random search:
    #: the study then draws it as the trial is numbered, so processes sharing a study (which
    #: cannot see each other's next draw) never propose the same configurations.
    by_number: ClassVar[bool] = False
    #: False for searchers that steer by the first metric alone in a study of several.
    multi_objective: ClassVar[bool] = True

    def __init__(self, space: Space, seed: int | None = None):
        self.space = Space.coerce(space)
        self.seed = new_seed() if seed is None else int(seed)

    @abstractmethod
    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        """Up to ``n`` new configurations (fewer, or none, when the searcher is exhausted)."""

    def config_for_number(self, number: int) -> dict[str, Any]:
        """The configuration for trial ``number`` (only for ``by_number`` searchers)."""
        raise TypeError(f"searcher {self.name!r} proposes from the history, not by trial number")

    def options(self) -> dict[str, Any]:
        """The settings that define this searcher's behaviour, recorded with the study."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, **self.options()}

    def _rng(self, *path: int | str) -> np.random.Generator:
        return np.random.default_rng(derive_seed(self.seed, self.name, *path))
