"""Worker processes share out the machine's GPUs (``executor_options={"gpus": [...]}``): each
worker sees its own through CUDA_VISIBLE_DEVICES, from before the objective's module is imported,
and a trial records which it had. The objectives live here, at module level, so that the worker
processes import this file (and read the variable as they do)."""

from __future__ import annotations

import os

import pytest

import tunelab as tl
from tunelab.executors.processes import GPUS_ATTR, ProcessExecutor, check_gpus

SPACE = {"x": tl.uniform(0.0, 1.0)}
#: what a worker process saw when it imported this module, before it ran any trial
SEEN_AT_IMPORT = os.environ.get("CUDA_VISIBLE_DEVICES")


def note_gpus(config, trial):
    trial.set_user_attr("seen", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_user_attr("seen_at_import", SEEN_AT_IMPORT)
    return config["x"]


def die_first(config, trial):
    if trial.number == 0:
        os._exit(3)
    return note_gpus(config, trial)


def _tune(objective, tmp_path, workers, gpus, n_trials=4, **options):
    return tl.tune(objective, SPACE, metric="loss", mode="min", n_trials=n_trials, seed=0, workers=workers,
                   executor="processes", executor_options={"gpus": gpus}, searcher="random",
                   storage=f"sqlite:///{tmp_path / 'gpus.db'}", progress=False, **options)


def test_each_worker_sees_its_own_gpu_from_the_start_and_each_trial_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    study = _tune(note_gpus, tmp_path, workers=2, gpus=[2, "3"])
    seen = [(t.user_attrs["seen"], t.user_attrs["seen_at_import"], t.user_attrs[GPUS_ATTR]) for t in study.trials]
    assert all(a == b == c for a, b, c in seen), seen
    assert {a for a, _, _ in seen} == {"2", "3"}


def test_no_gpus_hides_them_all_and_none_leaves_the_workers_what_the_tuner_sees(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    hidden = _tune(note_gpus, tmp_path, workers=2, gpus=[], n_trials=2)
    assert {t.user_attrs["seen_at_import"] for t in hidden.trials} == {""}
    tl.delete_study(hidden.name, storage=f"sqlite:///{tmp_path / 'gpus.db'}")
    inherited = _tune(note_gpus, tmp_path, workers=2, gpus=None, n_trials=2)
    assert {t.user_attrs["seen"] for t in inherited.trials} == {"5"}
    assert all(GPUS_ATTR not in t.user_attrs for t in inherited.trials)


def test_a_worker_started_in_place_of_a_dead_one_keeps_its_gpu(tmp_path):
    study = _tune(die_first, tmp_path, workers=1, gpus="7", n_trials=3, max_retries=0)
    assert study.trials[0].state.value == "failed"
    assert [t.user_attrs["seen_at_import"] for t in study.trials[1:]] == ["7", "7"]


@pytest.mark.parametrize("gpus", [[-1], ["0 1"], True, 1.5, "0,,1", [None], {"a": 0}, [0.0]])
def test_gpus_that_name_none_are_refused_with_what_is_allowed(gpus):
    with pytest.raises(tl.ConfigError, match=r"gpus must be a list of GPU numbers or UUIDs"):
        ProcessExecutor(workers=2, gpus=gpus)


def test_gpus_are_taken_as_numbers_uuids_or_a_comma_list():
    assert check_gpus("0, 1") == ["0", "1"]
    assert check_gpus((1, "GPU-5a1c")) == ["1", "GPU-5a1c"]
    assert check_gpus([]) == [] and check_gpus(None) is None


def test_tunelab_worker_shares_out_the_gpus_it_is_given(tmp_path, capsys):
    from tunelab.cli import main

    url = f"sqlite:///{tmp_path / 'gpus.db'}"
    tl.create_study(SPACE, metric="loss", mode="min", name="shared", storage=url, seed=0, n_trials=4)
    common = ["worker", "--study", "shared", "--objective", f"{__name__}:note_gpus", "--storage", url, "--quiet"]
    assert main(common + ["--gpus", "0"]) == 2  # one trial at a time runs in this process: nothing to share out
    assert "--gpus shares GPUs out to local worker processes" in capsys.readouterr().err
    assert main(common + ["--workers", "2", "--gpus", "4,5"]) == 0
    study = tl.load_study("shared", storage=url)
    assert {t.user_attrs["seen_at_import"] for t in study.trials} == {"4", "5"}
    assert main(common + ["--workers", "2", "--gpus", "a b"]) != 0
    assert "gpus must be a list of GPU numbers or UUIDs" in capsys.readouterr().err


def use_the_gpu(config, trial):
    import torch

    trial.set_user_attr("count", torch.cuda.device_count())
    if torch.cuda.is_available():
        trial.set_user_attr("sum", float(torch.ones(3, device="cuda").sum()))
    return config["x"]


def test_worker_processes_train_on_the_gpu_they_were_given(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    study = _tune(use_the_gpu, tmp_path, workers=2, gpus=[0, 0])
    assert {(t.user_attrs["count"], t.user_attrs["sum"]) for t in study.trials} == {(1, 3.0)}
    tl.delete_study(study.name, storage=f"sqlite:///{tmp_path / 'gpus.db'}")
    hidden = _tune(use_the_gpu, tmp_path, workers=2, gpus=[])
    assert {t.user_attrs["count"] for t in hidden.trials} == {0}


def test_tunelab_run_shares_out_the_gpus_of_its_study_file(tmp_path):
    """The first trial runs alone in the tuner's process (a check of the script), with every GPU;
    the worker processes after it each see the one they were given."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    (tmp_path / "train.py").write_text('import json, os\nprint(json.dumps({"gpu": float(os.environ["CUDA_VISIBLE_DEVICES"]'
                                       '.split(",")[0])}))\n')
    (tmp_path / "study.yaml").write_text(textwrap.dedent("""\
        name: gpus
        command: "{python} train.py {x}"
        metric: gpu
        mode: min
        space: {x: {uniform: [0, 1]}}
        n_trials: 5
        workers: 2
        gpus: [4, 5]
        """))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "CUDA_VISIBLE_DEVICES": "9"}
    env.pop("TUNELAB_STORAGE", None)
    run = subprocess.run([sys.executable, "-m", "tunelab.cli", "run", "study.yaml", "--storage", "sqlite:///g.db"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    study = tl.load_study("gpus", storage=f"sqlite:///{tmp_path / 'g.db'}")
    values = [t.value for t in study.trials]
    assert values[0] == 9.0 and set(values[1:]) == {4.0, 5.0}, values
    bad = subprocess.run([sys.executable, "-m", "tunelab.cli", "run", "study.yaml", "--set", "gpus=[x y]"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "gpus must be a list of GPU numbers or UUIDs" in bad.stderr, bad.stderr
