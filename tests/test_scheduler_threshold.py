"""Threshold stopping for min and max metrics."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.trial import TrialState

from mf_objectives import SPACE, by_epochs


@pytest.mark.parametrize("metric,mode,threshold", [("loss", "min", 1.0), ("accuracy", "max", 0.0)])
def test_threshold_stops_runs_worse_than_the_bar(metric, mode, threshold):
    # loss at epoch e is x + 1/e: above 1.0 (accuracy below 0.0) until x + 1/e <= 1
    study = tl.tune(by_epochs, SPACE, metric=metric, mode=mode, scheduler="threshold",
                    fidelity=tl.fidelity("epochs", min=1, max=4, resumable=True),
                    scheduler_options={"threshold": threshold, "warmup_steps": 2}, n_trials=2, seed=0,
                    progress=False, enqueue=[{"x": 0.3}, {"x": 0.8}])
    good, bad = study.trials
    assert good.state is TrialState.COMPLETED and len(good.reports) == 4
    assert bad.state is TrialState.PRUNED and bad.reports[-1].step == 2.0  # 0.8 + 1/2 > 1, judged after warm-up


def test_threshold_is_required():
    with pytest.raises(tl.ConfigError, match="threshold"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="threshold")
