"""What capture_environment records must serve a re-run: a diff git applies, the packages asked for."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import tunelab as tl
from tunelab.tracking.environment import capture_environment

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def _git(repo, *args: str) -> str:
    cmd = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


@needs_git
def test_the_recorded_diff_applies_to_the_commit_whatever_the_users_git_settings(tmp_path):
    """With diff.noprefix set, the diff was recorded without a/ and b/: `git apply` refused it."""
    repo, clone = tmp_path / "repo", tmp_path / "clone"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("lr = 0.1\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "initial")
    _git(repo, "config", "diff.noprefix", "true")
    (repo / "train.py").write_text("lr = 0.01\n")
    git = capture_environment(repo / "train.py")["git"]
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    (tmp_path / "change.patch").write_text(git["diff"])
    _git(clone, "apply", str(tmp_path / "change.patch"))
    assert (clone / "train.py").read_text() == "lr = 0.01\n"


@pytest.mark.parametrize("packages", ["pytest", [1], 3])
def test_packages_must_be_a_list_of_names(tmp_path, packages):
    """packages="pytest" was read letter by letter: nothing recorded, nothing said."""
    with pytest.raises(tl.ConfigError, match=r"packages is a list of distribution names, e.g. packages=\['torch'\]"):
        capture_environment(tmp_path, packages=packages)


def test_packages_may_come_from_any_iterable(tmp_path):
    env = capture_environment(tmp_path, packages=(name for name in ["pytest"]))
    assert env["packages"]["pytest"] == pytest.__version__
