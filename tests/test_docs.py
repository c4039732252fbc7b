"""The documentation as a new user reads it: README.md and docs/*.md name commands, options,
functions and records that must exist as written, and give recipes that must work as written.
A renamed option or a changed record otherwise leaves the docs promising what the code no longer
does, and the user finds out from a traceback."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import time
from pathlib import Path

import pytest

import tunelab as tl
from tunelab.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _subcommands(parser) -> dict:
    """Subcommand name -> its parser, nested ones as 'nas show'."""
    found = {}
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            found[name] = sub
            if sub._subparsers:
                found.update({f"{name} {inner}": p for inner, p in _subcommands(sub).items()})
    return found


def test_every_option_the_docs_give_a_command_exists():
    commands = _subcommands(build_parser())
    # "tunelab CMD ...": up to the end of the line (or a continued line), a comment or a backtick
    pattern = re.compile(r"tunelab (nas show|[a-z][a-z-]*)((?:[^\n`#\\]|\\\n)*)")
    unknown = []
    for path in DOCS:
        for match in pattern.finditer(_text(path)):
            command, rest = match.group(1), match.group(2)
            if command not in commands:
                continue  # prose ("tunelab run tunes..."), not a command line
            known = commands[command]._option_string_actions
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-o)(?![\w-])", rest):
                if option not in known:
                    unknown.append(f"{path.name}: tunelab {command} {option}")
    assert not unknown, unknown


def _resolve(root, dotted: str):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def test_every_tunelab_name_the_docs_give_exists():
    missing = []
    for path in DOCS:
        text = _text(path)
        for name in set(re.findall(r"\btl\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", text)):
            try:
                _resolve(tl, name)
            except AttributeError:
                missing.append(f"{path.name}: tl.{name}")
        for module, name in set(re.findall(r"from (tunelab[\w.]*) import (\w+)", text)):
            try:
                imported = importlib.import_module(module)
            except ImportError:  # an extra that is not installed here (tunelab.nas without torch)
                continue
            if not hasattr(imported, name) and importlib.util.find_spec(f"{module}.{name}") is None:
                missing.append(f"{path.name}: from {module} import {name}")
        if importlib.util.find_spec("torch") is not None:
            from tunelab import nas

            for name in set(re.findall(r"\bnas\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(", text)):
                try:
                    _resolve(nas, name)
                except AttributeError:
                    missing.append(f"{path.name}: nas.{name}")
        for kind, registry in (("searcher", tl.SEARCHERS), ("scheduler", tl.SCHEDULERS)):
            for name in set(re.findall(rf'\b{kind}="(\w+)"', text)):
                if name != "auto" and name not in registry.names():
                    missing.append(f'{path.name}: {kind}="{name}"')
    assert not missing, missing


def test_the_readme_commands_are_the_ones_ci_runs():
    readme, ci = _text(ROOT / "README.md"), _text(ROOT / ".ci" / "run")
    def words(line: str) -> str:  # pip's -q is CI's quiet log, not a different command
        return " ".join(word for word in shlex.split(line) if word != "-q")

    ci_lines = {words(line) for line in ci.splitlines() if line.startswith((".venv/", "python3"))}
    tests_command = next(block for block in re.findall(r"```bash\n(.*?)```", readme, re.S) if "pytest" in block)
    steps = [words(step) for step in tests_command.strip().split(" && ")]
    assert steps and all(step in ci_lines for step in steps), (steps, ci_lines)


def test_one_worker_checks_trial_timeout_only_when_the_trial_reports(tmp_path):
    """README, Failures: with one worker the trial runs in the tuner's thread, which cannot stop
    it; ``trial_timeout`` takes effect at its next report, or when it returns (it completed)."""
    finished = tmp_path / "finished"

    def silent(config, trial):  # never reports: nothing can stop it
        time.sleep(0.6)
        finished.write_text("ran to its end")
        return 1.0

    def reporting(config, trial):
        time.sleep(0.6)
        trial.report(1, value=1.0)  # past its timeout: the report ends the trial
        return 1.0

    late = tl.tune(silent, {"x": tl.uniform(0, 1)}, metric="value", mode="min", n_trials=1, trial_timeout=0.2,
                   progress=False)
    assert finished.read_text() == "ran to its end"
    # ...and fails once it returns, as it does with worker processes, which kill it at its timeout
    assert late.trials[0].state is tl.TrialState.FAILED and "trial_timeout=0.2s" in late.trials[0].error
    study = tl.tune(reporting, {"x": tl.uniform(0, 1)}, metric="value", mode="min", n_trials=1,
                    trial_timeout=0.2, progress=False)
    assert study.trials[0].state is tl.TrialState.FAILED
    assert "trial_timeout" in study.trials[0].error


def test_the_nas_doc_searches_again_from_a_recorded_darts_trial():
    """docs/nas.md: the record keeps what it takes to search again, and its own recipe (the inline
    code on search_data and search_settings, run as written) finds the same cell."""
    torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")
    torch.set_num_threads(1)  # as the doc's example does: tiny networks, one thread
    from tunelab import nas

    data = nas.digits(batch_size=16, seed=0, limit=120, fractions=(0.5, 0.25))
    found = nas.darts_search(data, epochs=1, nodes=1, channels=4, layers=2, seed=3)
    study = tl.create_study(nas.cell_space(1), metric="accuracy", mode="max")
    trial = found.record(study, {"accuracy": 0.5})

    paragraph = next(p for p in _text(ROOT / "docs" / "nas.md").split("\n\n") if "search_settings" in p)
    recipe = [code for code in re.findall(r"`([^`]+)`", paragraph) if "trial.user_attrs[" in code and "(" in code]
    assert recipe, "docs/nas.md no longer says how to search again"
    namespace = {"nas": nas, "trial": trial}
    for code in recipe:  # an assignment as written, an expression kept as the search's result
        exec(code if re.match(r"\w+ = ", code) else f"again = {code}", namespace)  # noqa: S102
    assert namespace["again"].genotype == found.genotype
