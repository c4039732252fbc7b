"""Malformed input of every kind (spaces, configurations, storage URLs, command lines, corrupted
database rows, objectives returning nonsense): each gets a clear tunelab error or fails only its own
trial; the tuner never crashes and a stored study is never corrupted by it. Over 200 cases, built
from small lists of bad parts so that each case says what it tries."""

from __future__ import annotations

import io
import math
import shutil
import sqlite3
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import tunelab as tl
from tunelab.cli import main
from tunelab.errors import TunelabError
from tunelab.storage import open_storage
from tunelab.trial import TrialState

GOOD_SPACE = {"x": tl.uniform(0.0, 1.0), "k": tl.choice(["a", "b"]), "n": tl.randint(1, 3)}


def clear(err: BaseException) -> None:
    """A clear error: a tunelab error with a message of its own, not a bare repr."""
    assert isinstance(err, TunelabError), f"{type(err).__name__}: {err}"
    assert len(str(err)) > 15


def raises_clearly(action) -> None:
    try:
        action()
    except Exception as err:  # noqa: BLE001 - which error it is, is what is checked
        clear(err)
    else:
        raise AssertionError("no error for a malformed input")


# -- spaces (60) ---------------------------------------------------------------------------------------
BAD_DISTRIBUTIONS = [
    lambda: tl.uniform(1.0, 0.0), lambda: tl.uniform(0.0, 0.0), lambda: tl.uniform("a", 1.0),
    lambda: tl.uniform(0.0, math.inf), lambda: tl.uniform(math.nan, 1.0), lambda: tl.loguniform(0.0, 1.0),
    lambda: tl.loguniform(-1.0, 1.0), lambda: tl.randint(5, 1), lambda: tl.randint(0.5, 3),
    lambda: tl.randint("1", 3), lambda: tl.choice([]), lambda: tl.choice("abc"), lambda: tl.choice([[1], [2]]),
    lambda: tl.ordinal([]), lambda: tl.choice([1, 1]), lambda: tl.uniform(None, 1.0),
    lambda: tl.uniform(0.0, 1.0, when="x"), lambda: tl.choice([1, 2], when={"ghost": 1}),
    lambda: tl.loguniform(1e-3, 1e-4), lambda: tl.randint(0, 3, log=True),
]
BAD_SPACES = [
    None, 3, "x", [1, 2], {}, {"": tl.uniform(0, 1)}, {1: tl.uniform(0, 1)}, {"x": tl.uniform(0, 1, when={"x": 1})}, {"x": [1, 2]},
    {"x": {"nested": {"deep": set()}}}, {"x": object()}, {"x": set()}, {"x y": lambda: 1}, {"x": tl.uniform(0, 1), "y": b"bytes"},
    {"x": math.nan}, {"a": tl.choice([1, 2], when={"b": 1}), "b": tl.choice([3, 4])},
    {"a": tl.choice([1, 2], when={"b": 1}), "b": tl.choice([1, 2], when={"a": 1})},
    {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1, when={"x": 0.5})}, {"x": tl.Space}, {"x": ...},
]


@pytest.mark.parametrize("make", BAD_DISTRIBUTIONS, ids=[f"dist{i}" for i in range(len(BAD_DISTRIBUTIONS))])
def test_bad_distributions(make):
    raises_clearly(lambda: tl.Space({"p": make()}))


@pytest.mark.parametrize("space", BAD_SPACES, ids=[f"space{i}" for i in range(len(BAD_SPACES))])
@pytest.mark.parametrize("entry", ["create_study", "tune"])
def test_bad_spaces(space, entry):
    if entry == "tune":
        raises_clearly(lambda: tl.tune(lambda c: 0.0, space, metric="loss", mode="min", n_trials=1, progress=False))
    else:
        raises_clearly(lambda: tl.create_study(space, metric="loss", mode="min"))


# -- configurations and arguments (about 60) --------------------------------------------------------------
BAD_CONFIGS = [
    {}, {"x": 0.5}, {"x": 2.0, "k": "a", "n": 1}, {"x": -0.1, "k": "a", "n": 1}, {"x": "0.5", "k": "a", "n": 1},
    {"x": 0.5, "k": "c", "n": 1}, {"x": 0.5, "k": "a", "n": 4}, {"x": 0.5, "k": "a", "n": 1.5},
    {"x": 0.5, "k": "a", "n": 1, "extra": 1}, {"x": math.nan, "k": "a", "n": 1}, {"x": None, "k": "a", "n": 1},
    {"x": [0.5], "k": "a", "n": 1}, {"x": 0.5, "k": 1, "n": 1}, {"x": 0.5, "k": "a", "n": "1"},
    {"x": math.inf, "k": "a", "n": 1}, "config", None, [0.5, "a", 1], 42, {"X": 0.5, "k": "a", "n": 1},
]


@pytest.fixture(scope="module")
def shared_study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/f.db"
    made = tl.create_study(GOOD_SPACE, metric="loss", mode="min", name="fuzz", storage=url, seed=0)
    made.tell(made.ask(), 0.5)
    return made


@pytest.fixture
def study(shared_study):
    """One stored study that every malformed input is thrown at; after each, it is as it was."""
    yield shared_study
    after = tl.load_study("fuzz", storage=shared_study.storage.url).trials
    assert [(t.number, t.state, t.value) for t in after] == [(0, TrialState.COMPLETED, 0.5)]


@pytest.mark.parametrize("config", BAD_CONFIGS, ids=[f"config{i}" for i in range(len(BAD_CONFIGS))])
@pytest.mark.parametrize("entry", ["enqueue", "tell", "tune-enqueue"])
def test_bad_configs(study, config, entry):
    before = len(study.trials)
    if entry == "enqueue":
        raises_clearly(lambda: study.enqueue(config))
    elif entry == "tell":
        raises_clearly(lambda: study.tell(config=config, value=0.1))
    else:
        raises_clearly(lambda: tl.tune(lambda c: 0.0, GOOD_SPACE, metric="loss", mode="min", n_trials=3,
                                       storage=study.storage, name="fuzz", enqueue=[config], progress=False))
    assert len(study.trials) == before


BAD_TUNE_ARGUMENTS = [
    {"metric": ""}, {"metric": 3}, {"metric": ["a", "a"]}, {"mode": "maximise"}, {"mode": None},
    {"mode": ["min", "max"]}, {"n_trials": 0}, {"n_trials": -1}, {"n_trials": 2.5}, {"n_trials": True},
    {"timeout": -1}, {"timeout": math.nan}, {"target": "high"}, {"patience": 0}, {"max_failures": 0},
    {"workers": 0}, {"workers": "2"}, {"executor": "gpu-farm"}, {"executor": "inline", "workers": 2},
    {"trial_timeout": 0}, {"trial_timeout": "1"}, {"searcher": "magic"}, {"scheduler": "magic"},
    {"name": "has space"}, {"name": ""}, {"seed": -1}, {"seed": 1.5}, {"storage": 3},
    {"executor_options": {"bogus": 1}, "executor": "processes", "workers": 2}, {"n_trials": None},
]


@pytest.mark.parametrize("arguments", BAD_TUNE_ARGUMENTS, ids=[f"args{i}" for i in range(len(BAD_TUNE_ARGUMENTS))])
def test_bad_tune_arguments(arguments):
    options = {"metric": "loss", "mode": "min", "n_trials": 2, "progress": False, **arguments}
    raises_clearly(lambda: tl.tune(lambda c: 0.0, GOOD_SPACE, **options))


# -- storage URLs (30) ---------------------------------------------------------------------------------------
BAD_URLS = [
    "", " ", "sqlite:", "sqlite:/", "sqlite://", "sqlite://relative.db", "sqlite:///", "sqlite:///:memory:",
    "sqlite:////no/such/dir/x.db", "SQLITE", "x.db", "tunelab.sqlite", "http://example.com/db", "mysql://u@h/db",
    "postgresql://", "postgresql://nobody@127.0.0.1:1/none", "postgres://nobody@127.0.0.1:1/none",
    "postgresql+psycopg://nobody@127.0.0.1:1/none", "postgresql://user@[broken/db", "ftp://x", "://",
    "memory://extra", 0, 1.5, [], {}, b"sqlite:///x.db", object(), "sqlite:///{dir}", "file:///tmp/x.db",
]


@pytest.mark.parametrize("url", BAD_URLS, ids=[f"url{i}" for i in range(len(BAD_URLS))])
def test_bad_urls(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = url.replace("{dir}", str(tmp_path)) if isinstance(url, str) else url
    raises_clearly(lambda: open_storage(url).list_studies())


# -- command lines (40) ------------------------------------------------------------------------------------
BAD_COMMANDS = [
    [], ["nonsense"], ["show"], ["show", "ghost"], ["show", "fuzz", "--limit", "x"], ["show", "fuzz", "--sort", "size"],
    ["export", "fuzz", "--format", "xml"], ["export"], ["delete"], ["studies", "--storage", "mysql://x"],
    ["studies", "--storage", "sqlite:///no/such/dir.db"], ["worker"], ["worker", "--study", "fuzz"],
    ["worker", "--study", "fuzz", "--objective", ""], ["worker", "--study", "fuzz", "--objective", "nomodule:f"],
    ["worker", "--study", "fuzz", "--objective", "math:nothing"], ["worker", "--study", "fuzz", "--objective", "math:pi"],
    ["worker", "--study", "fuzz", "--objective", "not a path"], ["worker", "--study", "fuzz", "--objective", "1x:f"],
    ["worker", "--study", "ghost", "--objective", "math:sqrt"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--n-trials", "0"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--n-trials", "many"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--workers", "0"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--max-retries", "-1"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--stale-after", "0"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--stale-after", "5"],  # under two heartbeats
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--trial-timeout", "-5"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt", "--executor", "cloud", "--n-trials", "2"],
    ["worker", "--study", "fuzz", "--objective", "math:sqrt"], ["migrate", "--storage", "mysql://x"],
    ["migrate", "--storage", ""], ["migrate", "extra"], ["demo", "--trials", "0"], ["demo", "--workers", "-2"],
    ["show", "fuzz", "--bogus"], ["--storage"], ["studies", "--storage"], ["run"], ["run", "/no/such/file.yaml"],
    ["delete", "ghost", "--yes"], ["export", "ghost"],
]


@pytest.mark.parametrize("argv", BAD_COMMANDS, ids=[f"cli{i}" for i in range(len(BAD_COMMANDS))])
def test_bad_command_lines(argv, study, monkeypatch, tmp_path):
    monkeypatch.setenv("TUNELAB_STORAGE", study.storage.url)
    monkeypatch.chdir(tmp_path)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse --help style exits are fine; tracebacks are not
            code = exit_.code
    assert code != 0 or argv == []
    assert "Traceback" not in err.getvalue() + out.getvalue()


# -- corrupted rows (25) -----------------------------------------------------------------------------------
CORRUPTIONS = [
    ("tunelab_trials", "state", "'bogus'"), ("tunelab_trials", "config", "'not json'"),
    ("tunelab_trials", "config", "'[1, 2]'"), ("tunelab_trials", "config", "'\"text\"'"),
    ("tunelab_trials", "config", "'{\"x\": '"), ("tunelab_trials", "metrics", "'[1]'"),
    ("tunelab_trials", "metrics", "'nope'"), ("tunelab_trials", "user_attrs", "'5'"),
    ("tunelab_trials", "system_attrs", "'[]'"), ("tunelab_trials", "system_attrs", "'{'"),
    ("tunelab_trials", "state", "'RUNNING!'"), ("tunelab_trials", "value", "'high'"),
    ("tunelab_studies", "space", "'garbage'"), ("tunelab_studies", "space", "'[]'"),
    ("tunelab_studies", "space", "'{\"x\": {\"type\": \"warp\"}}'"), ("tunelab_studies", "metrics", "'loss'"),
    ("tunelab_studies", "modes", "'{}'"), ("tunelab_studies", "settings", "'[1]'"),
    ("tunelab_studies", "settings", "'{\"searcher\": {\"name\": \"magic\"}}'"),
    ("tunelab_studies", "metrics", "'[]'"), ("tunelab_reports", "metrics", "'oops'"),
    ("tunelab_reports", "metrics", "'[1, 2]'"), ("tunelab_reports", "metrics", "'{\"loss\": '"),
    ("tunelab_meta", "value", "'two'"), ("tunelab_studies", "modes", "'[\"sideways\"]'"),
    ("tunelab_studies", "modes", "'not json'"), ("tunelab_studies", "modes", "'[]'"),
    ("tunelab_studies", "created_at", "'yesterday'"),
]


@pytest.fixture(scope="module")
def healthy_database(tmp_path_factory):
    path = tmp_path_factory.mktemp("healthy") / "c.db"
    made = tl.create_study(GOOD_SPACE, metric="loss", mode="min", name="c", storage=f"sqlite:///{path}", seed=0)
    trial = made.ask()
    trial.report(1, loss=0.7)
    made.tell(trial, 0.5)
    made.storage.close()
    return path


@pytest.mark.parametrize("table, column, value", CORRUPTIONS, ids=[f"{t}.{c}={v}" for t, c, v in CORRUPTIONS])
def test_corrupted_rows_give_clear_errors(table, column, value, tmp_path, healthy_database):
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    shutil.copy(healthy_database, path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {table} SET {column} = {value}")
    def use():
        assert tl.load_study("c", storage=url).trials
        tl.tune(lambda c: c["x"], GOOD_SPACE, metric="loss", mode="min", n_trials=2, storage=url, name="c",
                progress=False)
        raise AssertionError("the corruption went unnoticed")
    try:
        use()
    except Exception as err:  # noqa: BLE001
        clear(err)
    err, out = io.StringIO(), io.StringIO()
    for command in (["show", "c"], ["studies"]):
        with redirect_stderr(err), redirect_stdout(out):
            code = main([*command, "--storage", url])
        assert code in (0, 2) and "Traceback" not in err.getvalue(), command


# -- objectives that return nonsense (30, in one study) -------------------------------------------------------
BAD_RESULTS = [
    "0.5", "", None, [], [0.1], (0.1, 0.2), {}, {"accuracy": 0.5}, {"loss": "low"}, {"loss": None},
    {"loss": [1]}, {"loss": {}}, math.nan, math.inf, -math.inf, {"loss": math.nan}, object(), 1 + 2j,
    np.array([1.0, 2.0]), b"0.1", {"loss": b"x"}, {1: 0.5}, set(), {"loss": np.nan}, lambda: 0.1,
    Exception("not raised"), type, {"loss": 1 + 1j}, ..., {"loss": object()},
]


def returns_nonsense(config, trial):
    return BAD_RESULTS[trial.number]


def test_objectives_returning_nonsense_fail_only_their_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = tl.tune(returns_nonsense, GOOD_SPACE, metric="loss", mode="min", n_trials=len(BAD_RESULTS),
                    max_failures=None, storage=url, name="nonsense", seed=0, executor="inline", progress=False)
    trials = tl.load_study("nonsense", storage=url).trials
    assert len(trials) == len(BAD_RESULTS) == len({t.number for t in trials})
    for trial in trials:
        assert trial.state is TrialState.FAILED, (trial.number, BAD_RESULTS[trial.number], trial.state)
        assert trial.error and len(trial.error) > 10
    good = tl.tune(lambda c: c["x"], GOOD_SPACE, metric="loss", mode="min", n_trials=len(BAD_RESULTS) + 2,
                   storage=url, name="nonsense", executor="inline", progress=False)  # the study goes on
    assert sum(t.state is TrialState.COMPLETED for t in good.trials) == 2


def test_there_are_over_200_cases():
    total = (len(BAD_DISTRIBUTIONS) + 2 * len(BAD_SPACES) + 3 * len(BAD_CONFIGS) + len(BAD_TUNE_ARGUMENTS)
             + len(BAD_URLS) + len(BAD_COMMANDS) + len(CORRUPTIONS) + len(BAD_RESULTS))
    assert total >= 200, total
