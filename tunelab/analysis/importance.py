"""Which hyperparameters matter? A functional ANOVA over a random-forest surrogate.

A forest is fitted from the study's configurations (in the unit cube, where the priors are
uniform) to its metric. Each tree is a piecewise-constant function on boxes, so its variance over
the cube and the variance of each one-parameter marginal can be computed exactly from the boxes
(Hutter, Hoos and Leyton-Brown, 2014). A parameter's importance is the share of the variance its
main effect explains, averaged over the trees; what the main effects leave is interaction.

:func:`permutation_importance` is the simple baseline to check it against: how much worse the
forest predicts when one column is shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunelab.errors import ConfigError, check_number
from tunelab.trial import TrialState

MIN_TRIALS = 4
_EPS = 1e-9


@dataclass
class Importance:
    """Share of the metric's variance explained by each parameter alone, largest first."""

    scores: dict[str, float]
    interactions: float | None  # the share that no single parameter explains (None: not estimated)
    n_trials: int
    method: str
    budget: float | None = None  # the fidelity level whose values were explained (multi-fidelity studies)
    metric: str | None = None  # the metric explained (a study with several has a choice)

    @property
    def ranking(self) -> list[str]:
        return list(self.scores)

    def to_json(self) -> dict[str, Any]:
        return {"scores": self.scores, "interactions": self.interactions, "n_trials": self.n_trials,
                "method": self.method, "budget": self.budget, "metric": self.metric}


def _forest_class() -> Any:
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError:
        raise ConfigError("parameter importance needs scikit-learn: pip install 'tunelab[analysis]'") from None
    return RandomForestRegressor


def training_data(study: Any, budget: float | None = None, seed: int = 0,
                  metric: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray, float | None]:
    """Parameters that vary, their unit-cube coordinates, the scores (lower is better), and the
    fidelity level the scores are at (None: the study has no fidelity; completed trials' values).

    A parameter its parents switch off gets a random coordinate: it changes nothing there, and
    that is what noise says to a forest. A fixed stand-in (a value off the cube) would repeat the
    parent's choice in the child's column, the forest would split on either, and the child would
    take the credit for its parent's effect."""
    history = study.history()
    metric = _metric(study, metric)
    names = list(study.space.dimensions)
    if study.fidelity is None:
        if budget is not None:
            raise ConfigError(f"importance: budget= needs a study with a fidelity; {study.name!r} has none")
        trials = [t for t in history.completed if np.isfinite(history.score(t, metric))]
        scores, what = [history.score(t, metric) for t in trials], "completed trials"
    else:
        budget, trials, scores = _at_level(study, history, max(MIN_TRIALS, 2 * len(names)), budget, metric)
        what = f"trials that reached {budget:g}"
    if len(trials) < MIN_TRIALS or not names:
        raise ConfigError(f"importance needs at least {MIN_TRIALS} {what} and one searched parameter; "
                          f"study {study.name!r} has {len(trials)} and {len(names)}")
    X, y = np.array([study.space.encode(t.config) for t in trials]), np.array(scores)
    _check_spread(study, metric, X, y)
    inactive = np.isnan(X)
    X[inactive] = np.random.default_rng(seed).random(int(inactive.sum()))
    return names, X, y, budget


def _check_spread(study: Any, metric: str, X: np.ndarray, y: np.ndarray) -> None:
    """Refuse what no parameter can explain, saying which it is: a metric that never moves (there
    is no variance to share out), or one configuration run every time (the metric's spread is
    the seed's, and every share would be 0, which fANOVA reported as a metric that never moved)."""
    if np.ptp(y) == 0:  # y holds scores, lower is better: a metric to maximise is negated there
        value = -float(y[0]) if study.modes[study.metrics.index(metric)] == "max" else float(y[0])
        raise ConfigError(f"importance: {metric} has the same value ({value:.6g}) in all {len(y)} trials "
                          "explained, so no parameter explains any of it")
    if len(np.unique(np.nan_to_num(X, nan=-1.0), axis=0)) == 1:
        raise ConfigError(f"importance: all {len(y)} trials explained ran one configuration, so no parameter explains "
                          f"the spread of {metric} (it is the seed's); importance needs trials whose searched "
                          "parameters differ")


def _metric(study: Any, metric: str | None) -> str:
    if metric is None:
        return study.metrics[0]
    if metric not in study.metrics:
        raise ConfigError(f"importance: metric {metric!r} is not one of study {study.name!r}'s: {', '.join(study.metrics)}")
    return metric


def _at_level(study: Any, history: Any, enough: int, budget: float | None,
              metric: str) -> tuple[float, list[Any], list[float]]:
    """A multi-fidelity study explained at one level: ``budget``, or else the highest level that
    ``enough`` trials reached (a few per parameter). Its rungs hold many more trials than its
    full runs, and values at one level compare like with like; mixing levels would not.

    A trial's value at a level is its report that reached it; a completed trial's own value
    stands at its budget (it may differ from the last report, e.g. a test score)."""
    low, high = study.fidelity.min, study.fidelity.max
    check_number("importance: budget", budget, f"a number in [{low:g}, {high:g}] (the study's fidelity)",
                 lambda v: low <= v <= high, optional=True)
    sign = -1.0 if history.modes[history.metrics.index(metric)] == "max" else 1.0
    curves = []
    for trial in history.trials:
        if trial.state is TrialState.RUNNING or trial.state is TrialState.WAITING:
            continue
        points = [(r.step, sign * r.metrics[metric]) for r in trial.reports if metric in r.metrics]
        if trial.state is TrialState.COMPLETED and trial.budget is not None:
            points = [p for p in points if p[0] < trial.budget * (1 - _EPS)] + [(trial.budget, history.score(trial, metric))]
        points = [p for p in points if np.isfinite(p[1])]
        if points:
            curves.append((trial, points))
    if budget is None:  # the highest level reached by enough trials, else the highest reached by the most
        levels = sorted({step for _, points in curves for step, _ in points}, reverse=True) or [high]
        reached_by = {level: sum(points[-1][0] >= level * (1 - _EPS) for _, points in curves) for level in levels}
        budget = next((level for level in levels if reached_by[level] >= enough),
                      max(levels, key=lambda level: (reached_by[level], level)))
    reached = [(trial, next(v for step, v in points if step >= budget * (1 - _EPS)))
               for trial, points in curves if points[-1][0] >= budget * (1 - _EPS)]
    return float(budget), [t for t, _ in reached], [v for _, v in reached]


def fit_forest(X: np.ndarray, y: np.ndarray, seed: int, trees: int) -> Any:
    forest = _forest_class()(n_estimators=trees, min_samples_leaf=1, max_features=1.0, bootstrap=True,
                             random_state=seed)
    return forest.fit(X, y)


def _leaves(tree: Any, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (lower corners, upper corners) of a fitted tree's leaves inside the cube, and values."""
    t = tree.tree_
    lows, highs, values = [], [], []
    stack = [(0, np.zeros(d), np.ones(d))]
    while stack:
        node, lo, hi = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == -1:
            lows.append(lo), highs.append(hi), values.append(float(t.value[node].ravel()[0]))
            continue
        f, threshold = t.feature[node], t.threshold[node]
        left_hi, right_lo = hi.copy(), lo.copy()
        left_hi[f], right_lo[f] = min(hi[f], threshold), max(lo[f], threshold)
        if left_hi[f] > lo[f]:
            stack.append((left, lo, left_hi))
        if hi[f] > right_lo[f]:
            stack.append((right, right_lo, hi))
    return np.array(lows), np.array(highs), np.array(values)


def tree_main_effects(tree: Any, d: int) -> np.ndarray | None:
    """Variance of each one-parameter marginal divided by the tree's total variance (exact)."""
    lo, hi, v = _leaves(tree, d)
    widths = hi - lo
    volume = widths.prod(axis=1)
    mean = float(volume @ v) / float(volume.sum())
    total = float(volume @ (v - mean) ** 2)
    if total <= 1e-15:
        return None
    shares = np.zeros(d)
    for i in range(d):
        # The marginal is constant between consecutive box edges along i; each leaf adds its
        # value times its volume across the other coordinates over the stretch it covers, summed
        # with a difference array (a leaves x stretches matrix grew with the square of the study).
        cuts = np.unique(np.concatenate([lo[:, i], hi[:, i]]))
        rest = np.divide(volume, widths[:, i], out=np.zeros_like(volume), where=widths[:, i] > 0)
        steps = np.zeros(len(cuts))
        np.add.at(steps, np.searchsorted(cuts, lo[:, i]), rest * v)
        np.add.at(steps, np.searchsorted(cuts, hi[:, i]), -rest * v)
        marginal = np.cumsum(steps)[:-1]
        shares[i] = float(np.diff(cuts) @ (marginal - mean) ** 2) / total
    return shares


def fanova_importance(study: Any, *, trees: int = 64, seed: int = 0, budget: float | None = None,
                      metric: str | None = None) -> Importance:
    """fANOVA main effects of each searched parameter over a random-forest surrogate."""
    names, X, y, budget = training_data(study, budget, seed, metric)
    forest = fit_forest(X, y, seed, trees)
    shares = [s for s in (tree_main_effects(tree, len(names)) for tree in forest.estimators_) if s is not None]
    if not shares:  # every tree is flat (a metric or configurations that never vary are refused before)
        raise ConfigError(f"importance: no tree of the forest over the {len(y)} trials explained found a split, so "
                          "there is no variance to share out; run more trials")
    mean = np.mean(shares, axis=0)
    scores = dict(sorted(zip(names, map(float, mean)), key=lambda kv: -kv[1]))
    return Importance(scores, max(0.0, 1.0 - float(mean.sum())), len(y), "fanova", budget, _metric(study, metric))


def permutation_importance(study: Any, *, trees: int = 64, repeats: int = 10, seed: int = 0,
                           budget: float | None = None, metric: str | None = None) -> Importance:
    """Baseline: increase of the forest's squared error when a parameter's column is shuffled."""
    names, X, y, budget = training_data(study, budget, seed, metric)
    forest = fit_forest(X, y, seed, trees)
    rng = np.random.default_rng(seed)
    base = float(np.mean((forest.predict(X) - y) ** 2))
    rises = np.zeros(len(names))
    for i in range(len(names)):
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, i] = rng.permutation(shuffled[:, i])
            rises[i] += max(float(np.mean((forest.predict(shuffled) - y) ** 2)) - base, 0.0) / repeats
    total = rises.sum()
    shares = rises / total if total > 0 else rises
    scores = dict(sorted(zip(names, map(float, shares)), key=lambda kv: -kv[1]))
    return Importance(scores, None, len(y), "permutation", budget, _metric(study, metric))


def importance(study: Any, *, method: str = "fanova", seed: int = 0, budget: float | None = None,
               metric: str | None = None) -> Importance:
    """Each parameter's share of the variance of ``metric`` (by default the study's first); a
    multi-fidelity study is explained at ``budget``, by default the highest fidelity level that
    enough trials reached."""
    methods = {"fanova": fanova_importance, "permutation": permutation_importance}
    if method not in methods:
        raise ConfigError(f"unknown importance method {method!r}; known: {', '.join(methods)}")
    return methods[method](study, seed=seed, budget=budget, metric=metric)
