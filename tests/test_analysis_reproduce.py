"""Re-running a trial from its record, in process and from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from sqlalchemy import create_engine, text

import tunelab as tl
from tunelab.analysis import load_objective, reproduce
from tunelab.errors import ConfigError

import lab_objectives as objectives

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=TESTS, timeout=120)


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    tl.tune(objectives.noisy, {"x": tl.uniform(0, 1), "noise": 0.3}, metric="loss", mode="min", n_trials=4,
            storage=url, name="noisy", seed=5)
    tl.tune(objectives.shifted, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, storage=url,
            name="shifted", seed=5)
    return url, tmp_path / "lab.db"


def test_a_seeded_objective_reproduces_exactly(stored):
    url, _ = stored
    study = tl.load_study("noisy", storage=url)
    result = reproduce(study, 2)
    assert result.exact and result.value == study.get_trial(2).value
    assert result.environment_changes == []
    assert "reproduced exactly" in result.report()


def test_the_cli_reports_an_injected_version_difference_and_the_metric(stored):
    url, db = stored
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        env = json.loads(conn.execute(text("select environment from tunelab_studies where name='noisy'")).scalar())
        env["packages"]["numpy"] = "0.0.1"
        conn.execute(text("update tunelab_studies set environment=:e where name='noisy'"), {"e": json.dumps(env)})
    engine.dispose()
    done = cli("reproduce", "noisy", "1", "--storage", url)
    assert done.returncode == 0, done.stderr
    assert f"numpy: 0.0.1 -> {numpy.__version__}" in done.stdout
    assert "reproduced exactly" in done.stdout


def test_the_cli_exits_1_when_the_metric_moved(stored):
    url, _ = stored
    done = cli("reproduce", "shifted", "0", "--storage", url, env={"TUNELAB_TEST_SHIFT": "0.25"})
    assert done.returncode == 1, done.stderr
    assert "differs by +0.25" in done.stdout
    ok = cli("reproduce", "shifted", "0", "--storage", url, "--tolerance", "0.3", env={"TUNELAB_TEST_SHIFT": "0.25"})
    assert ok.returncode == 0
    bad = cli("reproduce", "shifted", "0", "--storage", url, "--tolerance", "-1")
    assert bad.returncode == 2 and "--tolerance is the largest difference" in bad.stderr


def test_a_trials_own_environment_is_the_reference_when_its_worker_differed(stored):
    url, _ = stored
    study = tl.load_study("shifted", storage=url)
    trial = study.get_trial(1)
    worker_env = json.loads(json.dumps(study.environment))
    worker_env["python"]["version"] = "2.7.18"
    study.storage.set_trial_attr(trial.id, "worker", {"host": "elsewhere", "environment": worker_env}, system=True)
    changes = reproduce(tl.load_study("shifted", storage=url), 1).environment_changes
    assert any(line.startswith("python: 2.7.18 -> ") for line in changes)


def test_objectives_that_cannot_be_imported_are_explained():
    with pytest.raises(ConfigError, match="in a script not on record"):
        load_objective("__main__:train")
    with pytest.raises(ConfigError, match=r"/gone/train.py, which is no longer there"):
        load_objective("__main__:train", "/gone/train.py")
    with pytest.raises(ConfigError, match="top level of a module"):
        load_objective("lab_objectives:outer.<locals>.inner")
    with pytest.raises(ConfigError, match="no objective on record"):
        load_objective(None)
    with pytest.raises(ConfigError, match="cannot import"):
        load_objective("no_such_module_here:f")
    with pytest.raises(ConfigError, match=r"recorded in /gone/train_it.py, which is no longer there"):
        load_objective("train_it:f", "/gone/train_it.py")  # the file was moved or renamed since
    assert load_objective("lab_objectives:quadratic") is objectives.quadratic


def test_a_script_study_is_rerun_from_its_study_file(tmp_path, capsys):
    """`tunelab run` studies record a command, not a function: re-runs rebuild it from the study
    file, in folders of their own (the original trial's logs stay as they were)."""
    pytest.importorskip("yaml")
    from tunelab.cli import main

    (tmp_path / "train.py").write_text("import sys\nx = float(sys.argv[1])\nprint('{\"loss\": %r}' % ((x - 0.3) ** 2))\n")
    (tmp_path / "study.yaml").write_text('name: script\ncommand: "{python} train.py {x}"\nmetric: loss\nmode: min\n'
                                         "space:\n  x: {uniform: [0, 1]}\nn_trials: 2\nseed: 4\n")
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    assert main(["run", str(tmp_path / "study.yaml"), "--storage", url]) == 0
    study = tl.load_study("script", storage=url)
    original = (study.trial_dir(1) / "stdout.log").read_text()
    result = reproduce(study, 1)
    assert result.exact and result.value == study.get_trial(1).value
    assert (study.trial_dir(1) / "reproduce" / "1" / "stdout.log").read_text() == original
    capsys.readouterr()
    assert main(["seed-check", "script", "--seeds", "2", "--json", "--storage", url]) == 0
    assert json.loads(capsys.readouterr().out)["std"] == 0.0


def test_a_multi_fidelity_trial_is_rerun_to_its_budget_and_so_are_sensitivity_and_seed_checks(tmp_path):
    """An objective that reads trial.budget and saves checkpoints runs again outside the tuner:
    reproduce re-runs each trial as far as it ran (a rung, for one pruned or paused there),
    with a fresh checkpoint folder; sensitivity and seed checks run at their trial's budget."""
    from mf_objectives import EPOCHS, SPACE, by_epochs
    from tunelab.analysis.seeds import seed_check

    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", fidelity=EPOCHS, n_trials=12, seed=1,
                    storage=f"sqlite:///{tmp_path / 'mf.db'}", name="mf", progress=False)
    assert {t.budget for t in study.trials} > {EPOCHS.max}  # trials that stopped at a rung, and full runs
    for trial in study.trials:
        result = reproduce(study, trial.number)
        assert result.exact and result.value == trial.value, result.report()
    best = study.best
    assert best.budget == EPOCHS.max
    around = tl.sensitivity(by_epochs, best.config, study.space, 3, metric="loss", seed=best.seed, budget=best.budget)
    assert around.baseline_value == pytest.approx(best.value)
    check = seed_check(by_epochs, best.config, 2, metric="loss", budget=best.budget)
    assert check.values == pytest.approx([best.value, best.value])
    from tunelab.cli import main

    url = f"sqlite:///{tmp_path / 'mf.db'}"
    assert main(["sensitivity", "mf", "--points", "3", "--storage", url]) == 0  # at the best trial's budget
    assert main(["seed-check", "mf", "--seeds", "2", "--storage", url]) == 0
    assert main(["reproduce", "mf", str(study.trials[0].number), "--storage", url]) == 0


def test_a_trial_a_stopping_rule_ended_early_is_compared_at_the_step_it_stopped(tmp_path):
    """It has no value at its budget: the re-run, which runs to the budget, was 'not reproduced'."""
    import mf_objectives

    study = tl.tune(mf_objectives.by_epochs, mf_objectives.SPACE, metric="loss", mode="min", n_trials=12, seed=1,
                    scheduler="median", fidelity=mf_objectives.EPOCHS, storage=f"sqlite:///{tmp_path / 'm.db'}")
    stopped = next(t for t in study.trials if t.state is tl.TrialState.PRUNED and not t.reached_budget)
    result = reproduce(study, stopped.number)
    assert result.step == stopped.reports[-1].step and result.exact
    assert f"at step {stopped.reports[-1].step:g}, where a stopping rule ended it" in result.report()


def test_a_failed_trial_reproduces_when_it_fails_the_same_way(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = tl.tune(objectives.fails_above_half, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=8,
                    seed=2, storage=url, name="f")
    failed = next(t for t in study.trials if t.state is tl.TrialState.FAILED)
    same = reproduce(study, failed.number)
    assert same.exact and "the recorded trial failed, and the re-run failed the same way" in same.report()
    monkeypatch.setenv("TUNELAB_TEST_SHIFT", "1")
    other = reproduce(study, failed.number)
    assert not other.exact and "the recorded trial failed (RuntimeError: diverged (setting 0))" in other.report()


GUARDED = """\
import tunelab as tl

from helper_beside_it import SHIFT


def objective(config, trial):
    return (config["x"] - SHIFT) ** 2 + trial.seed % 7 * 1e-3


if __name__ == "__main__":
    tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=3, seed=2,
            storage="sqlite:///lab.db", name="script")
"""


def test_an_objective_defined_in_the_script_that_was_run_is_re_run_from_that_script(tmp_path):
    """The Quick start's way (an objective beside its tl.tune call, `python train.py`) recorded
    __main__:objective, which reproduce, seed-check and sensitivity refused to import. The script is
    loaded again under a name of its own: its __main__ part does not run, so nothing is tuned again."""
    (tmp_path / "train.py").write_text(GUARDED)
    (tmp_path / "helper_beside_it.py").write_text("SHIFT = 0.25\n")
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    assert tl.load_study("script", storage=url).record.settings["objective"] == "__main__:objective"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in (["reproduce", "script", "1"], ["seed-check", "script", "--seeds", "2"],
                    ["sensitivity", "script", "--points", "3"]):
        done = subprocess.run([sys.executable, "-m", "tunelab.cli", *command, "--storage", url], cwd=elsewhere,
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert "reproduced" in subprocess.run([sys.executable, "-m", "tunelab.cli", "reproduce", "script", "1",
                                           "--storage", url], cwd=elsewhere, capture_output=True, text=True,
                                          env=env, timeout=120).stdout
    assert len(tl.load_study("script", storage=url).trials) == 3  # loading the script tuned nothing more


def test_a_script_that_tunes_at_its_top_level_is_not_loaded_to_re_run_its_objective(tmp_path, monkeypatch):
    """Loaded again, such a script would start the whole tuning over; it is stopped at its first
    study, before any trial, with what to change."""
    unguarded = GUARDED.replace('if __name__ == "__main__":\n    ', "").replace("\n            storage", "\n    storage")
    (tmp_path / "train.py").write_text(unguarded)
    (tmp_path / "helper_beside_it.py").write_text("SHIFT = 0.25\n")
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError, match=r'opens a study when it is loaded .* if __name__ == "__main__"'):
        load_objective("__main__:objective", str(tmp_path / "train.py"))
    assert len(tl.load_study("script", storage=url).trials) == 3
    assert list(elsewhere.iterdir()) == []  # stopped before its storage was opened


EDITED = "def objective(config, trial):\n    return (config['x'] - 0.3) ** 2\n"


def test_seed_check_and_sensitivity_say_the_objective_file_was_edited_since_the_study_ran(tmp_path, monkeypatch):
    """An edit to the objective's file made seed-check blame the seed (NOT REPEATABLE: seed every
    generator) and sensitivity call the new code's value the trial's baseline, without a word.
    Both now say on stderr (a --json output stays JSON) that the file changed, naming it, and
    seed-check names the edit as the likely cause."""
    source = tmp_path / "edited_objective_rr.py"
    source.write_text(EDITED)
    monkeypatch.syspath_prepend(str(tmp_path))
    import edited_objective_rr

    monkeypatch.delitem(sys.modules, "edited_objective_rr")  # the next test of this name imports it afresh
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    tl.tune(edited_objective_rr.objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=3,
            storage=url, name="edited", seed=1)
    untouched = cli("seed-check", "edited", "--seeds", "2", "--storage", url)
    assert untouched.returncode == 0 and "changed since the study ran" not in untouched.stderr + untouched.stdout
    source.write_text(EDITED.replace("0.3", "0.6"))
    check = cli("seed-check", "edited", "--seeds", "2", "--storage", url)
    out = " ".join(check.stdout.split())
    assert check.returncode == 0, check.stderr
    assert f"the objective's file {source} changed since the study ran" in check.stderr
    assert "NOT REPEATABLE" in out and f"{source.name} changed since the study ran" in out
    assert "which is the likely cause" in out
    for command in (["seed-check", "edited", "--seeds", "2"], ["sensitivity", "edited", "--points", "3"]):
        done = cli(*command, "--json", "--storage", url)
        assert done.returncode == 0 and json.loads(done.stdout), (command, done.stderr)
        assert f"the objective's file {source} changed since the study ran" in done.stderr
        assert "objective file sha256:" in done.stderr
    plain = cli("sensitivity", "edited", "--points", "3", "--storage", url)
    assert "as edited since the study ran" in " ".join(plain.stdout.split())


class CallableObjective:
    def __call__(self, config):
        return (config["x"] - 0.3) ** 2


def test_an_objective_that_could_not_be_recorded_is_explained_as_such(tmp_path):
    """A callable object or a functools.partial passed to tl.tune is recorded as no objective;
    the message said it 'must be a function defined in a module, passed to tl.tune', though it
    was passed to tl.tune. It now says it could not be recorded, and what to tune with instead."""
    import functools

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    for name, objective in (("instance", CallableObjective()),
                            ("partial", functools.partial(objectives.quadratic))):
        study = tl.tune(objective, {"x": tl.uniform(0, 1), "y": 0.5}, metric="loss", mode="min", n_trials=2,
                        storage=url, name=name, seed=0)
        assert study.record.settings["objective"] is None
        with pytest.raises(ConfigError) as err:
            load_objective(study.record.settings["objective"])
        message = " ".join(str(err.value).split())
        assert "given to tl.tune could not be recorded" in message and "functools.partial" in message
        assert "a callable object (an instance of a class with __call__)" in message
        assert "function defined at the top level of a module" in message
        assert "must be a function defined in a module, passed to tl.tune" not in message


def test_a_study_made_without_an_objective_records_the_one_that_runs_it(tmp_path):
    """tl.create_study, then tl.tune (or tunelab worker) on it: reproduce, sensitivity and
    seed-check refused its trials ("no objective on record"), though the objective was known."""
    url, space = f"sqlite:///{tmp_path / 'made.db'}", {k: tl.uniform(0, 1) for k in "xyz"}
    tl.create_study(space, metric="loss", mode="min", name="made", storage=url, seed=0)
    tl.tune(objectives.quadratic, space, metric="loss", mode="min", name="made", storage=url, n_trials=2,
            progress=False)
    study = tl.load_study("made", storage=url)
    assert study.record.settings["objective"] == "lab_objectives:quadratic"
    assert reproduce(study, study.trials[0].number).exact
    tl.tune(objectives.noisy, space, metric="loss", mode="min", name="made", storage=url, n_trials=3, progress=False)
    assert tl.load_study("made", storage=url).record.settings["objective"] == "lab_objectives:quadratic"  # kept
