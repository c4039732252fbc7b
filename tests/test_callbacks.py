"""Callbacks: every recorded trial reaches them; a failing one does not stop the study; MLflow."""

from __future__ import annotations

import logging

import pytest

import tunelab as tl
from tunelab.tracking.callbacks import Callback

import objectives

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}


class Collect(Callback):
    def __init__(self):
        self.seen, self.closed = [], False

    def on_trial_end(self, study, trial):
        self.seen.append((trial.number, trial.state.value, len(trial.reports)))

    def close(self):
        self.closed = True


class Broken(Callback):
    def on_trial_end(self, study, trial):
        raise RuntimeError("tracking server down")


def test_every_trial_reaches_the_callbacks_and_a_broken_one_only_warns(caplog):
    collect = Collect()
    with caplog.at_level(logging.WARNING, logger="tunelab"):
        study = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=4, seed=0,
                        callbacks=[Broken(), collect])
    assert collect.seen == [(t.number, "completed", 3) for t in study.trials] and collect.closed
    assert caplog.text.count("tracking server down") == 4


def test_a_callback_must_have_the_hook():
    with pytest.raises(tl.ConfigError, match="on_trial_end"):
        tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=1, callbacks=[object()])


def test_mlflow_runs_hold_params_curves_and_results(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from tunelab.tracking.mlflow_logger import MLflowCallback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=3, seed=0, name="mlf",
                    callbacks=[MLflowCallback(uri)])
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("mlf")
    runs = {r.data.tags["tunelab.trial"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"0", "1", "2"}
    for trial in study.trials:
        run = runs[str(trial.number)]
        assert run.info.status == "FINISHED" and run.info.run_name == f"trial-{trial.number}"
        assert run.data.params == {k: str(v) for k, v in trial.config.items()}
        assert run.data.metrics["loss"] == pytest.approx(trial.value)
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in history][:3] == [1, 2, 3] and len(history) == 4
        assert run.data.tags["tunelab.seed"] == str(trial.seed)
