"""Tests for tunelab.tracking.environment, using a real git in temporary dirs."""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import subprocess

import numpy
import pytest

from tunelab.tracking.environment import (
    _parse_nvidia_smi,
    capture_environment,
    diff_environments,
    environment_fingerprint,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

EXPECTED_KEYS = {
    "host", "os", "cpu", "memory_bytes", "gpus", "python", "packages", "git", "code",
    "captured_at", "fingerprint",
}


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path, monkeypatch):
    """Stop git from discovering a repository above tmp_path or reading user config."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo, *args: str) -> str:
    cmd = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("lr = 0.1\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def env(tmp_path):
    """A capture whose git part is stable: tmp_path is outside any repository."""
    return capture_environment(tmp_path)


def test_capture_has_all_keys_and_is_json(env):
    assert set(env) == EXPECTED_KEYS
    assert json.loads(json.dumps(env)) == env
    assert env["cpu"]["count"] == os.cpu_count()
    assert env["cpu"]["machine"] == platform.machine()
    assert env["python"]["version"] == platform.python_version()
    assert env["packages"]["numpy"] == numpy.__version__
    assert env["memory_bytes"] is None or env["memory_bytes"] > 0
    assert isinstance(env["gpus"], list)


def test_explicit_packages_are_recorded(tmp_path):
    env = capture_environment(tmp_path, packages=["pytest", "no-such-dist-xyz"])
    assert env["packages"]["pytest"] == pytest.__version__
    assert "no-such-dist-xyz" not in env["packages"]


@needs_git
def test_git_clean_then_dirty(repo):
    clean = capture_environment(repo)["git"]
    assert clean["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert os.path.realpath(clean["root"]) == os.path.realpath(repo)
    assert clean["branch"] == "main"
    assert clean["dirty"] is False
    assert clean["diff"] == ""
    assert clean["untracked"] == []

    (repo / "train.py").write_text("lr = 0.01\n")
    (repo / "notes.txt").write_text("scratch\n")
    dirty = capture_environment(repo / "train.py")["git"]
    assert dirty["dirty"] is True
    assert "+lr = 0.01" in dirty["diff"]
    assert "-lr = 0.1" in dirty["diff"]
    assert dirty["untracked"] == ["notes.txt"]


@needs_git
def test_long_diff_is_truncated_with_marker(repo, monkeypatch):
    from tunelab.tracking import environment

    monkeypatch.setattr(environment, "MAX_DIFF_CHARS", 50)
    (repo / "train.py").write_text("lr = 0.2\n" * 100)
    diff = capture_environment(repo)["git"]["diff"]
    assert diff == diff[:50] + "\n[diff truncated at 50 characters]"


@needs_git
def test_git_repo_without_commits(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    info = capture_environment(tmp_path)["git"]
    assert info["commit"] is None
    assert info["dirty"] is True
    assert "+x = 1" in info["diff"]


def test_git_is_none_outside_a_repository(env):
    assert env["git"] is None


def test_parse_nvidia_smi():
    text = "NVIDIA H100 80GB HBM3, 81559, 550.54.15\nNVIDIA A100-SXM4-40GB, 40960, 550.54.15\n\n"
    assert _parse_nvidia_smi(text) == [
        {"name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81559, "driver": "550.54.15"},
        {"name": "NVIDIA A100-SXM4-40GB", "memory_total_mb": 40960, "driver": "550.54.15"},
    ]
    assert _parse_nvidia_smi("") == []


def test_fingerprint_stable_across_captures(tmp_path, env):
    again = capture_environment(tmp_path)
    assert env["fingerprint"] == again["fingerprint"]
    assert env["fingerprint"] == environment_fingerprint(env)


def test_fingerprint_ignores_host_and_time(env):
    other = copy.deepcopy(env)
    other["host"] = "elsewhere"
    other["captured_at"] = "1999-01-01T00:00:00+00:00"
    other["memory_bytes"] = 1
    other["python"]["executable"] = "/other/python"
    assert environment_fingerprint(other) == environment_fingerprint(env)


def test_fingerprint_changes_with_package_version(env):
    other = copy.deepcopy(env)
    other["packages"]["numpy"] = "0.0.1"
    assert environment_fingerprint(other) != environment_fingerprint(env)


@needs_git
def test_fingerprint_changes_with_git_diff(repo):
    before = capture_environment(repo)
    (repo / "train.py").write_text("lr = 0.5\n")
    after = capture_environment(repo)
    assert before["fingerprint"] != after["fingerprint"]
    assert any(line.startswith("git diff: differs") for line in diff_environments(before, after))


def test_an_edit_of_an_untracked_source_file_changes_the_fingerprint_and_is_named(repo):
    """A helper module the objective imports, not committed yet: git's diff does not hold it."""
    (repo / "helper.py").write_text("SHIFT = 0.3\n")
    (repo / "notes.md").write_text("not code\n")
    before = capture_environment(repo)
    assert set(before["git"]["untracked_sha256"]) == {"helper.py"}
    (repo / "notes.md").write_text("other notes\n")
    assert capture_environment(repo)["fingerprint"] == before["fingerprint"]  # not a source file
    (repo / "helper.py").write_text("SHIFT = 0.5\n")
    after = capture_environment(repo)
    assert after["fingerprint"] != before["fingerprint"]
    assert diff_environments(before, after) == ["untracked file helper.py: changed"]


def test_a_new_package_folder_many_untracked_files_and_an_edit_past_the_kept_diff_all_show(repo, monkeypatch):
    """git lists a new folder as one entry ('pkg/'), so its modules went unhashed; the 200th
    untracked file capped the list before source files were picked out of it; an edit beyond the
    diff's first MAX_DIFF_CHARS did not change the fingerprint."""
    from tunelab.tracking import environment

    (repo / "pkg").mkdir()
    (repo / "pkg" / "consts.py").write_text("K = 1.0\n")
    for i in range(environment.MAX_UNTRACKED + 50):
        (repo / f"out_{i:03d}.csv").write_text("1\n")
    (repo / "zhelper.py").write_text("SHIFT = 1\n")
    before = capture_environment(repo)
    assert {"pkg/consts.py", "zhelper.py"} <= set(before["git"]["untracked_sha256"])
    (repo / "pkg" / "consts.py").write_text("K = 2.0\n")
    assert "untracked file pkg/consts.py: changed" in diff_environments(before, capture_environment(repo))
    (repo / "zhelper.py").write_text("SHIFT = 3\n")
    assert "untracked file zhelper.py: changed" in diff_environments(before, capture_environment(repo))

    monkeypatch.setattr(environment, "MAX_DIFF_CHARS", 50)
    (repo / "train.py").write_text("lr = 0.2\n" * 100 + "scale = 2.0\n")
    wide = capture_environment(repo)
    (repo / "train.py").write_text("lr = 0.2\n" * 100 + "scale = 5.0\n")  # past the kept 50 characters
    assert capture_environment(repo)["fingerprint"] != wide["fingerprint"]


def test_tunelab_s_own_database_and_logs_do_not_make_a_tree_dirty(repo):
    for name in ("tunelab.db", "tunelab.db-wal", "tunelab.db-shm", "tunelab.db-writers"):
        (repo / name).write_text("")
    (repo / "tunelab-artifacts" / "demo" / "0").mkdir(parents=True)
    (repo / "tunelab-artifacts" / "demo" / "0" / "stdout.log").write_text("trial output\n")
    info = capture_environment(repo)["git"]
    assert info["dirty"] is False and info["untracked"] == []


def test_diff_environments_reports_changes(env):
    other = copy.deepcopy(env)
    other["packages"]["numpy"] = "0.0.1"
    other["packages"]["fancylib"] = "1.0"
    other["python"]["version"] = "2.7.18"
    lines = diff_environments(env, other)
    assert f"numpy: {numpy.__version__} -> 0.0.1" in lines
    assert "fancylib: (absent) -> 1.0" in lines
    assert f"python: {platform.python_version()} -> 2.7.18" in lines


def test_diff_environments_empty_when_identical(env):
    assert diff_environments(env, copy.deepcopy(env)) == []


def test_diff_environments_tolerates_old_records(env):
    lines = diff_environments({"python": {"version": "3.8.0"}}, env)
    assert f"python: 3.8.0 -> {platform.python_version()}" in lines


def test_an_edit_of_an_objective_file_git_does_not_see_changes_the_fingerprint(tmp_path):
    """Outside a repository (or untracked), an edited objective kept "same fingerprint as recorded"."""
    code = tmp_path / "objective.py"
    code.write_text("def f(config):\n    return config['x']\n")
    before = capture_environment(code, packages=[])
    assert before["code"]["file"] == "objective.py" and before["git"] is None
    code.write_text("def f(config):\n    return config['x'] + 0.5\n")
    after = capture_environment(code, packages=[])
    assert after["fingerprint"] != before["fingerprint"]
    assert any("objective file sha256" in line for line in diff_environments(before, after))
