"""MLflow and W&B runs that must hold what the study holds: names MLflow refuses, two studies in
one experiment, a trial paused at a rung and resumed."""

from __future__ import annotations

import json

import pytest

import tunelab as tl

import mf_objectives
from test_callbacks import _items, _wandb_records


def _mlflow(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from tunelab.tracking.mlflow_logger import MLflowCallback

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    return MLflowCallback, MlflowClient(tracking_uri=uri), uri


def _curves(config, trial):
    for epoch in (1, 2):
        trial.report(epoch, **{"val loss": config["x"] + 1 / epoch, "acc@1": epoch / 2})
    return {"val loss": config["x"] + 0.5, "acc@1": 1.0}


def _plain(config, trial):
    for epoch in (1, 2):
        trial.report(epoch, loss=config["x"] + 1 / epoch)
    return config["x"] + 0.5


def test_mlflow_logs_names_it_refuses_under_names_it_takes(tmp_path, monkeypatch):
    """MLflow refused 'acc@1' or a parameter 'x (y)': each run was left RUNNING, empty."""
    MLflowCallback, client, uri = _mlflow(tmp_path, monkeypatch)
    space = {"x": tl.uniform(0, 1), "opt, with comma": tl.choice(["a,b", "c"])}
    study = tl.tune(_curves, space, metric="val loss", mode="min", n_trials=2, seed=0,
                    name="names", callbacks=[MLflowCallback(uri)], progress=False)
    runs = client.search_runs([client.get_experiment_by_name("names").experiment_id])
    assert len(runs) == 2
    for run in runs:
        trial = study.get_trial(int(run.data.tags["tunelab.trial"]))
        assert run.info.status == "FINISHED"
        assert run.data.params == {"x": str(trial.config["x"]), "opt_ with comma": trial.config["opt, with comma"]}
        assert run.data.metrics == {"val loss": pytest.approx(trial.value), "acc_1": 1.0}
        assert [m.value for m in client.get_metric_history(run.info.run_id, "acc_1")] == [0.5, 1.0, 1.0]
        assert json.loads(run.data.tags["tunelab.renamed"]) == {"opt_ with comma": "opt, with comma",
                                                                "acc_1": "acc@1"}


def test_mlflow_keeps_two_studies_in_one_experiment_apart(tmp_path, monkeypatch):
    """One callback for two studies logging to one experiment: the second study's trials went
    into the first one's runs (their reports dropped as already logged, their params not logged)."""
    MLflowCallback, client, uri = _mlflow(tmp_path, monkeypatch)
    callback = MLflowCallback(uri, experiment="shared")
    studies = [tl.tune(_plain, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, seed=seed,
                       name=name, callbacks=[callback], progress=False) for seed, name in ((0, "a"), (1, "b"))]
    # the same name again (a study deleted and made anew, another database): runs of its own too
    studies.append(tl.tune(_plain, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, seed=2,
                           name="a", callbacks=[MLflowCallback(uri, experiment="shared")], progress=False))
    runs = client.search_runs([client.get_experiment_by_name("shared").experiment_id])
    assert len(runs) == 6
    logged = sorted((r.data.tags["tunelab.study"], float(r.data.params["x"]), r.data.metrics["loss"],
                     len(client.get_metric_history(r.info.run_id, "loss"))) for r in runs)
    assert logged == sorted((s.name, t.config["x"], pytest.approx(t.value), 3) for s in studies for t in s.trials)


def _wandb_runs(folder):
    """Each offline run file's run id, history steps, exit code and last state, in start order."""
    out = []
    for path in sorted((folder / "wandb").glob("offline-run-*/run-*.wandb")):
        records = list(_wandb_records(path))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        steps = [_items(r.history.item)["_step"] for r in records if r.WhichOneof("record_type") == "history"]
        exit_code = next(r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit")
        summary = {}
        for r in records:
            if r.WhichOneof("record_type") == "summary":
                summary.update(_items(r.summary.update))
        out.append((run.run_id, summary["tunelab.trial"], steps, exit_code, summary["tunelab.state"]))
    return out


def test_wandb_keeps_one_run_per_trial_through_its_pauses(tmp_path, monkeypatch):
    """A trial paused at a rung was a run that failed (exit code 1), and each resume a new run that
    logged the curve again from its first step: 21 runs for 9 trials."""
    pytest.importorskip("wandb")
    from tunelab.tracking.wandb_logger import WandbCallback

    monkeypatch.setenv("WANDB_SILENT", "true")
    study = tl.tune(mf_objectives.by_epochs, mf_objectives.SPACE, metric="loss", mode="min", n_trials=9, seed=0,
                    name="wbasha", scheduler="asha", scheduler_options={"promotion": True},
                    fidelity=mf_objectives.EPOCHS, callbacks=[WandbCallback(directory=tmp_path)], progress=False)
    fragments = _wandb_runs(tmp_path)
    assert any(state == "paused" for *_, state in fragments)  # the case at hand: some stretches ended paused
    ids = {}
    for run_id, number, steps, exit_code, _ in fragments:
        assert ids.setdefault(number, run_id) == run_id and exit_code == 0
    assert sorted(ids) == [t.number for t in study.trials] and len(set(ids.values())) == len(study.trials)
    for trial in study.trials:  # each report logged once, in order, over the trial's stretches
        steps = [s for run_id, number, steps, *_ in fragments if number == trial.number for s in steps]
        assert steps == [int(r.step) for r in trial.reports]


def test_wandb_refuses_init_options_it_sets_itself():
    """group= or tags= went to wandb.init beside the callback's own: every trial failed, nothing logged."""
    pytest.importorskip("wandb")
    from tunelab.tracking.wandb_logger import WandbCallback

    with pytest.raises(tl.ConfigError, match="sets group, tags of each run itself"):
        WandbCallback(group="g", tags=["t"])
