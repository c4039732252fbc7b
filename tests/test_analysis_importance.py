"""Parameter importance: fANOVA over a forest, checked against the permutation baseline."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl
from tunelab.analysis.importance import fanova_importance, permutation_importance
from tunelab.errors import ConfigError

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1), "z": tl.choice(["a", "b", "c"]), "fixed": 1}


def _study(function, n=60, space=SPACE):
    return tl.tune(function, space, metric="loss", mode="min", n_trials=n, seed=0, searcher="random")


def test_a_dominant_parameter_ranks_first_for_both_methods():
    study = _study(lambda c: 10 * (c["x"] - 0.3) ** 2 + 0.1 * (c["y"] - 0.5) ** 2)
    fanova, permutation = fanova_importance(study), permutation_importance(study)
    assert fanova.ranking[0] == permutation.ranking[0] == "x"
    assert set(fanova.scores) == {"x", "y", "z"}  # constants are not searched
    # the true share of x's main effect is 0.99997; a 60-trial forest gets close
    assert fanova.scores["x"] > 0.9 and permutation.scores["x"] > 0.9
    assert fanova.scores["z"] < 0.05 and fanova.interactions < 0.1
    assert sum(fanova.scores.values()) + fanova.interactions == pytest.approx(1.0)


def test_fanova_sees_a_pure_interaction_that_permutation_cannot_tell_apart():
    space = {"x": tl.uniform(-1, 1), "y": tl.uniform(-1, 1)}
    study = _study(lambda c: c["x"] * c["y"], n=150, space=space)
    fanova, permutation = fanova_importance(study), permutation_importance(study)
    # x*y has no main effects at all: fANOVA puts most variance in interactions, while the
    # permutation baseline (which has no notion of interaction) splits it between x and y.
    assert fanova.interactions > 0.5
    assert permutation.interactions == 0.0 and min(permutation.scores.values()) > 0.3


def test_a_dominant_choice_ranks_first():
    effect = {"a": 0.0, "b": 3.0, "c": 6.0}
    study = _study(lambda c: effect[c["z"]] + 0.01 * c["x"])
    assert fanova_importance(study).ranking[0] == "z"


def test_too_few_trials_is_a_clear_error():
    study = _study(lambda c: c["x"], n=2)
    with pytest.raises(ConfigError, match="at least 4 completed trials"):
        fanova_importance(study)


def test_exact_tree_decomposition_matches_a_numeric_integral():
    from sklearn.tree import DecisionTreeRegressor

    from tunelab.analysis.importance import tree_main_effects

    rng = np.random.default_rng(1)
    X = rng.random((300, 2))
    y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + X[:, 0] * X[:, 1]
    tree = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, y)
    grid = np.linspace(0, 1, 401)[:-1] + 1 / 800  # midpoints: exact for a piecewise-constant tree
    gx, gy = np.meshgrid(grid, grid, indexing="ij")
    values = tree.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    total = values.var()
    expected = [values.mean(axis=1).var() / total, values.mean(axis=0).var() / total]
    assert tree_main_effects(tree, 2) == pytest.approx(expected, abs=2e-3)
