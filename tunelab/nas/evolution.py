"""Regularised (aging) evolution (Real et al., 2019) over any discrete or mixed space.

The population is the ``population`` most recently finished trials; each proposal is a mutant
of the best of ``sample`` members drawn at random from it. Because the oldest members leave the
population whatever their score, a lucky early architecture cannot dominate for ever, which
favours architectures that stay good when retrained. A mutation changes exactly one active
parameter (for a cell: one edge's input or operation) and re-decodes the configuration, so
conditional parameters appear or vanish as their parents change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.errors import ConfigError, SpaceError
from tunelab.history import History
from tunelab.searchers.base import Searcher
from tunelab.space import config_key

MAX_TRIES = 100


class RegularizedEvolution(Searcher):
    name = "regularized_evolution"
    multi_objective = False  # its tournaments rank on the first metric

    def __init__(self, space, seed: int | None = None, population: int = 20, sample: int = 5):
        super().__init__(space, seed)
        if not (isinstance(population, int) and isinstance(sample, int) and 1 <= sample <= population):
            raise ConfigError(f"need integers 1 <= sample <= population; got sample={sample!r}, "
                             f"population={population!r}")
        if not self.space.dimensions:
            raise SpaceError("regularised evolution needs at least one parameter that is not fixed")
        self.population, self.sample = population, sample

    def options(self) -> dict[str, Any]:
        return {"population": self.population, "sample": self.sample}

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        rng = self._rng(history.n_trials)
        completed = [t for t in history.completed if history.score(t) != float("inf")]
        if len(completed) < self.population:
            return [self.space.sample(rng) for _ in range(n)]
        members = completed[-self.population:]  # ordered by trial number: the oldest age out
        out = []
        for _ in range(n):
            drawn = rng.choice(len(members), size=self.sample, replace=False)
            parent = min((members[i] for i in drawn), key=history.score)
            out.append(self.mutate(parent.config, rng))
        return out

    def mutate(self, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``config`` with one active parameter changed to another value of its domain."""
        unit = self.space.encode(config)
        active = [i for i, name in enumerate(self.space.dimensions) if name in config]
        for _ in range(MAX_TRIES):
            child = unit.copy()
            child[rng.choice(active)] = rng.random()
            mutant = self.space.decode(child)
            if config_key(mutant) != config_key(config):
                return mutant
        return self.space.sample(rng)  # every draw landed on the same value: a one-valued domain
