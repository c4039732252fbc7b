"""Regularised (aging) evolution: the oldest member dies, not the worst.

The population is the ``population`` most recent results; a parent is the best of a random
``sample`` of them, and its child changes one coordinate (a Gaussian step for numbers, a new
option for choices). Dying of old age keeps a lucky but mediocre point from ruling the search
forever, which is why this simple scheme does well in architecture search. Stateless: the
population is read from the history on every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.errors import check_count
from tunelab.searchers._learning import LearningSearcher, Observations


class EvolutionSearcher(LearningSearcher):
    name = "evolution"
    default_startup = 20

    def __init__(self, space, seed=None, n_startup=None, warm_start=None, population: int = 20, sample: int = 5):
        for option, value in (("population", population), ("sample", sample)):
            check_count(f"evolution: {option}", value, optional=False)
        self.population, self.sample = population, sample
        super().__init__(space, seed, n_startup=population if n_startup is None else n_startup,
                         warm_start=warm_start)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "population": self.population, "sample": self.sample}

    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        y = data.targets(rng)
        alive = np.argsort(-data.numbers, kind="stable")[: self.population]
        contenders = rng.choice(alive, size=min(self.sample, len(alive)), replace=False)
        parent = data.points[contenders[np.argmin(y[contenders])]]
        child = np.where(np.isnan(parent), rng.random(parent.shape), parent)
        j = int(rng.integers(max(self.features.d, 1))) if self.features.d else 0
        if self.features.d:
            moved = self.features.perturb(child, 0.15, rng, flip=0.0)[0]
            child[j] = rng.random() if self.features.categorical[j] else np.nan_to_num(moved[j], nan=rng.random())
        return self.features.canonical(child)[0]
