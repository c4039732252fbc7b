"""What every rung scheduler shares: with ``forecast=True`` a rung ranks trials by where their
learning curves are forecast to end, so a slow starter that ends best is not pruned."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.schedulers.rungs import FORECAST_POINTS, FORECAST_PRIOR_PAIRS, forecast_weight
from tunelab.schedulers.curve_models import predict
from tunelab.trial import TrialState

from mf_objectives import SPACE, late_bloomer, late_blooming, train_by_epochs

LONG = tl.fidelity("epochs", min=9, max=81, resumable=True)  # rungs at 9, 27 and 81 epochs
#: at 9 epochs 0.1 is the worst of these; at 81 it is the best by far
XS = [0.9, 0.8, 0.7, 0.1, 0.95, 0.85]


def furthest(study, x):
    trial = next(t for t in study.trials if t.config["x"] == x)
    return trial.reports[-1].step


@pytest.mark.parametrize("scheduler,options", [("asha", {"promotion": False}), ("asha", {}), ("sh", {"n": 6})])
@pytest.mark.parametrize("metric,mode", [("loss", "min"), ("accuracy", "max")])
@pytest.mark.parametrize("forecast", [False, True])
def test_a_forecast_keeps_the_slow_starter_that_ends_best(scheduler, options, metric, mode, forecast):
    # ASHA in promotion mode keeps three rungs only for a study of eta**2 trials or more (with
    # fewer it drops the lowest, where no run could climb to the top): three random ones more.
    extra = 3 if scheduler == "asha" and options.get("promotion", True) else 0
    study = tl.tune(late_blooming, SPACE, metric=metric, mode=mode, fidelity=LONG, scheduler=scheduler,
                    scheduler_options={**options, "forecast": forecast}, searcher="random",
                    enqueue=[{"x": x} for x in XS], n_trials=len(XS) + extra, seed=0, progress=False)
    assert [t.config["x"] for t in study.trials[:len(XS)]] == XS
    if not forecast:  # ranked on its value at 9 epochs, it is cut there
        assert furthest(study, 0.1) == 9.0
        return
    assert furthest(study, 0.1) > 9.0
    if scheduler == "sh":  # the bracket runs one configuration to the end: the right one
        (finished,) = [t for t in study.trials if t.reports[-1].step == 81.0]
        assert finished.config["x"] == 0.1 and finished.state is TrialState.COMPLETED
        assert finished.metrics["loss"] == pytest.approx(late_bloomer({"x": 0.1}, 81))


def test_the_forecast_needs_enough_reports_and_is_close_to_the_final_value():
    study = tl.tune(late_blooming, SPACE, metric="loss", mode="min",
                    fidelity=tl.fidelity("epochs", min=1, max=81, resumable=True), scheduler="asha",
                    scheduler_options={"promotion": False, "forecast": True}, enqueue=[{"x": 0.1}],
                    n_trials=1, seed=0, progress=False)
    (trial,) = study.trials
    few, enough, top = study.scheduler.table(study.trials, [FORECAST_POINTS - 1.0, 9.0, 81.0])
    final = late_bloomer(trial.config, 81)
    assert few[trial.id] == late_bloomer(trial.config, FORECAST_POINTS - 1)  # too few points: its own value
    assert late_bloomer(trial.config, 9) - enough[trial.id] > 0.4  # far below where the run stands at 9 ...
    assert enough[trial.id] == pytest.approx(final, abs=0.02)  # ... and close to where it ends
    assert top[trial.id] == final


def test_forecast_is_an_option_of_every_rung_scheduler():
    for scheduler in ("asha", "sh", "hyperband", "bohb"):
        study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=LONG, scheduler=scheduler,
                                scheduler_options={"forecast": True})
        assert study.scheduler.forecast and study.scheduler.options()["forecast"] is True
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=LONG, scheduler="hyperband",
                            scheduler_options={"forecast": True, "asynchronous": True})
    assert study.scheduler._async.forecast  # the asynchronous variant hands its rungs to ASHA
    with pytest.raises(tl.ConfigError, match="forecast must be True or False; got 'yes'"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=LONG, scheduler="asha",
                        scheduler_options={"forecast": "yes"})


def _rows(pairs):
    """Table rows of trials that went from rung 0 to rung 1: (forecast change, actual change)."""
    return [(i, [(0, 1.0, forecast, forecast), (1, 1.0 + actual, float("nan"), 0.0)])
            for i, (forecast, actual) in enumerate(pairs)]


def test_the_forecast_counts_as_much_as_it_has_come_true():
    assert forecast_weight([]) == 1.0  # nothing checked yet: believed in full
    assert forecast_weight(_rows([(-0.2, -0.2), (-0.1, -0.1)] * 10)) == pytest.approx(1.0)
    # Half of every forecast change came true: the weight tends to 1/2, from above (the prior).
    halves = [forecast_weight(_rows([(-0.2, -0.1)] * n)) for n in (6, 60, 600)]
    assert halves == pytest.approx([(0.5 * n + FORECAST_PRIOR_PAIRS) / (n + FORECAST_PRIOR_PAIRS)
                                    for n in (6, 60, 600)])
    assert forecast_weight(_rows([(-0.2, 0.05)] * 60)) == 0.0  # forecasts worse than none: rank by values
    assert forecast_weight(_rows([(0.0, -0.1)] * 5)) == 1.0  # nothing was forecast to change


def stalling(config, epoch):
    """Falls in a straight line for 9 epochs, then stops dead: every fit at 9 epochs forecasts a
    further fall that never comes."""
    return 0.3 + 0.4 * config["x"] + 0.3 * max(0.0, 9 - epoch) / 9


def stalls(config, trial):
    return train_by_epochs(stalling, config, trial)


def test_a_forecast_that_does_not_come_true_loses_its_weight():
    study = tl.tune(stalls, SPACE, metric="loss", mode="min", fidelity=LONG, scheduler="asha",
                    scheduler_options={"promotion": False, "forecast": True}, searcher="random",
                    n_trials=30, seed=0, progress=False)
    epochs = list(range(1, 10))
    for trial in study.trials:  # every fit at 9 epochs forecasts a further fall ...
        raw = stalling(trial.config, 9)
        promised = predict(epochs, [stalling(trial.config, e) for e in epochs], 81).mean - raw
        assert promised < -0.05
        # ... the runs that went on did not fall, and the rung stops believing it
        at_9 = study.scheduler.rung_scores(study.trials, 9.0)[trial.id]
        assert raw + 0.5 * promised < at_9 <= raw


@pytest.mark.parametrize("scheduler", ["asha", "sh", "hyperband", "bohb"])
@pytest.mark.parametrize("eta", [float("inf"), float("nan"), 1, "3"])
def test_eta_must_be_a_finite_number_above_one(scheduler, eta):
    """An infinite eta was taken (with a warning that one rung was left)."""
    with pytest.raises(tl.ConfigError, match=rf"{scheduler}: eta must be a finite number > 1; got "):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler=scheduler,
                        scheduler_options={"eta": eta}, fidelity=tl.fidelity("epochs", min=1, max=9))
