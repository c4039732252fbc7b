"""Tree-structured Parzen estimator (TPE): model where the good results are, not the objective.

The observations are split into a small *good* group (the best ``gamma`` fraction) and the
rest; each group becomes a kernel density over the unit cube, and the next point is, among
candidates drawn from the good density, the one with the highest ratio good/bad. Densities are
*multivariate* (one kernel per observation over all coordinates), which keeps the dependencies
between parameters that independent per-parameter estimators lose.

- Numbers (floats, integers, ordinals) get truncated Gaussian kernels on [0, 1]; unordered
  choices a categorical kernel that keeps most mass on the observed option.
- Conditional parameters: a kernel is flat along a coordinate its observation did not use, and
  a candidate is scored only on the coordinates it uses, so both densities see the same dims.
- Pending trials join the bad group ("constant liar"), so parallel workers spread out.
- Each density also holds one flat (prior) kernel, so no region is ever ruled out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

from tunelab.errors import ConfigError
from tunelab.searchers._features import FeatureMap
from tunelab.searchers._learning import LearningSearcher, Observations

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class TPESearcher(LearningSearcher):
    name = "tpe"
    default_startup = 10

    def __init__(self, space, seed=None, n_startup=None, warm_start=None, gamma: float = 0.1,
                 max_good: int = 25, n_candidates: int = 24, prior_weight: float = 1.0):
        super().__init__(space, seed, n_startup=n_startup, warm_start=warm_start)
        if not 0 < gamma < 1:
            raise ConfigError(f"tpe: gamma (the fraction of good observations) must be in (0, 1); got {gamma!r}")
        if not isinstance(max_good, int) or max_good < 1 or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ConfigError(f"tpe: max_good and n_candidates must be positive integers; "
                              f"got {max_good!r}, {n_candidates!r}")
        if not prior_weight > 0:
            raise ConfigError(f"tpe: prior_weight must be positive; got {prior_weight!r}")
        self.gamma, self.max_good, self.n_candidates = float(gamma), max_good, n_candidates
        self.prior_weight = float(prior_weight)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "gamma": self.gamma, "max_good": self.max_good,
                "n_candidates": self.n_candidates, "prior_weight": self.prior_weight}

    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        y = data.targets(rng)
        order = np.argsort(y, kind="stable")
        n_good = max(1, min(math.ceil(self.gamma * len(y)), self.max_good, int(np.isfinite(y).sum())))
        good = data.points[order[:n_good]]
        bad = np.vstack([data.points[order[n_good:]], data.pending])
        dims = self.features.d
        below = ParzenEstimator(good, self.features, self.prior_weight, dims)
        above = ParzenEstimator(bad, self.features, self.prior_weight, dims)
        candidates = self.features.canonical(below.sample(self.n_candidates, rng))
        gain = below.log_pdf(candidates) - above.log_pdf(candidates)
        return candidates[int(np.argmax(gain))]


class ParzenEstimator:
    """A mixture of one kernel per observation plus a flat prior kernel, over the unit cube."""

    def __init__(self, points: np.ndarray, features: FeatureMap, prior_weight: float, dims: int):
        self.mu, self.features = points, features
        k = len(points)
        self.log_weights = np.log(np.append(np.ones(k), prior_weight) / (k + prior_weight))
        self.active = ~np.isnan(points)
        levels = np.maximum(features.levels, 1)
        # Scott-like bandwidth shrinking with the number of kernels, never below the step
        # between neighbouring values of a discrete coordinate (or 1/100 of the range).
        sigma = 0.2 * max(k, 1) ** (-1.0 / (dims + 4))
        floor = np.where(features.levels > 0, 1.0 / levels, 1.0 / min(100, k + 1))
        self.sigma = np.maximum(sigma, floor)
        # Categorical kernel: most mass on the observed option, the rest spread evenly.
        self.keep = 1.0 - min(0.5, 1.0 / math.sqrt(k + 1))
        self.levels = levels
        mu = np.nan_to_num(points, nan=0.5)
        self._mass = np.log(np.maximum(ndtr((1 - mu) / self.sigma) - ndtr(-mu / self.sigma), 1e-12))
        # Every kernel numeric and every coordinate used (no choices, no conditions): the sum of
        # squares over coordinates is a quadratic form, one matrix product for all pairs.
        self._dense = not features.categorical.any() and bool(self.active.all())
        if self._dense:
            self._scaled_mu = mu / self.sigma
            self._kernel_constant = (-0.5 * (self._scaled_mu ** 2).sum(axis=1) - self._mass.sum(axis=1)
                                     - points.shape[1] * _LOG_SQRT_2PI - np.log(self.sigma).sum())

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        d = self.features.d
        component = rng.choice(len(self.log_weights), size=n, p=np.exp(self.log_weights))
        out = rng.random((n, d))  # the prior kernel, and coordinates a kernel is flat along
        real = component < len(self.mu)
        if not real.any():
            return out
        mu = self.mu[component[real]]
        numeric = ~self.features.categorical
        low, high = ndtr(-np.nan_to_num(mu, nan=0.5) / self.sigma), ndtr((1 - np.nan_to_num(mu, nan=0.5)) / self.sigma)
        draw = np.nan_to_num(mu, nan=0.5) + self.sigma * ndtri(np.clip(low + rng.random(mu.shape) * (high - low),
                                                                         1e-12, 1 - 1e-12))
        same = rng.random(mu.shape) < self.keep
        chosen = np.where(numeric, draw, np.where(same, mu, out[real]))
        out[real] = np.where(np.isnan(mu), out[real], chosen)
        return np.clip(out, 0.0, 1.0)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at each row of ``x``, over the coordinates each row uses."""
        if len(self.mu) == 0:
            return np.full(len(x), self.log_weights[-1])
        if self._dense and not np.isnan(x).any():
            scaled = x / self.sigma
            per_kernel = scaled @ self._scaled_mu.T - 0.5 * (scaled ** 2).sum(axis=1)[:, None] + self._kernel_constant
        else:
            per_kernel = self._masked_log_kernels(x)
        prior = np.zeros((len(x), 1))  # the flat kernel: density 1 on the cube
        return logsumexp(np.hstack([per_kernel, prior]) + self.log_weights[None, :], axis=1)

    def _masked_log_kernels(self, x: np.ndarray) -> np.ndarray:
        """Log density of each kernel at each row, coordinate by coordinate: choices get the
        categorical kernel, and coordinates a row or a kernel does not use count for nothing."""
        used = ~np.isnan(x)[:, None, :] & self.active[None, :, :]
        xv, mu = np.nan_to_num(x, nan=0.5)[:, None, :], np.nan_to_num(self.mu, nan=0.5)[None, :, :]
        z = (xv - mu) / self.sigma
        numeric = -0.5 * z * z - _LOG_SQRT_2PI - np.log(self.sigma) - self._mass[None, :, :]
        cat = self.features.categorical
        if cat.any():
            same = np.abs(xv - mu) < 0.5 / self.levels
            k = self.levels
            # times k: a density on the unit interval, comparable with the flat kernel's 1
            categorical = np.log(np.where(same, self.keep * k + 1 - self.keep, 1 - self.keep))
            numeric = np.where(cat, categorical, numeric)
        return np.where(used, numeric, 0.0).sum(axis=2)
