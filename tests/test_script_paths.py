"""Where relative paths of a study point (tunelab.script.paths), pinned: written in the study
file, from the file's folder; typed on the command line, from the current folder; the command's
own paths and result_file, from workdir."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tunelab as tl
from tunelab.script.paths import absolute_storage
from tunelab.script.studyfile import load_study_file

TREE = Path(__file__).resolve().parents[1]

STUDY = """\
name: paths
command: "{python} train.py --x {x}"
metric: loss
mode: min
space: {x: {uniform: [0, 1]}}
n_trials: 2
seed: 0
workdir: src
storage: sqlite:///runs.db
artifacts: logs
result_file: out/result.json
"""

#: Writes its result where result_file says, relative to its own working folder (workdir).
TRAIN = """\
import json, os, sys
os.makedirs("out", exist_ok=True)
json.dump({"loss": float(sys.argv[2])}, open("out/result.json", "w"))
"""


def project(tmp_path: Path) -> Path:
    """tmp_path/project/study.yaml with its script in project/src; tests start from tmp_path."""
    (tmp_path / "project" / "src").mkdir(parents=True)
    (tmp_path / "project" / "src" / "train.py").write_text(TRAIN)
    (tmp_path / "project" / "study.yaml").write_text(textwrap.dedent(STUDY))
    return tmp_path / "project"


def test_paths_in_the_file_start_from_its_folder_not_the_current_one(tmp_path, monkeypatch):
    folder = project(tmp_path)
    monkeypatch.chdir(tmp_path)
    study = load_study_file("project/study.yaml")
    assert study.workdir == (folder / "src").resolve()
    assert study.storage == f"sqlite:///{folder / 'runs.db'}"
    assert study.artifacts == folder / "logs"
    assert study.result_file.render_one({}) == "out/result.json"  # the script's business: joined with workdir


def test_paths_on_the_command_line_start_from_the_current_folder_and_are_recorded_absolute(tmp_path, monkeypatch):
    folder = project(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    overrides = ["workdir=elsewhere", ("--storage sqlite:///cli.db", "storage=sqlite:///cli.db"), "artifacts=out"]
    study = load_study_file("project/study.yaml", overrides)
    assert study.workdir == (tmp_path / "elsewhere").resolve()
    assert study.storage == f"sqlite:///{tmp_path / 'cli.db'}" and study.artifacts == tmp_path / "out"
    assert study.overrides[0] == ("--set workdir=elsewhere", f"workdir={(tmp_path / 'elsewhere').resolve()}")
    monkeypatch.chdir(folder)  # a re-run (tunelab reproduce) from another folder: the same places
    again = load_study_file(folder / "study.yaml", study.overrides)
    assert (again.workdir, again.storage, again.artifacts) == (study.workdir, study.storage, study.artifacts)
    with pytest.raises(tl.ConfigError, match="nowhere is not a folder .a relative workdir starts from the current"):
        load_study_file("study.yaml", ["workdir=nowhere"])


def test_storage_urls_other_than_a_relative_sqlite_file_are_left_as_they_are(tmp_path):
    for url in ("sqlite:////abs/x.db", "sqlite:///~/x.db", "memory", "postgresql://u@h/db", "sqlite:///:memory:"):
        assert absolute_storage(url, tmp_path) == url
    relative = absolute_storage("sqlite:///../x.db?timeout=30", tmp_path / "a")
    assert relative == f"sqlite:///{tmp_path / 'x.db'}?timeout=30"


def test_tunelab_run_from_another_folder_keeps_the_study_beside_its_file(tmp_path):
    """End to end: run from tmp_path, the study file in project/; the database and the logs land
    in project/, the script runs in project/src and its result file is read from there."""
    folder = project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(TREE)}
    env.pop("TUNELAB_STORAGE", None)
    run = subprocess.run([sys.executable, "-m", "tunelab.cli", "run", "project/study.yaml"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "logs").exists()
    study = tl.load_study("paths", storage=f"sqlite:///{folder / 'runs.db'}")
    assert study.counts() == {"completed": 2}
    assert (folder / "src" / "out" / "result.json").is_file() and (folder / "logs" / "paths" / "0").is_dir()
    assert study.record.settings["workdir"] == str((folder / "src").resolve())
