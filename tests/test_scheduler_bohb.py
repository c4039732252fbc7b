"""BOHB: Hyperband's brackets filled by a multi-fidelity KDE model (pluggable)."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl
from tunelab.searchers.kde import KDESearcher

from mf_objectives import EPOCHS, SPACE, by_epochs

SPACE2 = {"x": tl.uniform(-5, 5), "y": tl.uniform(-5, 5), "c": tl.choice(["a", "b", "c"])}


def bowl(config):
    return (config["x"] - 1) ** 2 + (config["y"] + 2) ** 2 + (0 if config["c"] == "b" else 3)


def test_bohb_runs_hyperband_with_the_kde_model_by_default_and_takes_any_searcher():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="bohb", fidelity=EPOCHS,
                    n_trials=17, seed=1, progress=False)
    assert study.searcher.name == "kde" and study.storage.get_study(study.name).settings["searcher"]["name"] == "kde"
    assert study.counts() == {"completed": 5, "pruned": 12}  # the same rungs as Hyperband
    other = tl.create_study(SPACE, metric="loss", mode="min", scheduler="bohb", searcher="sobol", fidelity=EPOCHS)
    assert other.searcher.name == "sobol"


def test_the_model_is_fitted_on_the_highest_budget_with_enough_observations():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS,
                    n_trials=14, seed=2, progress=False)
    # 9 trials reached epoch 1, 3 + 5 = 8 reached epoch 3, 1 + 1 reached epoch 9
    def fit(min_points, fit_on="highest"):
        return KDESearcher(study.space, seed=0, min_points=min_points, fit_on=fit_on).observations(study.history())

    budget, X, scores = fit(6)
    assert budget == 3.0 and len(X) == 8
    budget, X, _ = fit(9)
    assert budget == 1.0 and len(X) >= 9
    assert fit(50) is None


def test_the_ranked_model_puts_trials_that_got_further_first():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="sh", scheduler_options={"n": 9},
                    fidelity=EPOCHS, n_trials=9, seed=3, progress=False)
    budget, X, scores = KDESearcher(study.space, seed=0, fit_on="ranked").observations(study.history())
    assert budget == 9.0 and len(X) == 9
    order = [float(x[0]) for x in X[np.argsort(scores)]]
    by_x = sorted(t.config["x"] for t in study.trials)
    assert order[0] == pytest.approx(by_x[0])  # the one that reached 9 epochs
    assert sorted(order[1:3]) == pytest.approx(by_x[1:3])  # then those stopped at 3, then the rest


def test_kde_beats_random_search_on_a_bowl():
    def best(searcher, seed):
        return tl.tune(bowl, SPACE2, metric="loss", mode="min", searcher=searcher, n_trials=60, seed=seed,
                       progress=False).best.value
    kde = [best("kde", seed) for seed in range(5)]
    rnd = [best("random", seed) for seed in range(5)]
    assert np.median(kde) < np.median(rnd)


def test_kde_is_deterministic_for_a_seed():
    runs = [[t.config for t in tl.tune(bowl, SPACE2, metric="loss", mode="min", searcher="kde", n_trials=15,
                                        seed=4, progress=False).trials] for _ in range(2)]
    assert runs[0] == runs[1]
