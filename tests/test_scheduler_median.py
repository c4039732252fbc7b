"""Median and percentile stopping, for metrics to minimise and to maximise."""

from __future__ import annotations

import warnings

import pytest

import tunelab as tl
from tunelab.trial import TrialState

from mf_objectives import EPOCHS, SPACE, SUBSAMPLE, by_epochs, by_subsample


def run(metric, mode, xs, **options):
    return tl.tune(by_epochs, SPACE, metric=metric, mode=mode, scheduler="median",
                   fidelity=tl.fidelity("epochs", min=1, max=5, resumable=True),
                   scheduler_options={"min_trials": 3, **options}, n_trials=len(xs), seed=0, progress=False,
                   enqueue=[{"x": x} for x in xs])


@pytest.mark.parametrize("metric,mode", [("loss", "min"), ("accuracy", "max")])
def test_median_rule_stops_trials_worse_than_the_median_at_the_same_step(metric, mode):
    study = run(metric, mode, [0.3, 0.5, 0.1, 0.9, 0.2, 0.4])
    states = [t.state for t in study.trials]
    # the first three have too few others to compare with; 0.9 is worse than the median of
    # (0.3, 0.5, 0.1) at step 1; 0.2 is better; 0.4 is worse than the median 0.3 of five others
    assert states[:3] == [TrialState.COMPLETED] * 3
    assert states[3:] == [TrialState.PRUNED, TrialState.COMPLETED, TrialState.PRUNED]
    assert [len(t.reports) for t in study.trials[3:]] == [1, 5, 1]


def test_warmup_steps_delay_the_first_decision():
    study = run("loss", "min", [0.3, 0.5, 0.1, 0.9], warmup_steps=3)
    assert study.trials[3].state is TrialState.PRUNED and study.trials[3].reports[-1].step == 3.0


def test_a_run_that_reached_the_full_budget_is_not_stopped():
    # Judged first at the last step, 0.9 is worse than the median there, but its run is over:
    # stopping it would save nothing and lose a finished result.
    with pytest.warns(tl.SetupWarning, match="none is stopped"):  # nor should it be: warned about
        study = run("loss", "min", [0.3, 0.5, 0.1, 0.9], warmup_steps=5)
    assert study.trials[3].state is TrialState.COMPLETED and study.trials[3].value == pytest.approx(0.9 + 1 / 5)


@pytest.mark.parametrize("scheduler,options", [("median", {}), ("percentile", {}), ("threshold", {"threshold": 0.5}),
                                               ("asha", {"promotion": False})])
def test_stopping_rules_leave_a_fresh_run_fidelity_alone(scheduler, options):
    # A subsample run reports once, at its level, the full one: there is nothing to stop part-way.
    with pytest.warns(UserWarning, match="that reports only once, at its full level .* is never stopped") as caught:
        study = tl.tune(by_subsample, SPACE, metric="loss", mode="min", scheduler=scheduler,
                        scheduler_options=options, fidelity=SUBSAMPLE, n_trials=12, seed=0, progress=False)
    assert study.counts() == {"completed": 12}
    assert [w.filename for w in caught if "never stopped" in str(w.message)] == [__file__]  # once, at the user's call
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said when the study was made, not each time it is loaded (reproduce...)
        tl.load_study(study.name, storage=study.storage)


def test_percentile_keeps_only_the_top_quarter():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="percentile",
                    fidelity=tl.fidelity("epochs", min=1, max=3, resumable=True),
                    scheduler_options={"percentile": 25, "min_trials": 4}, n_trials=6, seed=0, progress=False,
                    enqueue=[{"x": x} for x in [0.1, 0.2, 0.3, 0.4, 0.15, 0.25]])
    assert [t.state.value for t in study.trials] == ["completed"] * 4 + ["completed", "pruned"]


def test_bad_percentile_is_refused():
    with pytest.raises(tl.ConfigError, match="percentile"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="percentile",
                        scheduler_options={"percentile": 120})


@pytest.mark.parametrize("scheduler,options", [("median", {}), ("percentile", {"percentile": 25}),
                                               ("threshold", {"threshold": 0.5})])
def test_a_warm_up_that_lasts_to_the_fidelitys_max_is_warned_about(scheduler, options):
    # warmup_steps=10 on 1..9 epochs: every report comes before the warm-up ends, or at the end of
    # the run (never stopped), so the rule stops nothing; it used to say nothing either.
    with pytest.warns(tl.SetupWarning, match=rf"{scheduler}: warmup_steps=10 reaches the fidelity's max 9 "
                                             r"\(epochs\): no report comes before a run is over, so none is stopped"):
        study = tl.create_study(SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=EPOCHS,
                                scheduler_options={**options, "warmup_steps": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.create_study(SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=EPOCHS,
                        scheduler_options={**options, "warmup_steps": 8})  # a last judgement at 8 of 9
        tl.load_study(study.name, storage=study.storage)  # said when the study was made only
