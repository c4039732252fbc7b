import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import norm

import tunelab as tl
from searcher_checks import (check_beats_random, check_failures, check_mixed, check_pending,
                             check_reproducible, check_respects_space)
from tunelab.searchers._gp import GaussianProcess, log_ei, log_h


def test_bo_beats_random_on_a_quadratic():
    check_beats_random("bo", n_trials=25, seeds=range(4))


def test_bo_respects_the_space():
    check_respects_space("bo", n_trials=25)


def test_bo_is_reproducible():
    check_reproducible("gp", n_trials=14)


def test_bo_pending_trials_are_distinct():
    check_pending("bo", n_told=8, n_pending=6)


def test_bo_handles_failures():
    check_failures("bo", n_trials=24)


def test_bo_conditional_and_categorical():
    check_mixed("bo", n_trials=25, seeds=range(6))


def test_bo_caps_its_data_and_still_proposes_valid_points():
    space = tl.Space({"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)})
    study = tl.create_study(space, metric="v", mode="min", seed=0, searcher="bo",
                            searcher_options={"max_points": 20, "n_startup": 5})
    for _ in range(35):
        t = study.ask()
        study.tell(t, (t.config["x"] - 0.3) ** 2 + (t.config["y"] - 0.6) ** 2)
    assert study.best.value < 0.01


def test_marginal_likelihood_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.random((25, 3))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2
    gp = GaussianProcess(x, (y - y.mean()) / y.std())
    theta = gp.theta + rng.normal(0, 0.3, len(gp.theta))
    analytic = gp._neg_log_posterior(theta)[1]
    numeric = approx_fprime(theta, lambda t: gp._neg_log_posterior(t)[0], 1e-6)
    assert np.allclose(analytic, numeric, rtol=1e-3, atol=1e-3)


def test_prediction_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.random((20, 2))
    gp = GaussianProcess(x, np.cos(4 * x[:, 0]) - x[:, 1]).fit()
    p = rng.random((3, 2))
    mean, var, d_mean, d_var = gp.predict(p, gradient=True)
    for j in range(2):
        step = np.zeros_like(p)
        step[:, j] = 1e-6
        m2, v2 = gp.predict(p + step)
        assert np.allclose((m2 - mean) / 1e-6, d_mean[:, j], rtol=1e-3, atol=1e-4)
        assert np.allclose((v2 - var) / 1e-6, d_var[:, j], rtol=1e-3, atol=1e-4)
    value, g_mean, g_var = log_ei(mean, var, -0.5)
    assert np.allclose((log_ei(mean + 1e-7, var, -0.5)[0] - value) / 1e-7, g_mean, rtol=1e-3)


def test_log_ei_is_accurate_and_finite_far_in_the_tail():
    z = np.array([-3.0, -0.5, 0.0, 2.0])
    assert np.allclose(log_h(z), np.log(norm.pdf(z) + z * norm.cdf(z)))
    tail = log_h(np.array([-30.0, -100.0, -1000.0]))
    assert np.all(np.isfinite(tail)) and np.all(np.diff(tail) < 0)


def test_bo_rejects_bad_options():
    with pytest.raises(tl.ConfigError):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="m", mode="min", searcher="bo",
                        searcher_options={"max_points": 2})


def test_noise_is_fitted_near_zero_for_a_deterministic_function_and_up_for_noisy_data():
    rng = np.random.default_rng(0)
    x = rng.random((30, 2))
    signal = np.sin(3 * x[:, 0]) + np.cos(2 * x[:, 1])
    fitted = {}
    for sd in (0.0, 0.3):
        y = signal + sd * rng.normal(size=len(x))
        fitted[sd] = GaussianProcess(x, (y - y.mean()) / y.std()).fit().noise
    assert fitted[0.0] < 1e-4 and fitted[0.3] > 0.02


def test_bo_homes_in_on_a_smooth_optimum_precisely():
    space = {"x": tl.uniform(-2, 2), "y": tl.uniform(-2, 2)}
    for seed in range(3):
        study = tl.create_study(space, metric="v", mode="min", seed=seed, searcher="bo")
        for _ in range(25):
            t = study.ask()
            study.tell(t, (t.config["x"] - 0.3) ** 2 + (t.config["y"] + 0.7) ** 2)
        assert study.best.value < 1e-4, (seed, study.best.value)


def test_acquisition_climbs_start_from_the_best_candidate_and_distinct_others():
    searcher = tl.create_study({"x": tl.uniform(0, 1)}, metric="v", mode="min", searcher="bo").searcher
    score = np.log(np.random.default_rng(0).random(300))
    starts = searcher._starts(score, np.random.default_rng(1))
    assert starts[0] == np.argmax(score) and len(set(starts.tolist())) == searcher.n_polish - 1
    flat = np.full(300, -np.inf)
    flat[7] = 0.0  # only one candidate with any EI: nothing else worth climbing from
    assert searcher._starts(flat, np.random.default_rng(1)).tolist() == [7]


def test_a_study_resumed_in_another_run_proposes_what_one_run_would_have(tmp_path):
    """The GP's fit started from the last fit, which a fresh searcher does not have: configurations
    differed from the first trial after the resume."""
    space = {"x": tl.uniform(-1, 1), "y": tl.uniform(-1, 1)}

    def bowl(config):
        return (config["x"] - 0.3) ** 2 + (config["y"] + 0.2) ** 2

    whole = tl.tune(bowl, space, metric="loss", mode="min", searcher="bo", n_trials=16, seed=4, storage=None,
                    progress=False)
    url = f"sqlite:///{tmp_path / 'bo.db'}"
    tl.tune(bowl, space, metric="loss", mode="min", searcher="bo", n_trials=12, seed=4, storage=url, name="b",
            progress=False)
    resumed = tl.tune(bowl, space, metric="loss", mode="min", searcher="bo", n_trials=16, seed=4, storage=url,
                      name="b", progress=False)
    assert [t.config for t in resumed.trials] == [t.config for t in whole.trials]


def test_a_study_resumed_past_max_points_proposes_what_the_one_run_in_one_go_does():
    """Beyond max_points the hyperparameters are refitted only as the data grows by a tenth: a
    resumed study's fresh searcher refitted at once and went another way from trial 24 on."""
    space = {"x": tl.uniform(-5, 5), "y": tl.uniform(-5, 5)}

    def bowl(config):
        return (config["x"] - 1.3) ** 2 + (config["y"] + 2.1) ** 2

    def run(n_trials, study=None):
        return tl.tune(bowl, space, metric="loss", mode="min", searcher="bo", searcher_options={"max_points": 10},
                       n_trials=n_trials, seed=0, progress=False, storage=study and study.storage,
                       name=study and study.name)

    in_one_go = [t.config for t in run(30).trials]
    resumed = run(30, run(23))
    assert [t.config for t in resumed.trials] == in_one_go
    assert [resumed.searcher.refit_point(n) for n in (10, 11, 12, 13, 14, 23)] == [10, 11, 12, 13, 14, 22]
