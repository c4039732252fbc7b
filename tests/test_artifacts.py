"""Per-trial records: captured output, artefact files, worker host and environment."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.executors.base import run_objective
from tunelab.trial import ReportSink, TrialSpec

import lab_objectives as objectives

SPACE = {"x": tl.uniform(0.0, 1.0)}


def test_worker_processes_capture_output_and_files_beside_the_database(tmp_path):
    study = tl.tune(objectives.chatty, SPACE, metric="loss", mode="min", n_trials=3, workers=2,
                    storage=f"sqlite:///{tmp_path / 'lab.db'}", name="chat", seed=0)
    assert study.folder == tmp_path / "tunelab-artifacts" / "chat"
    for trial in study.trials:
        folder = tmp_path / "tunelab-artifacts" / "chat" / str(trial.number)
        assert study.trial_dir(trial.number) == folder
        out = (folder / "stdout.txt").read_text()
        assert f"stdout of trial {trial.number}" in out
        assert f"child process of trial {trial.number}" in out  # captured at the descriptor level
        assert (folder / "stderr.txt").read_text() == f"stderr of trial {trial.number}\n"
        assert (folder / "model" / "weights.txt").read_text() == f"x={trial.config['x']}"
        assert trial.system_attrs["worker"]["host"] == socket.gethostname()
        assert "environment" not in trial.system_attrs["worker"]  # same environment as the study
        assert trial.system_attrs["worker"]["environment_fingerprint"] == study.environment["fingerprint"]


def test_inline_trials_tee_their_output_and_artifact_dir_is_configurable(tmp_path, capsys):
    study = tl.tune(objectives.chatty, SPACE, metric="loss", mode="min", n_trials=2, storage=None,
                    name="inline", seed=0, artifact_dir=tmp_path / "files")
    assert study.record.settings["artifact_dir"] == str(tmp_path / "files")
    assert (tmp_path / "files" / "inline" / "1" / "stdout.txt").read_text() == "stdout of trial 1\n"
    assert "stdout of trial 1" in capsys.readouterr().out  # the user still sees it


def test_a_silent_trial_leaves_no_empty_logs(tmp_path):
    study = tl.tune(objectives.quadratic, {"x": tl.uniform(0, 1), "y": 0.5}, metric="loss", mode="min",
                    n_trials=1, storage=None, name="quiet", seed=0, artifact_dir=tmp_path)
    assert study.trial_dir(0).is_dir() and not list(study.trial_dir(0).iterdir())


def test_memory_studies_get_a_temporary_folder():
    study = tl.create_study(SPACE, metric="loss", mode="min")
    trial = study.ask()
    path = trial.artifact_path("a/b.txt")
    assert path.parent.is_dir() and str(path).startswith(str(study.folder))
    assert path == study.trial_dir(trial.number) / "a" / "b.txt"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "", "a/../../b"])
def test_artifact_names_must_stay_inside_the_trial_folder(name):
    trial = tl.create_study(SPACE, metric="loss", mode="min").ask()
    with pytest.raises(ConfigError, match="artefact name"):
        trial.artifact_path(name)


def test_artifact_dir_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        tl.create_study(SPACE, metric="loss", mode="min", artifact_dir=tmp_path / "file")


def test_a_worker_in_another_environment_records_it(tmp_path):
    study = tl.create_study(SPACE, metric="loss", mode="min", artifact_dir=tmp_path)
    trial = study.ask()
    same = study.spec(study.get_trial(trial.number))
    outcome = run_objective(objectives.chatty, same, ReportSink(), ["loss"])
    assert "environment" not in outcome.worker
    other = TrialSpec(**{**same.__dict__, "environment": {**same.environment, "fingerprint": "recorded-elsewhere"}})
    outcome = run_objective(objectives.chatty, other, ReportSink(), ["loss"])
    worker_env = outcome.worker["environment"]
    assert worker_env["fingerprint"] == outcome.worker["environment_fingerprint"] != "recorded-elsewhere"
    assert set(worker_env["packages"]) <= set(same.environment["packages"])
    assert Path(same.artifact_dir, "stdout.txt").read_text().count("stdout of trial 0") == 2


def test_a_worker_without_standard_descriptors_still_keeps_what_python_prints(tmp_path):
    """Run a capture in a child whose stdout/stderr descriptors are closed."""
    import subprocess
    import sys

    code = ("import os, sys\n"
            "os.close(1); os.close(2)\n"
            "from tunelab.tracking.artifacts import capture_output\n"
            f"with capture_output({str(tmp_path)!r}, whole_process=True):\n"
            "    print('kept', file=sys.stderr); print('kept too')\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(root)}, timeout=60)
    assert done.returncode == 0
    assert (tmp_path / "stdout.txt").read_text() == "kept too\n" and (tmp_path / "stderr.txt").read_text() == "kept\n"


def test_trials_printing_on_threads_side_by_side_keep_their_own_logs_and_leave_stdout_as_it_was(tmp_path):
    """Two trials on threads of one process (as on Dask's threads), the first to start ending
    first: the second's output still reaches its log, and sys.stdout is the console again after."""
    import sys
    import threading

    from tunelab.tracking.artifacts import capture_output

    console = sys.stdout
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with capture_output(tmp_path / "a", whole_process=False):
            print("from a")
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with capture_output(tmp_path / "b", whole_process=False):
            second_in.set()
            first_out.wait(5)
            print("from b")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert (tmp_path / "a" / "stdout.txt").read_text() == "from a\n"
    assert (tmp_path / "b" / "stdout.txt").read_text() == "from b\n"
    assert sys.stdout is console
    print("the console still works")  # raised "I/O operation on closed file"
