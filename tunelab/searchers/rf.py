"""Bayesian optimisation with a random-forest surrogate (``rf``, alias ``smac``).

Trees split on any coordinate without caring about scale, smoothness or one-hot blocks, so a
forest is at home on categorical and conditional spaces where a GP kernel struggles (inactive
coordinates get the value -1, a side of a split of their own). The spread of the trees'
predictions stands in for the model's uncertainty, expected improvement trades it against the
mean, and candidates come from local search around the best configurations (a few rounds of
hill-climbing on EI from their neighbours) plus random points: the recipe of SMAC.

Needs scikit-learn (``pip install 'tunelab[rf]'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from tunelab.errors import ConfigError
from tunelab.searchers._learning import LearningSearcher, Observations


def _forest_class():
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("searcher 'rf' needs scikit-learn: pip install 'tunelab[rf]'") from None
    return RandomForestRegressor


class RandomForestSearcher(LearningSearcher):
    name = "rf"
    default_startup = None

    def __init__(self, space, seed=None, n_startup=None, warm_start=None, n_trees: int = 24,
                 n_random: int = 500, n_local: int = 10):
        super().__init__(space, seed, n_startup=n_startup, warm_start=warm_start)
        self.check_integers(1, n_trees=n_trees, n_random=n_random, n_local=n_local)
        self.n_trees, self.n_random, self.n_local = n_trees, n_random, n_local
        self._forest = _forest_class()

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n_trees": self.n_trees, "n_random": self.n_random, "n_local": self.n_local}

    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        fmap = self.features
        y = data.filled_targets(rng)
        if y is None:
            return rng.random(fmap.d)
        points = np.vstack([data.points, data.pending])
        # Pending trials: assume the mean of what was seen (a constant liar), so they are not re-proposed.
        y = np.concatenate([y, np.full(len(data.pending), y.mean())])
        target = _log_shift(y)
        forest = self._forest(n_estimators=self.n_trees, min_samples_leaf=1, max_features=0.9,
                              bootstrap=True, random_state=int(rng.integers(2**31 - 1)))
        forest.fit(_inputs(points), target)
        best = float(target[: len(data.points)].min())

        def ei(candidates: np.ndarray) -> np.ndarray:
            x = _inputs(candidates).astype(np.float32)  # the trees' own input type: no checks, no copies
            per_tree = np.stack([tree.tree_.predict(x).reshape(len(x)) for tree in forest.estimators_])
            mean, std = per_tree.mean(0), np.maximum(per_tree.std(0), 1e-9)
            z = (best - mean) / std
            return std * (z * ndtr(z) + np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))

        starts = data.points[np.argsort(y[: len(data.points)], kind="stable")[: self.n_local]]
        candidates = fmap.canonical(rng.random((self.n_random, fmap.d)))
        scores = ei(candidates)
        for scale in (0.2, 0.1, 0.05, 0.02):  # hill-climb: neighbours of the current best, shrinking steps
            pool = np.vstack([starts, candidates[np.argsort(-scores)[:3]]])
            neighbours = fmap.perturb(np.repeat(pool, 20, axis=0), scale, rng)
            candidates = np.vstack([candidates, neighbours])
            scores = np.concatenate([scores, ei(neighbours)])
            starts = candidates[np.argsort(-scores)[: self.n_local]]
        return candidates[int(np.argmax(scores))]


def _inputs(points: np.ndarray) -> np.ndarray:
    return np.nan_to_num(points, nan=-1.0)


def _log_shift(y: np.ndarray) -> np.ndarray:
    """log(y - min + small): spreads out the good region when values span orders of magnitude."""
    span = np.ptp(y)
    return np.log(y - y.min() + 1e-3 * (span if span > 0 else 1.0))
