"""A genetic algorithm: tournament selection, crossover, mutation, elitism; NSGA-II ranking
when the study has several metrics.

The population is the best ``population`` results so far (elitist: a good configuration stays
until better ones push it out), rebuilt from the history on every call, so any number of
workers can ask at once. Each child mixes two parents chosen by binary tournament (numbers by
blend crossover, choices taken from either parent) and is then mutated (Gaussian steps, choices
redrawn with probability 1/d). With several metrics, "best" is the NSGA-II order: Pareto front
first, and within a front the points with the most room around them (crowding distance), which
keeps the front spread out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.errors import ConfigError
from tunelab.history import nondominated
from tunelab.searchers._learning import LearningSearcher, Observations


class GeneticSearcher(LearningSearcher):
    name = "genetic"

    def __init__(self, space, seed=None, n_startup=None, warm_start=None, population: int = 20,
                 mutation: float = 0.1):
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ConfigError(f"genetic: population must be an integer >= 2; got {population!r}")
        if not 0 < mutation <= 1:
            raise ConfigError(f"genetic: mutation (the step size) must be in (0, 1]; got {mutation!r}")
        self.population, self.mutation = population, float(mutation)
        super().__init__(space, seed, n_startup=population if n_startup is None else n_startup,
                         warm_start=warm_start)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "population": self.population, "mutation": self.mutation}

    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        rank = nsga_rank(data.scores, enough=self.population)
        elite = np.argsort(rank, kind="stable")[: self.population]
        a, b = (self._tournament(elite, rank, rng) for _ in range(2))
        pa, pb = (np.where(np.isnan(p), rng.random(p.shape), p) for p in (data.points[a], data.points[b]))
        blend = pa + rng.uniform(-0.25, 1.25, pa.shape) * (pb - pa)
        pick = rng.random(pa.shape) < 0.5
        child = np.where(self.features.categorical, np.where(pick, pa, pb), blend)
        return self.features.perturb(child, self.mutation, rng)[0]

    @staticmethod
    def _tournament(pool: np.ndarray, rank: np.ndarray, rng: np.random.Generator) -> int:
        a, b = rng.choice(pool, size=2, replace=len(pool) < 2)
        return int(a if rank[a] <= rank[b] else b)


def nsga_rank(scores: np.ndarray, enough: int | None = None) -> np.ndarray:
    """A position per row (lower is better): Pareto front number, ties broken by crowding.

    With one metric this is simply the order of the scores; failures (inf) come last. With
    ``enough``, fronts are peeled only until that many rows have one, and the rest rank inf as
    failures do: the searcher needs its population's rows alone, and peeling every front of a
    study of thousands of trials (each against every other) took seconds per proposal."""
    n, m = scores.shape
    if m == 1:
        return np.argsort(np.argsort(scores[:, 0], kind="stable"), kind="stable").astype(float)
    finite = np.isfinite(scores).all(axis=1)
    front = np.full(n, np.inf)
    s = np.where(np.isfinite(scores), scores, np.inf)
    remaining, placed, level = np.flatnonzero(finite), 0, 0
    while len(remaining) and (enough is None or placed < enough):
        current = remaining[nondominated(s[remaining])]  # (no remaining row beats them)
        front[current] = level
        remaining = np.setdiff1d(remaining, current)
        placed, level = placed + len(current), level + 1
    crowd = np.zeros(n)
    for level_value in np.unique(front[np.isfinite(front)]):
        members = np.flatnonzero(front == level_value)
        for j in range(m):
            order = members[np.argsort(s[members, j], kind="stable")]
            span = s[order[-1], j] - s[order[0], j] or 1.0
            crowd[order[0]] = crowd[order[-1]] = np.inf
            crowd[order[1:-1]] += (s[order[2:], j] - s[order[:-2], j]) / span
    # front first, then more crowding distance (more room) first
    room = np.minimum(crowd, 1e12)
    return front + 0.5 * (1.0 - room / (1.0 + room))
