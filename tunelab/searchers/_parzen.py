"""Independent (per-coordinate) Parzen estimators, the proposal rule of the original TPE.

Each coordinate of the unit cube gets its own pair of densities, ``l`` over the good points and
``g`` over the rest; candidates are drawn from ``l`` and the one with the largest ``l/g`` is
kept, coordinate by coordinate. Every kernel's width is the larger gap to its neighbours (points
sorted along that coordinate, the prior's centre among them), floored at ``1/min(100, n+1)``: where
good points crowd together the kernels narrow and the search exploits, where they are sparse the
kernels widen and it explores. On the learning-curve tasks of ``tunelab bench-mf`` this rule
finds good regions in far fewer runs than one joint kernel with a Scott bandwidth, because the
objectives there are close to separable. A flat prior kernel (centre 0.5, width 1) sits in
both densities, so no value is ever ruled out. Unordered choices get smoothed category
frequencies instead. NaN (an inactive parameter) carries no information and is skipped.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

_SQRT2PI = math.sqrt(2 * math.pi)


def propose(good: np.ndarray, bad: np.ndarray, categories: np.ndarray, rng: np.random.Generator,
            candidates: int = 24, prior_weight: float = 1.0) -> np.ndarray:
    """One point of the unit cube: for each coordinate, the candidate drawn from the good
    density with the highest ratio good/bad. ``categories[j]`` is the number of options of an
    unordered choice at coordinate ``j`` (0 for a coordinate on a line)."""
    point = np.empty(good.shape[1])
    for j in range(good.shape[1]):
        mine, others = good[:, j], bad[:, j]
        mine, others = mine[~np.isnan(mine)], others[~np.isnan(others)]
        k = int(categories[j])
        if k:
            point[j] = _categorical(mine, others, k, rng, candidates, prior_weight)
        else:
            point[j] = _numeric(mine, others, rng, candidates, prior_weight)
    return point


def _categorical(good, bad, k, rng, candidates, prior_weight) -> float:
    def probabilities(values):
        counts = np.bincount(np.minimum((values * k).astype(int), k - 1), minlength=k).astype(float)
        weights = counts + prior_weight / k
        return weights / weights.sum()

    l, g = probabilities(good), probabilities(bad)
    drawn = rng.choice(k, size=candidates, p=l)
    best = drawn[int(np.argmax(np.log(l[drawn]) - np.log(g[drawn])))]
    return (best + 0.5) / k


def _kernels(values: np.ndarray, prior_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres, widths, weights) of the mixture over ``values`` plus the prior kernel."""
    mus = np.append(values, 0.5)
    order = np.argsort(mus, kind="stable")
    ordered = mus[order]
    gaps = np.diff(ordered)
    left = np.append(0.0, gaps)  # the first point has no left neighbour
    right = np.append(gaps, 0.0)
    sigma_sorted = np.maximum(left, right)
    sigma = np.empty_like(mus)
    sigma[order] = sigma_sorted
    sigma = np.clip(sigma, 1.0 / min(100.0, len(mus) + 1.0), 1.0)
    sigma[-1] = 1.0  # the prior is flat-ish over the whole range
    weights = np.append(np.ones(len(values)), prior_weight)
    return mus, sigma, weights / weights.sum()


def _log_pdf(x: np.ndarray, mus: np.ndarray, sigma: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log density at ``x`` of the mixture of normals truncated to [0, 1]."""
    mass = ndtr((1 - mus) / sigma) - ndtr(-mus / sigma)
    z = (x[:, None] - mus[None, :]) / sigma[None, :]
    dens = np.exp(-0.5 * z ** 2) / (sigma * _SQRT2PI * np.maximum(mass, 1e-12))[None, :]
    return np.log(np.maximum(dens @ weights, 1e-300))


def _numeric(good, bad, rng, candidates, prior_weight) -> float:
    mus, sigma, weights = _kernels(good, prior_weight)
    picks = rng.choice(len(mus), size=candidates, p=weights)
    drawn = mus[picks] + rng.normal(size=candidates) * sigma[picks]
    for _ in range(20):  # truncate to [0, 1] by drawing again the few that fell outside
        outside = (drawn < 0) | (drawn > 1)
        if not outside.any():
            break
        drawn[outside] = mus[picks[outside]] + rng.normal(size=int(outside.sum())) * sigma[picks[outside]]
    drawn = np.clip(drawn, 0.0, 1.0)
    ratio = _log_pdf(drawn, mus, sigma, weights) - _log_pdf(drawn, *_kernels(bad, prior_weight))
    return float(drawn[int(np.argmax(ratio))])
