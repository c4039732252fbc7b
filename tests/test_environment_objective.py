"""The code on record is the objective's, however it is handed to tl.tune: a function, a
``functools.partial`` of one, or an object with ``__call__`` (as in Optuna's examples)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

import tunelab as tl

from test_environment import _isolated_git, git, needs_git  # noqa: F401 - the fixture isolates git

TRAIN = '''
def train(config, trial, scale=1.0):
    return config["x"] * scale


class Objective:
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, config, trial):
        return config["x"] * self.scale
'''


@pytest.fixture
def train_module(tmp_path, monkeypatch):
    """train.py committed in a repository of its own, imported; the working folder elsewhere."""
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text(TRAIN)
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "the objective")
    spec = importlib.util.spec_from_file_location("train_for_environment", repo / "train.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return module, git(repo, "rev-parse", "HEAD").strip()


@needs_git
@pytest.mark.parametrize("wrap", [lambda m: functools.partial(m.train, scale=2.0), lambda m: m.Objective(2.0)],
                         ids=["partial", "callable object"])
def test_the_environment_records_the_tree_and_file_of_a_wrapped_objective(train_module, wrap):
    """Both were looked up in the working folder: no commit (or another tree's), no file hash."""
    module, commit = train_module
    study = tl.tune(wrap(module), {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0,
                    progress=False)
    assert study.environment["git"]["commit"] == commit
    assert study.environment["code"]["file"] == "train.py"
    assert study.environment["code"]["sha256"] == hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
