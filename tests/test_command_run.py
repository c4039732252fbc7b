"""`tunelab run`'s closing words: what it prints must work when pasted into a shell."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from test_script_cli import STUDY, TREE, setup, tunelab


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_the_closing_hint_quotes_a_storage_path_the_shell_would_misread(tmp_path):
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 1"))
    run = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs(1)&co.db")
    assert run.returncode == 0, run.stderr
    hint = next(line for line in run.stdout.splitlines() if line.startswith("Inspect it:"))
    pasted = hint.split(":", 1)[1].strip().replace("tunelab", f"{shlex.quote(sys.executable)} -m tunelab.cli", 1)
    shown = subprocess.run(["sh", "-c", pasted], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(TREE), "COLUMNS": "200"})
    assert shown.returncode == 0 and "cli-demo" in shown.stdout, shown.stderr
