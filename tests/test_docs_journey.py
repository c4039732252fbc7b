"""Recipes of the docs, run as a new user copies them: the errors docs/run.md quotes are the ones
its own study file gives when misspelt as it says, and the README's Python call for sensitivity
works on the README's own Quick start objective."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import tunelab as tl
from tunelab.cli import main

ROOT = Path(__file__).resolve().parent.parent

#: The mistakes docs/run.md describes ("misspell a key, a distribution or a placeholder of the
#: file above, or write n_trials: ten"), as edits of that file.
MISTAKES = [("n_trials: 10", "n_trails: 10"), ("alpha: {loguniform", "alpha: {lognormal"),
            ("--alpha {alpha}", "--alpha {alpah}"), ("n_trials: 10", "n_trials: ten")]


def _block(text: str, language: str, after: str) -> str:
    start = text.index(after)
    return re.search(rf"```{language}\n(.*?)```", text[start:], re.S).group(1)


def test_the_errors_run_md_quotes_are_the_ones_its_study_file_gives(tmp_path, monkeypatch, capsys):
    pytest.importorskip("yaml")
    doc = (ROOT / "docs" / "run.md").read_text(encoding="utf-8")
    study_file = _block(doc, "yaml", "## The study file")
    quoted = [line for line in _block(doc, "", "a mistake names the file").splitlines() if line.strip()]
    assert len(quoted) == len(MISTAKES)
    shutil.copy(ROOT / "examples" / "train_sgd.py", tmp_path)
    monkeypatch.chdir(tmp_path)  # the file named as the doc names it
    path = tmp_path / "study.yaml"
    path.write_text(study_file, encoding="utf-8")
    assert main(["run", "study.yaml", "--dry-run"]) == 0  # the file as written is valid
    capsys.readouterr()
    for (old, new), line in zip(MISTAKES, quoted):
        assert old in study_file, old
        path.write_text(study_file.replace(old, new, 1), encoding="utf-8")
        assert main(["run", "study.yaml", "--dry-run"]) == 2
        said = capsys.readouterr().err.strip()
        assert said.startswith(line.removesuffix(" ...")), (said, line)


def test_the_readme_s_sensitivity_call_runs_on_the_quick_start_objective():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = _block(readme, "python", "## Quick start")
    namespace: dict = {"__name__": "readme_quick_start"}  # its tuning part stays unrun

    def build(config):
        return {"lr": config["lr"]}

    def train_one_epoch(model, config):  # a stand-in for training: loss falls with lr near 0.01
        loss = abs(model["lr"] - 0.01) + 0.1
        return loss, 1.0 / (1.0 + loss)

    exec(quick_start, namespace)  # noqa: S102 (the README's own code)
    namespace.update(build=build, train_one_epoch=train_one_epoch)
    baseline = eval(re.search(r"enqueue=\[(\{.*?\})\]", quick_start, re.S).group(1))  # noqa: S307 (its baseline)
    call = re.search(r"`(tl\.sensitivity\([^`]*\))`", readme).group(1).replace("points=7", "points=2")
    result = eval(call, {**namespace, "tl": tl, "baseline": baseline})  # noqa: S307
    assert result.metric == "accuracy" and set(result.sweeps) >= {"lr", "momentum"}
