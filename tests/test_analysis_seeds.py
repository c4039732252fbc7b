"""Seed stability and ensembling, on objectives with a known noise level."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl

from tunelab.analysis.seeds import check_seeds, ensemble, ranked_configurations, seed_check, top_gap
from tunelab.errors import ConfigError

import lab_objectives as objectives


def test_a_deterministic_objective_is_stable():
    check = seed_check(objectives.noisy, {"x": 0.5, "noise": 0.0}, seeds=4, metric="loss",
                       ranked_values=[0.0, 0.1, 0.3])
    assert check.values == pytest.approx([0.04] * 4)
    assert check.std == 0.0 and not check.unstable and "stable" in check.verdict()


def test_a_deterministic_objective_is_stable_when_the_top_configurations_tie():
    """A gap of 0 made a std of 0 "UNSTABLE" (0 >= 0)."""
    check = seed_check(objectives.noisy, {"x": 0.5, "noise": 0.0}, seeds=3, metric="loss",
                       ranked_values=[0.9, 0.9, 0.9, 0.8])
    assert check.top_gap == 0.0 and not check.unstable and "UNSTABLE" not in check.verdict()


def test_a_noisy_objective_is_flagged_when_the_noise_exceeds_the_gaps():
    check = seed_check(objectives.noisy, {"x": 0.3, "noise": 0.5}, seeds=8, metric="loss", first_seed=123,
                       ranked_values=[0.0, 0.01, 0.02, 0.03])
    assert check.seeds[0] == 123 and len(set(check.seeds)) == 8
    assert check.values[0] == pytest.approx(np.random.default_rng(123).normal(0, 0.5))
    assert 0.15 < check.std < 1.5  # the noise's standard deviation is 0.5
    assert check.unstable and "UNSTABLE" in check.verdict() and "ensemble" in check.verdict()


def test_ensembling_k_models_divides_the_error_variance_by_about_k():
    check = seed_check(objectives.predictor, {}, seeds=16, metric="loss")
    truth = np.linspace(0.0, 1.0, 50)
    single = np.mean([np.mean((np.array(r.raw["predictions"]) - truth) ** 2) for r in check.runs])
    averaged = np.mean((ensemble(check.runs) - truth) ** 2)
    assert single == pytest.approx(0.04, rel=0.25)  # noise std 0.2
    assert averaged == pytest.approx(single / 16, rel=0.5)


def test_helpers_validate_and_compute_gaps():
    assert top_gap([1.0, 2.0, 4.0, 7.0]) == 1.0 and top_gap([1.0]) is None
    with pytest.raises(ConfigError, match="seeds"):
        check_seeds(1, 0)
    with pytest.raises(ConfigError, match="no 'predictions'"):
        ensemble([{"loss": 1.0}])
    with pytest.raises(ConfigError, match="shape"):
        ensemble([[1, 2], [1, 2, 3]])
    with pytest.raises(ConfigError, match="failed"):
        seed_check(lambda c: 1 / 0, {}, seeds=2)


def test_a_dict_without_a_named_metric_and_a_plain_number_to_ensemble_are_explained():
    calls = []

    def two_metrics(config, trial):
        calls.append(trial.seed)
        return {"accuracy": 0.9, "loss": 0.1}

    with pytest.raises(ConfigError, match="name the metric to read, e.g. metric='loss'"):
        seed_check(two_metrics, {}, seeds=4)
    assert len(calls) == 1  # said after the first run, not after four doomed ones
    check = seed_check(lambda c, trial: float(trial.seed % 7), {}, seeds=3)
    with pytest.raises(ConfigError, match="its metric, and no 'predictions' to ensemble"):
        ensemble(check.runs)  # was the mean of the three metric values


def test_the_verdict_weighs_the_best_configuration_s_lead_and_checks_the_trial_s_own_seed():
    """The best two within 0.0003 under a std of about 0.03 passed as 'stable' against the median
    gap of the top five (swayed by a distant fifth); an objective that ignores its seed went
    unnoticed although its first run, with the trial's own seed, missed the recorded value."""
    ranked = [0.0555, 0.0558, 0.0632, 0.1058, 0.2268]
    check = seed_check(objectives.noisy, {"x": 0.3, "noise": 0.03}, seeds=6, metric="loss", first_seed=7,
                       ranked_values=ranked, recorded=0.5)
    assert check.top_gap == pytest.approx(0.0003) and check.unstable
    assert check.repeats is False and "NOT REPEATABLE: the trial's own seed gave" in check.verdict()
    again = seed_check(objectives.noisy, {"x": 0.3, "noise": 0.03}, seeds=2, metric="loss", first_seed=7,
                       recorded=check.values[0])
    assert again.repeats is True and "NOT REPEATABLE" not in again.verdict()


def test_without_a_lead_to_weigh_the_spread_against_the_verdict_says_what_it_needs():
    """With fewer than two ranked values there was no verdict at all, only the numbers."""
    noisy = seed_check(objectives.noisy, {"x": 0.3, "noise": 0.5}, seeds=3, metric="loss", ranked_values=[0.1])
    assert noisy.top_gap is None and noisy.stable is None and not noisy.unstable
    assert "no verdict: the seed moves loss" in noisy.verdict() and "a lead needs two" in noisy.verdict()
    assert noisy.to_json()["stable"] is None and "a lead needs two" in noisy.to_json()["no_verdict"]
    assert "no ranking of configurations (ranked_values)" in seed_check(
        objectives.noisy, {"x": 0.3, "noise": 0.5}, seeds=3, metric="loss").verdict()
    steady = seed_check(objectives.noisy, {"x": 0.5, "noise": 0.0}, seeds=3, metric="loss", ranked_values=[0.1])
    assert steady.stable is True and "stable: the seed does not move loss at all" in steady.verdict()


def test_the_ranking_a_lead_is_taken_from_holds_each_configuration_once():
    """A configuration tried twice was its own runner-up: the lead was two seeds' difference."""
    study = tl.create_study({"c": tl.choice(["a", "b", "c"])}, metric=["acc", "latency"], mode=["max", "min"])
    for c, acc, latency in (("a", 0.90, 3.0), ("a", 0.89, 2.0), ("b", 0.70, 1.0), ("c", 0.80, 2.5)):
        study.tell(config={"c": c}, value={"acc": acc, "latency": latency})
    assert ranked_configurations(study) == [0.90, 0.80, 0.70]
    assert ranked_configurations(study, "latency", k=2) == [1.0, 2.0]
    assert top_gap(ranked_configurations(study)) == pytest.approx(0.10)


def test_predictions_that_cannot_be_averaged_are_explained():
    """Text labels and ragged rows ended in numpy's own ValueError, which named no run or key."""
    for runs in ([{"predictions": ["cat", "dog"]}] * 2, [{"predictions": [[0.1, 0.9], [0.5]]}] * 2):
        with pytest.raises(ConfigError, match="'predictions' of a run must be numbers of one shape"):
            ensemble(runs)
