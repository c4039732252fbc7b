"""Parametric learning curves, fitted to a run's first reports to predict where it ends.

Each family is a saturating curve ``y(x) = c + a * g(x)`` with ``g`` decaying to 0, so ``c`` is the
value the run converges to. No single family fits every learning curve (Domhan et al. 2015), so
several are fitted and their predictions pooled, weighted by how well each explains the points
(BIC weights: a better fit counts more, an extra parameter must earn its keep); the weighted
spread between them, plus the fits' residual error, is the uncertainty of the prediction. Curves
are fitted on values oriented so that lower is better; a family whose fit is not finite, or that
extrapolates far outside the values seen, is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


def _pow3(x, alpha):
    return np.power(x, -alpha)


def _exp3(x, b):
    return np.exp(-b * x)


def _log_power(x, b, alpha):
    return 1.0 / (1.0 + np.power(x / np.exp(b), alpha))


def _ilog2(x):
    return 1.0 / np.log(x + 1.0)


@dataclass(frozen=True)
class Family:
    """``y = c + a * g(x, *theta)``: linear in ``(c, a)``, so only ``theta`` (the shape) is searched;
    ``ranges`` bound each shape parameter, searched on a log scale when ``log``."""

    name: str
    g: Callable
    ranges: tuple[tuple[float, float, bool], ...]

    @property
    def n_params(self) -> int:
        return 2 + len(self.ranges)


FAMILIES = [
    Family("pow3", _pow3, ((1e-3, 5.0, True),)),
    Family("exp3", _exp3, ((1e-4, 10.0, True),)),
    Family("log_power", _log_power, ((-20.0, 20.0, False), (1e-3, 5.0, True))),
    Family("ilog2", _ilog2, ()),
]

_GRID = {1: 25, 2: 13}  # points per shape parameter and round, by number of shape parameters
_ROUNDS = 5  # each round zooms in on the best shape found so far


def _linear_fit(G: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``(c, a)`` for each row of basis values ``G``, and the residual sums."""
    gm, ym = G.mean(axis=1, keepdims=True), y.mean()
    dg = G - gm
    var = (dg ** 2).sum(axis=1)
    with np.errstate(all="ignore"):
        a = np.where(var > 1e-14, (dg @ (y - ym)) / np.where(var > 1e-14, var, 1.0), 0.0)
    c = ym - a * gm[:, 0]
    rss = ((y[None, :] - c[:, None] - a[:, None] * G) ** 2).sum(axis=1)
    return c, a, np.where(np.isfinite(rss), rss, np.inf)


def _fit(family: Family, x: np.ndarray, y: np.ndarray) -> tuple[tuple[float, ...], float, float, float] | None:
    """(shape, c, a, rss) of the best fit: variable projection over a grid of shapes that zooms in
    on the best one round by round. No iterative solver, so no fit ever fails to converge, and
    every fit costs the same few vectorised passes (a report must stay cheap)."""
    if not family.ranges:
        c, a, rss = _linear_fit(family.g(x)[None, :], y)
        return (), float(c[0]), float(a[0]), float(rss[0])
    outer = [(math.log(lo), math.log(hi)) if log else (lo, hi) for lo, hi, log in family.ranges]
    bounds, best, n = outer, None, _GRID[len(outer)]
    for _ in range(_ROUNDS):
        axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
        mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
        shapes = np.column_stack([np.exp(mesh[:, j]) if family.ranges[j][2] else mesh[:, j]
                                  for j in range(len(bounds))])
        with np.errstate(all="ignore"):
            G = family.g(x[None, :], *(shapes[:, j:j + 1] for j in range(len(bounds))))
        ok = np.all(np.isfinite(G), axis=1)
        if not ok.any():
            return None
        c, a, rss = _linear_fit(np.where(ok[:, None], G, 0.0), y)
        rss = np.where(ok, rss, np.inf)
        i = int(np.argmin(rss))
        if best is None or rss[i] <= best[3]:
            best = (tuple(float(v) for v in shapes[i]), float(c[i]), float(a[i]), float(rss[i]))
        # Zoom: the next grid spans two steps of this one on each side of the best point.
        bounds = [(max(lo0, m - 2 * (hi - lo) / (n - 1)), min(hi0, m + 2 * (hi - lo) / (n - 1)))
                  for m, (lo, hi), (lo0, hi0) in zip(mesh[i], bounds, outer)]
    return best


@dataclass(frozen=True)
class Prediction:
    mean: float
    std: float
    by_family: dict[str, float]


def predict(steps: Sequence[float], values: Sequence[float], at: float) -> Prediction | None:
    """Pooled prediction of the value at step ``at`` (None when no family could be fitted)."""
    path = predict_path(steps, values, [at])
    return None if path is None else path[0]


def predict_path(steps: Sequence[float], values: Sequence[float], at: Sequence[float]) -> list[Prediction] | None:
    """Pooled predictions at each step of ``at``, from one fit of every family (None when no
    family could be fitted). A family whose extrapolation to the furthest step leaves the
    values seen far behind is left out at every step, so the predictions are of one curve."""
    x, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    targets = np.asarray(at, dtype=float)
    if len(x) < 3 or not len(targets):
        return None
    scale = max(float(np.ptp(y)), 1e-6 * max(1.0, float(np.abs(y).max())))
    furthest = int(np.argmax(targets))
    predictions, residuals, bics = {}, [], []
    for family in FAMILIES:
        n_params = family.n_params
        if len(x) <= n_params:
            continue
        fit = _fit(family, x, y)
        if fit is None:
            continue
        shape, c, a = fit[:3]
        with np.errstate(all="ignore"):
            fitted = c + a * family.g(x, *shape)
            ahead = c + a * family.g(targets, *shape)
        if not np.all(np.isfinite(ahead)) or not np.all(np.isfinite(fitted)):
            continue
        # A family that extrapolates far outside the values seen is not believed.
        if abs(float(ahead[furthest]) - y[-1]) > 10 * scale:
            continue
        rss = float(np.sum((fitted - y) ** 2)) + len(x) * (1e-4 * scale) ** 2
        predictions[family.name] = ahead
        residuals.append(math.sqrt(rss / len(x)))
        bics.append(len(x) * math.log(rss / len(x)) + n_params * math.log(len(x)))
    if not predictions:
        return None
    weights = np.exp(-0.5 * (np.asarray(bics) - min(bics)))
    weights /= weights.sum()
    residual = float(weights @ np.asarray(residuals))
    out = []
    for j, step in enumerate(targets):
        finals = np.asarray([ahead[j] for ahead in predictions.values()])
        mean = float(weights @ finals)
        between = math.sqrt(float(weights @ (finals - mean) ** 2)) if len(finals) > 1 else 0.25 * scale
        # The further the extrapolation, the less a small residual means: grow the noise with it.
        reach = math.log(max(step, x[-1]) / x[-1] + 1.0)
        std = math.sqrt(between ** 2 + (residual * (1.0 + reach)) ** 2) + 0.01 * scale
        out.append(Prediction(mean, std, {name: float(ahead[j]) for name, ahead in predictions.items()}))
    return out
