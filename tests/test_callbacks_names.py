"""Names the loggers must take as they are: two that MLflow would write alike, a study name W&B
refuses as a project name."""

from __future__ import annotations

import json

import pytest

import tunelab as tl

from test_callbacks_loggers import _mlflow


def _alike(config, trial):
    for epoch in (1, 2):
        trial.report(epoch, **{"acc@1": epoch / 2, "acc_1": 10.0 * epoch})
    return {"acc@1": 1.0, "acc_1": 20.0}


def test_mlflow_keeps_two_names_it_would_write_alike_apart(tmp_path, monkeypatch):
    """'acc@1' and 'acc_1' were both logged as 'acc_1': one curve holding both, a result overwritten,
    and the tag tunelab.renamed saying the reported 'acc_1' was 'acc@1'."""
    MLflowCallback, client, uri = _mlflow(tmp_path, monkeypatch)
    study = tl.tune(_alike, {"x": tl.uniform(0, 1)}, metric="acc_1", mode="max", n_trials=1, seed=0, name="alike",
                    callbacks=[MLflowCallback(uri)], progress=False)
    (run,) = client.search_runs([client.get_experiment_by_name("alike").experiment_id])
    renamed = json.loads(run.data.tags["tunelab.renamed"])
    assert renamed == {"acc_1_2": "acc@1"}
    trial = study.trials[0]
    for logged, name in (("acc_1", "acc_1"), ("acc_1_2", "acc@1")):
        history = [m.value for m in client.get_metric_history(run.info.run_id, logged)]
        assert history == [v for _, v in trial.curve(name)] + [trial.metrics[name]]
        assert run.data.metrics[logged] == trial.metrics[name]


def test_wandb_logs_a_study_whose_name_is_no_project_name(tmp_path, monkeypatch):
    """Study names may hold ':' (and be 200 long), W&B project names not: every trial was refused
    ("Invalid project name") and only warned about, so nothing was logged."""
    pytest.importorskip("wandb")
    from test_callbacks import _wandb_records
    from tunelab.tracking.wandb_logger import WandbCallback

    monkeypatch.setenv("WANDB_SILENT", "true")
    name = "resnet:lr@" + "x" * 150
    study = tl.tune(_alike, {"x": tl.uniform(0, 1)}, metric="acc_1", mode="max", n_trials=1, seed=0, name=name,
                    callbacks=[WandbCallback(directory=tmp_path)], progress=False)
    (path,) = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    run = next(r.run for r in _wandb_records(path) if r.WhichOneof("record_type") == "run")
    assert run.project == ("resnet_lr@" + "x" * 150)[:128] and run.run_group == study.name


@pytest.mark.parametrize("project", ["team/project", "a:b", "x" * 129, ""])
def test_wandb_refuses_a_project_name_it_would_refuse_at_every_trial(project):
    pytest.importorskip("wandb")
    from tunelab.tracking.wandb_logger import WandbCallback

    with pytest.raises(tl.ConfigError, match="project must be a W&B project name of 1-128 characters"):
        WandbCallback(project=project)
