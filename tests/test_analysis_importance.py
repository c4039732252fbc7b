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
    assert min(permutation.scores.values()) > 0.3
    assert permutation.interactions is None and permutation.to_json()["interactions"] is None  # not estimated, not 0


def test_a_dominant_choice_ranks_first():
    effect = {"a": 0.0, "b": 3.0, "c": 6.0}
    study = _study(lambda c: effect[c["z"]] + 0.01 * c["x"])
    assert fanova_importance(study).ranking[0] == "z"


@pytest.mark.parametrize("method", [fanova_importance, permutation_importance])
def test_a_parameter_its_parent_switches_off_does_not_take_the_parents_credit(method):
    space = {"opt": tl.choice(["sgd", "adam"]), "momentum": tl.uniform(0.0, 1.0, when={"opt": "sgd"}),
             "x": tl.uniform(0, 1)}
    study = _study(lambda c: (5.0 if c["opt"] == "adam" else 0.0) + 0.1 * c.get("momentum", 0.0) + 0.01 * c["x"],
                   n=80, space=space)
    scores = method(study).scores
    assert scores["opt"] > 0.9 and scores["momentum"] < 0.05  # opt explains 99.9% of the variance
    study = _study(lambda c: (5.0 if c["opt"] == "adam" else 0.0) + 10 * c.get("momentum", 0.0), n=80, space=space)
    assert method(study).scores["momentum"] > 0.1  # where the child matters it still shows


def test_a_study_with_several_metrics_explains_the_one_asked_for():
    study = tl.tune(lambda c: {"a": 10 * c["x"], "b": 10 * c["y"]}, SPACE, metric=["a", "b"], mode=["min", "max"],
                    n_trials=40, seed=0, searcher="random")
    first, other = fanova_importance(study), fanova_importance(study, metric="b")
    assert (first.metric, first.ranking[0]) == ("a", "x") and (other.metric, other.ranking[0]) == ("b", "y")
    assert permutation_importance(study, metric="b").ranking[0] == "y"
    with pytest.raises(ConfigError, match="metric 'c' is not one of study .*: a, b"):
        fanova_importance(study, metric="c")


def test_too_few_trials_is_a_clear_error():
    study = _study(lambda c: c["x"], n=2)
    with pytest.raises(ConfigError, match="at least 4 completed trials"):
        fanova_importance(study)


def test_a_metric_that_never_varies_is_a_clear_error_not_all_interaction():
    study = _study(lambda c: 0.9, n=8)
    with pytest.raises(ConfigError, match=r"has the same value \(0.9\) in all 8 trials explained"):
        fanova_importance(study)


def test_a_constant_metric_to_maximise_is_named_by_its_value_and_one_configuration_is_not_a_constant_metric():
    """A constant accuracy of 0.9 was said to be -0.9 (its score, negated to be minimised); and
    trials that all ran one configuration were said to have "the same value" whatever their values
    were (fANOVA), or got a share of 0 for every parameter without a word (permutation)."""
    flat = tl.tune(lambda c: 0.9, {"x": tl.uniform(0, 1)}, metric="acc", mode="max", n_trials=5, seed=0)
    for method in (fanova_importance, permutation_importance):
        with pytest.raises(ConfigError, match=r"acc has the same value \(0.9\) in all 5 trials explained"):
            method(flat)
    repeats = tl.create_study(SPACE, metric="loss", mode="min")
    for value in (0.1, 0.2, 0.3, 0.4, 0.5):
        repeats.tell(config={"x": 0.5, "y": 0.5, "z": "a", "fixed": 1}, value=value)
    for method in (fanova_importance, permutation_importance):
        with pytest.raises(ConfigError, match="all 5 trials explained ran one configuration, so no parameter explains "
                                              "the spread of loss"):
            method(repeats)


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


def _multi_fidelity_study(mode, storage=None):
    """ASHA over 40 trials, rungs 1, 3, 9, 27: every trial reaches epoch 1, one the full run."""
    sign = 1 if mode == "min" else -1

    def train(config, trial):
        for epoch in range(1, int(trial.budget) + 1):
            loss = 10 * (config["x"] - 0.3) ** 2 + 0.1 * (config["y"] - 0.5) ** 2 + 1 / epoch
            trial.report(epoch, score=sign * loss)

    return tl.tune(train, SPACE, metric="score", mode=mode, n_trials=40, seed=0, searcher="random",
                   scheduler="asha", scheduler_options={"eta": 3}, storage=storage, name="mf",
                   fidelity=tl.fidelity("epochs", min=1, max=27))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_multi_fidelity_study_is_explained_at_the_highest_level_enough_trials_reached(mode):
    study = _multi_fidelity_study(mode)
    assert len(study.history().completed) < 4  # too few full runs to explain on their own
    found = fanova_importance(study)
    reached = [t for t in study.trials if t.reports[-1].step >= found.budget]
    assert found.budget in (1.0, 3.0, 9.0) and found.n_trials == len(reached) >= 6  # 2 per searched parameter
    assert len([t for t in study.trials if t.reports[-1].step > found.budget]) < 6  # the next level had fewer
    assert found.ranking[0] == "x"
    everyone = fanova_importance(study, budget=1)
    assert everyone.budget == 1.0 and everyone.n_trials == 40 and everyone.ranking[0] == "x"
    assert permutation_importance(study, budget=1).ranking[0] == "x"


def test_a_small_study_whose_trials_all_ran_in_full_is_explained_at_the_full_budget():
    def train(config, trial):
        for epoch in range(1, int(trial.budget) + 1):
            trial.report(epoch, loss=config["x"] / epoch)

    study = tl.tune(train, SPACE, metric="loss", mode="min", n_trials=4, seed=0, searcher="random",
                    scheduler="fifo", fidelity=tl.fidelity("epochs", min=1, max=6))  # every trial runs 6 epochs
    assert fanova_importance(study).budget == 6.0  # not epoch 1, where too few trials "reached" any level


def test_a_level_is_checked_and_only_for_multi_fidelity_studies():
    study = _multi_fidelity_study("min")
    for bad in (0.5, 28, "9", True):
        with pytest.raises(ConfigError, match=r"budget must be a number in \[1, 27\]"):
            fanova_importance(study, budget=bad)
    with pytest.raises(ConfigError, match="needs a study with a fidelity"):
        fanova_importance(_study(lambda c: c["x"], n=5), budget=3)
