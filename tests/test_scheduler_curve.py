"""Learning-curve extrapolation: fits on known curves, and stopping for min and max metrics."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl
from tunelab.schedulers.curve_models import predict, predict_path
from tunelab.trial import TrialState


@pytest.mark.parametrize("curve", [
    lambda x: 0.9 - 0.5 * x ** -0.7,          # a power law (accuracy rising)
    lambda x: 0.2 + 1.5 * np.exp(-0.3 * x),   # an exponential decay (loss falling)
    lambda x: 0.1 + 2.0 / np.log(x + 1.0),    # a slow logarithmic decay
])
def test_known_curves_are_extrapolated_from_their_first_tenth(curve):
    steps = np.arange(1, 11, dtype=float)
    prediction = predict(steps, curve(steps), 100)
    assert prediction is not None
    assert prediction.mean == pytest.approx(float(curve(np.float64(100))), abs=0.01)
    assert prediction.std < 0.05


def test_one_fit_predicts_a_whole_path():
    steps = np.arange(1, 11, dtype=float)
    values = 0.9 - 0.5 * steps ** -0.7
    path = predict_path(steps, values, [30, 100])
    assert [p.mean for p in path] == pytest.approx([0.9 - 0.5 * 30 ** -0.7, 0.9 - 0.5 * 100 ** -0.7], abs=0.01)
    assert path[0].std < path[1].std  # the further out, the less certain
    assert path[1].mean == predict(steps, values, 100).mean
    assert predict_path(steps[:2], values[:2], [30]) is None and predict_path(steps, values, []) is None


def test_noisy_curve_prediction_is_honest_about_its_uncertainty():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 9, dtype=float)
    values = 0.5 + 1.0 / steps + rng.normal(0, 0.05, len(steps))
    prediction = predict(steps, values, 100)
    assert abs(prediction.mean - 0.51) < 3 * prediction.std


SPACE = {"rate": tl.uniform(0.1, 1.0), "floor": tl.uniform(0.0, 1.0)}


def learning(config, trial):
    """Loss falls from 2 towards config['floor'] at config['rate']; the final loss is near the floor."""
    loss = None
    for epoch in range(1, 41):
        loss = config["floor"] + 2.0 * np.exp(-config["rate"] * epoch)
        trial.report(epoch, loss=loss, score=-loss)
    return {"loss": loss, "score": -loss}


@pytest.mark.parametrize("metric,mode", [("loss", "min"), ("score", "max")])
def test_curve_scheduler_stops_runs_that_cannot_catch_up(metric, mode):
    configs = [{"rate": 0.5, "floor": 0.1}, {"rate": 0.5, "floor": 0.8}, {"rate": 0.2, "floor": 0.05},
               {"rate": 0.6, "floor": 0.6}]
    study = tl.tune(learning, SPACE, metric=metric, mode=mode, scheduler="curve",
                    fidelity=tl.fidelity("epochs", min=1, max=40, resumable=True),
                    n_trials=4, seed=0, progress=False, enqueue=configs)
    states = [t.state for t in study.trials]
    assert states[0] is TrialState.COMPLETED
    assert states[1] is TrialState.PRUNED and len(study.trials[1].reports) < 10  # its floor is 0.8
    assert states[2] is TrialState.COMPLETED  # slow, but ends lower: it must be let through
    assert states[3] is TrialState.PRUNED


def test_curve_needs_the_final_step():
    with pytest.raises(tl.ConfigError, match="final step"):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="curve")


def test_no_run_is_judged_on_the_first_tenth_of_its_budget():
    # On power-law curves the first few epochs fit a saturating family that levels off too
    # early, so a decision at 4 reports stopped the runs that end best (min_fraction=0).
    from tunelab.benchmarks.simulator import simulate
    from tunelab.benchmarks.synthetic import PowerLawTask

    task = PowerLawTask()

    def wrongly_stopped(min_fraction: float, seed: int) -> int:
        result = simulate(task, searcher="random", scheduler="curve", scheduler_options={"min_fraction": min_fraction},
                          n_trials=60, seed=seed)
        trials = result.study.trials
        assert all(len(t.reports) >= 9 for t in trials if t.state is TrialState.PRUNED) or min_fraction == 0
        best = min(task.final(t.config) for t in trials if t.state is TrialState.COMPLETED)
        return sum(task.final(t.config) < best for t in trials if t.state is TrialState.PRUNED)

    assert [wrongly_stopped(0.1, seed) for seed in (0, 1)] == [0, 0]
    assert sum(wrongly_stopped(0.0, seed) for seed in (0, 1)) > 0
    with pytest.raises(tl.ConfigError, match="min_fraction"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="curve", scheduler_options={"min_fraction": 1.0},
                        fidelity=tl.fidelity("epochs", min=1, max=40))


def test_a_run_that_reports_every_iteration_is_still_judged_after_ten_thousand_reports():
    # Judged only at report counts that grow geometrically; past the ten-thousandth report no
    # count was one, so a run reporting each of 100000 iterations (judged from the 10000th,
    # a tenth of the way) was never stopped, however hopeless.
    from tunelab.trial import Decision

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="curve",
                            fidelity=tl.fidelity("iterations", min=1, max=100_000, resumable=True), seed=0)
    best = study.ask()
    for step in (1, 10, 100, 1000, 10_000, 100_000):
        best.report(step, loss=0.1 + 1 / step)
    study.tell(best)
    hopeless = study.ask()
    for step in range(1, 14_001):
        if hopeless.report(step, loss=5.0 + 1 / step) is not Decision.CONTINUE:
            break
    study.tell(hopeless)
    assert study.trials[1].state is TrialState.PRUNED and 10_000 < step < 14_000
