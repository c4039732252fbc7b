"""Parametric learning curves, fitted to a run's first reports to predict where it ends.

Each family is a saturating curve ``y(x) = c + a * g(x)`` with ``g`` decaying to 0, so ``c`` is the
value the run converges to. No single family fits every learning curve (Domhan et al. 2015), so
several are fitted and their predictions pooled, weighted by how well each explains the points
(BIC weights: a better fit counts more, an extra parameter must earn its keep); the weighted
spread between them, plus the fits' residual error, is the uncertainty of the prediction. Curves are fitted on values oriented so
that lower is better; a family that does not converge is left out.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


def _pow3(x, c, a, alpha):
    return c + a * np.power(x, -alpha)


def _exp3(x, c, a, b):
    return c + a * np.exp(-b * x)


def _log_power(x, c, a, b, alpha):
    return c + a / (1.0 + np.power(x / np.exp(b), alpha))


def _ilog2(x, c, a):
    return c + a / np.log(x + 1.0)


@dataclass(frozen=True)
class Family:
    name: str
    f: Callable
    guess: Callable[[np.ndarray, np.ndarray], list[float]]
    bounds: tuple[list[float], list[float]]


def _spread(x: np.ndarray, y: np.ndarray) -> float:
    return float(y[0] - y[-1]) or 1e-3


FAMILIES = [
    Family("pow3", _pow3, lambda x, y: [y[-1] - 0.1 * abs(_spread(x, y)), _spread(x, y), 0.5],
           ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 5.0])),
    Family("exp3", _exp3, lambda x, y: [y[-1], _spread(x, y) * math.e, 1.0 / max(x[-1] / 3, 1e-6)],
           ([-np.inf, -np.inf, 1e-6], [np.inf, np.inf, np.inf])),
    Family("log_power", _log_power, lambda x, y: [y[-1] - 0.1 * abs(_spread(x, y)), 2 * _spread(x, y), 0.0, 1.0],
           ([-np.inf, -np.inf, -20.0, 1e-3], [np.inf, np.inf, 20.0, 5.0])),
    Family("ilog2", _ilog2, lambda x, y: [y[-1] - 0.1 * abs(_spread(x, y)), _spread(x, y)],
           ([-np.inf, -np.inf], [np.inf, np.inf])),
]


@dataclass(frozen=True)
class Prediction:
    mean: float
    std: float
    by_family: dict[str, float]


def predict(steps: Sequence[float], values: Sequence[float], at: float) -> Prediction | None:
    """Pooled prediction of the value at step ``at`` (None when no family could be fitted)."""
    x, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return None
    scale = max(float(np.ptp(y)), 1e-6 * max(1.0, float(np.abs(y).max())))
    predictions, residuals, bics = {}, [], []
    for family in FAMILIES:
        n_params = len(family.bounds[0])
        if len(x) <= n_params:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (OptimizeWarning, RuntimeWarning))
                params, _ = curve_fit(family.f, x, y, p0=family.guess(x, y), bounds=family.bounds, maxfev=400)
                fitted = family.f(x, *params)
                final = float(family.f(np.asarray([at], dtype=float), *params)[0])
        except (RuntimeError, ValueError, FloatingPointError):
            continue
        if not math.isfinite(final) or not np.all(np.isfinite(fitted)):
            continue
        # A family that extrapolates far outside the values seen is not believed.
        if abs(final - y[-1]) > 10 * scale:
            continue
        rss = float(np.sum((fitted - y) ** 2)) + len(x) * (1e-4 * scale) ** 2
        predictions[family.name] = final
        residuals.append(math.sqrt(rss / len(x)))
        bics.append(len(x) * math.log(rss / len(x)) + n_params * math.log(len(x)))
    if not predictions:
        return None
    finals = np.asarray(list(predictions.values()))
    weights = np.exp(-0.5 * (np.asarray(bics) - min(bics)))
    weights /= weights.sum()
    mean = float(weights @ finals)
    between = math.sqrt(float(weights @ (finals - mean) ** 2)) if len(finals) > 1 else 0.25 * scale
    # The further the extrapolation, the less a small residual means: grow the noise with it.
    reach = math.log(max(at, x[-1]) / x[-1] + 1.0)
    std = math.sqrt(between ** 2 + (float(weights @ np.asarray(residuals)) * (1.0 + reach)) ** 2) + 0.01 * scale
    return Prediction(mean, std, predictions)
