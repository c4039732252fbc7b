import numpy as np
import pytest

import tunelab as tl
from searcher_checks import (check_beats_random, check_failures, check_mixed, check_pending,
                             check_reproducible, check_respects_space)
from tunelab.searchers._features import FeatureMap
from tunelab.searchers.tpe import ParzenEstimator


def test_tpe_beats_random_on_a_quadratic():
    check_beats_random("tpe", n_trials=50, seeds=range(6))


def test_tpe_respects_the_space():
    check_respects_space("tpe", n_trials=40)


def test_tpe_is_reproducible():
    check_reproducible("tpe", n_trials=20)


def test_tpe_pending_trials_are_distinct():
    check_pending("tpe")


def test_tpe_handles_failures():
    check_failures("tpe", n_trials=40)


def test_tpe_conditional_and_categorical():
    check_mixed("tpe", n_trials=40)


def test_parzen_density_integrates_to_one_and_samples_stay_in_the_cube():
    space = tl.Space({"a": tl.uniform(0, 1), "b": tl.choice(["x", "y", "z"])})
    fmap = FeatureMap(space)
    points = fmap.canonical(np.random.default_rng(0).random((6, 2)))
    kde = ParzenEstimator(points, fmap, prior_weight=1.0, dims=2)
    grid = np.linspace(0.0005, 0.9995, 1000)
    total = 0.0
    for centre in (1 / 6, 3 / 6, 5 / 6):
        x = np.column_stack([grid, np.full_like(grid, centre)])
        total += np.exp(kde.log_pdf(x)).mean() / 3
    assert total == pytest.approx(1.0, rel=0.02)
    draws = kde.sample(500, np.random.default_rng(1))
    assert draws.min() >= 0 and draws.max() <= 1


def test_tpe_rejects_bad_options():
    with pytest.raises(tl.ConfigError):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="m", mode="min", searcher="tpe",
                        searcher_options={"gamma": 1.5})


def test_parzen_log_density_of_a_numeric_space_matches_a_kernel_by_kernel_sum():
    """The quadratic-form shortcut for all-numeric spaces gives the truncated-normal mixture."""
    from scipy.special import logsumexp
    from scipy.stats import truncnorm

    space = tl.Space({"a": tl.uniform(0, 1), "b": tl.loguniform(1e-3, 1), "c": tl.uniform(-2, 2)})
    rng = np.random.default_rng(3)
    points, x = rng.random((40, 3)), rng.random((7, 3))
    estimator = ParzenEstimator(points, FeatureMap(space), 1.0, 3)
    assert estimator._dense
    sigma = estimator.sigma
    per_kernel = np.array([[truncnorm.logpdf(row, -mu / sigma, (1 - mu) / sigma, loc=mu, scale=sigma).sum()
                            for mu in points] for row in x])
    expected = logsumexp(np.hstack([per_kernel, np.zeros((len(x), 1))]) + estimator.log_weights, axis=1)
    np.testing.assert_allclose(estimator.log_pdf(x), expected, rtol=1e-9, atol=1e-9)
