"""Callbacks: every recorded trial reaches them; a failing one does not stop the study; MLflow."""

from __future__ import annotations

import json
import logging

import pytest

import tunelab as tl
from tunelab.tracking.callbacks import Callback

import lab_objectives as objectives

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
    with pytest.raises(tl.ConfigError, match=r"a callback is a function f\(study, trial\) or has an on_trial_end"):
        tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=1, callbacks=[object()])


class _Counter:
    def __init__(self):
        self.seen = 0

    def on_trial_end(self, study, trial):
        self.seen += 1


@pytest.mark.parametrize("callbacks, message", [
    ([_Counter], r"callback objects, not classes: _Counter\(\) rather than _Counter"),  # each trial failed in it
    (_Counter(), r"callbacks is a list of callback objects"),  # a bare TypeError: not iterable
])
def test_a_callback_class_or_a_callback_outside_a_list_is_refused_saying_what_to_write(callbacks, message):
    with pytest.raises(tl.ConfigError, match=message):
        tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=1, callbacks=callbacks)


def test_a_plain_function_is_a_callback_as_in_optuna(caplog):
    """callbacks=[f] with f(study, trial) was refused: it needed an object with on_trial_end."""
    seen = []

    def stop_after_two(study, trial):
        seen.append((trial.number, trial.state.value))
        if len(seen) == 2:
            study.stop()

    def broken(study, trial):
        raise RuntimeError("dashboard down")

    study = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=5, seed=0, progress=False,
                    callbacks=[stop_after_two, broken])
    assert seen == [(0, "completed"), (1, "completed")] and len(study.trials) == 2
    assert "callback test_a_plain_function_is_a_callback_as_in_optuna.<locals>.broken failed on trial 0: " \
           "dashboard down" in caplog.text


def test_mlflow_runs_hold_params_curves_and_results(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from tunelab.tracking.mlflow_logger import MLflowCallback

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store (MLflow now prefers SQLite)
    uri = (tmp_path / "mlruns").as_uri()
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


def test_mlflow_keeps_one_run_per_trial_through_its_pauses_and_every_fractional_step(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    import mf_objectives
    from tunelab.tracking.mlflow_logger import MLflowCallback

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    study = tl.tune(mf_objectives.by_epochs, mf_objectives.SPACE, metric="loss", mode="min", n_trials=9, seed=0,
                    name="asha", scheduler="asha", scheduler_options={"promotion": True}, fidelity=mf_objectives.EPOCHS,
                    callbacks=[MLflowCallback(uri)], progress=False)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("asha").experiment_id])
    assert sorted(int(r.data.tags["tunelab.trial"]) for r in runs) == [t.number for t in study.trials]  # one each
    status = {"completed": "FINISHED", "pruned": "KILLED"}
    for run in runs:
        trial = study.get_trial(int(run.data.tags["tunelab.trial"]))
        assert run.info.status == status[trial.state.value] and run.data.tags["tunelab.state"] == trial.state.value
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert steps[:len(trial.reports)] == [int(r.step) for r in trial.reports]  # each report once, in order

    def halves(config, trial):
        for step in (0.5, 1.0, 1.5, 2.0):
            trial.report(step, loss=config["x"] * step)
        return config["x"] * 2

    tl.tune(halves, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0, name="halves",
            callbacks=[MLflowCallback(uri)], progress=False)
    (run,) = client.search_runs([client.get_experiment_by_name("halves").experiment_id])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "step")] == [0.5, 1.0, 1.5, 2.0]
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 5  # four reports and the result


def _wandb_records(path):
    """Records of an offline W&B run file: a LevelDB-style log of protobuf records (W&B's format)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, pending, block = path.read_bytes(), 7, b"", 32768  # 7: the file's header
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _items(items):
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def test_wandb_offline_runs_hold_config_history_and_summary(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from tunelab.tracking.wandb_logger import WandbCallback

    monkeypatch.setenv("WANDB_SILENT", "true")
    study = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=2, seed=0, name="wb",
                    callbacks=[WandbCallback(directory=tmp_path)])
    files = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    by_trial = {}
    for path in files:
        records = list(_wandb_records(path))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        history = [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
        summary = {}
        for r in records:
            if r.WhichOneof("record_type") == "summary":
                summary.update(_items(r.summary.update))
        exit_code = next(r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit")
        by_trial[summary["tunelab.trial"]] = (run, history, summary, exit_code)
    for trial in study.trials:
        run, history, summary, exit_code = by_trial[trial.number]
        assert run.display_name == f"trial-{trial.number}" and run.project == "wb" and exit_code == 0
        config = _items(run.config.update)
        assert config["x"] == pytest.approx(trial.config["x"])
        assert [h["_step"] for h in history] == [1, 2, 3]
        assert [h["loss"] for h in history] == pytest.approx([v for _, v in trial.curve("loss")])
        assert summary["result.loss"] == pytest.approx(trial.value) and summary["tunelab.seed"] == trial.seed



def test_wandb_keeps_every_report_at_fractional_steps(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from tunelab.tracking.wandb_logger import WandbCallback

    def halves(config, trial):
        for step in (0.5, 1.0, 1.5, 2.0):
            trial.report(step, loss=config["x"] * step)
        return config["x"] * 2

    monkeypatch.setenv("WANDB_SILENT", "true")
    tl.tune(halves, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0, name="wbh",
            callbacks=[WandbCallback(directory=tmp_path)], progress=False)
    (path,) = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    history = [_items(r.history.item) for r in _wandb_records(path) if r.WhichOneof("record_type") == "history"]
    assert [h["_step"] for h in history] == [1, 2, 3, 4]  # 0.5, 1.0, 1.5, 2.0 rounded onto 0, 1, 2, 2 before
    assert [h["step"] for h in history] == [0.5, 1.0, 1.5, 2.0]