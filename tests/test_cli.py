"""The shell face, run as a user runs it: in a subprocess, reading its output and exit code."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys

import pytest

import tunelab as tl

from objectives import SPACE, quadratic


def cli(*args, cwd, stdin=None, columns=None):
    env = None if columns is None else {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=300, env=env)


@pytest.fixture()
def db(tmp_path):
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    tl.tune(quadratic, SPACE, metric="loss", mode="min", n_trials=5, storage=storage, name="quad", seed=1,
            progress=False)
    return storage


def test_demo_tunes_a_real_model_and_says_how_to_inspect_it(tmp_path):
    result = cli("demo", "--trials", "4", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Best accuracy" in result.stdout and "tunelab show demo" in result.stdout
    study = tl.load_study("demo", storage=f"sqlite:///{tmp_path / 'tunelab.db'}")
    assert len(study.trials) == 4 and study.best.value > 0.85
    assert study.trials[0].config["n_estimators"] == 100  # the scikit-learn baseline goes first
    again = cli("demo", "--trials", "2", "--workers", "1", cwd=tmp_path)
    assert again.returncode == 0 and "demo-2" in again.stdout


def test_studies_lists_names_and_counts(db, tmp_path):
    result = cli("studies", "--storage", db, cwd=tmp_path)
    assert result.returncode == 0
    assert "quad" in result.stdout and "loss (min)" in result.stdout


def test_show_prints_the_best_trial_and_a_table(db, tmp_path):
    best = tl.load_study("quad", storage=db).best
    result = cli("show", "quad", "--storage", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"best: trial {best.number}" in result.stdout
    assert "completed" in result.stdout and "kind" in result.stdout


def test_show_names_the_failure_column_apart_from_a_metric_called_error(tmp_path):
    storage = f"sqlite:///{tmp_path / 'e.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="error", mode="min", storage=storage, name="e", seed=0)
    study.tell(study.ask(), 0.25)
    study.tell(study.ask(), state="failed", error="ValueError: diverged")
    result = cli("show", "e", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "state" in line)
    assert header.count("error") == 1 and "failure" in header
    assert "diverged" in result.stdout  # the message, in the failure column (wrapped to fit)


def test_show_gives_a_paused_trial_its_budget_and_the_time_it_ran(tmp_path):
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=storage, name="p", seed=0,
                            scheduler="asha", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    trial = study.ask()
    trial.report(trial.budget, loss=0.5)
    study.tell(trial)
    assert study.trials[0].state is tl.TrialState.PAUSED
    result = cli("show", "p", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "state" in line).strip("┃").split("┃")
    row = next(line for line in lines if "paused" in line and "│" in line).strip("│").split("│")
    cells = {h.strip(): c.strip() for h, c in zip(header, row)}
    assert cells["reached"] == "1" and cells["duration"].endswith("s")  # it ran, then waited at rung 1
    assert "ask/tell" in result.stdout


@pytest.mark.parametrize("limit", [[], ["--limit", "0"]])
def test_show_says_how_far_a_stopped_trial_got_not_how_far_it_was_meant_to(tmp_path, limit):
    """The default view reads trials without their reports (for huge studies); their last steps
    come from one query, so a trial pruned at epoch 3 of 9 shows 3 there too."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=storage, name="s", seed=0,
                            scheduler="asha", scheduler_options={"promotion": False},
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    trial = study.ask()
    for epoch in (1, 2, 3):
        trial.report(epoch, loss=1.0 / epoch)
    study.tell(trial, state="pruned")
    assert study.trials[0].budget == 9
    result = cli("show", "s", "--storage", storage, *limit, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "state" in line).strip("┃").split("┃")
    row = next(line for line in lines if "pruned" in line and "│" in line).strip("│").split("│")
    assert {h.strip(): c.strip() for h, c in zip(header, row)}["reached"] == "3"
    study.ask()  # running, nothing reported yet: it has reached nothing, not its budget
    lines = cli("show", "s", "--storage", storage, *limit, cwd=tmp_path).stdout.splitlines()
    row = next(line for line in lines if "running" in line and "│" in line).strip("│").split("│")
    assert {h.strip(): c.strip() for h, c in zip(header, row)}["reached"] == ""


@pytest.mark.parametrize("limit", [[], ["--limit", "0"]])
def test_show_lists_completed_trials_best_first_then_the_others_in_either_view(tmp_path, limit):
    """A trial pruned at epoch 1 has a low loss only because it was never run on: the full list
    (--limit 0) ranks it after the completed ones, as the default view does."""
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=storage, name="o", seed=0,
                            scheduler="fifo", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    pruned = study.ask()
    pruned.report(1, loss=0.1)
    study.tell(pruned, state="pruned")
    for loss in (0.5, 0.3):
        trial = study.ask()
        trial.report(9, loss=loss)
        study.tell(trial)
    result = cli("show", "o", "--storage", storage, *limit, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.strip("│").split("│") for line in result.stdout.splitlines() if "│" in line]
    assert [(int(row[0]), row[1].strip()) for row in rows] == [(2, "completed"), (1, "completed"), (0, "pruned")]


def test_export_and_plot_make_the_output_folder_and_refuse_a_folder_for_a_file(db, tmp_path):
    made = tmp_path / "new" / "deeper" / "quad.csv"
    result = cli("export", "quad", "--format", "csv", "-o", str(made), "--storage", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert made.read_text().startswith("number")
    for command in (("export", "quad", "--format", "csv"), ("plot", "quad", "--kind", "history")):
        refused = cli(*command, "-o", str(tmp_path), "--storage", db, cwd=tmp_path)
        assert refused.returncode == 2 and "is a folder; name a file in it" in refused.stderr
        assert "Traceback" not in refused.stderr
    svg = cli("plot", "quad", "-o", str(tmp_path / "p.svg"), "--storage", db, cwd=tmp_path)
    assert svg.returncode == 2 and "written as .html (self-contained) or .png" in svg.stderr
    assert not (tmp_path / "p.svg").exists()
    negative = cli("show", "quad", "--limit", "-1", "--storage", db, cwd=tmp_path)
    assert negative.returncode == 2 and "--limit is how many trials to list" in negative.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_writes_every_trial(db, tmp_path, fmt):
    out = tmp_path / f"quad.{fmt}"
    result = cli("export", "quad", "--format", fmt, "-o", str(out), "--storage", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = tl.load_study("quad", storage=db)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
        assert float(rows[0]["value"]) == pytest.approx(study.trials[0].value)
        assert rows[0]["params.kind"] == study.trials[0].config["kind"]
    else:
        doc = json.loads(out.read_text())
        assert doc["name"] == "quad" and len(doc["trials"]) == 5
        assert doc["trials"][0]["config"] == study.trials[0].config
        assert len(doc["trials"][0]["reports"]) == 3 and doc["environment"]["fingerprint"]


def test_export_to_stdout(db, tmp_path):
    result = cli("export", "quad", "--storage", db, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("number,state,value")


def test_delete_asks_then_deletes(db, tmp_path):
    refused = cli("delete", "quad", "--storage", db, cwd=tmp_path, stdin="n\n")
    assert refused.returncode == 1 and tl.load_study("quad", storage=db)
    result = cli("delete", "quad", "--yes", "--storage", db, cwd=tmp_path)
    assert result.returncode == 0
    with pytest.raises(tl.StudyNotFound):
        tl.load_study("quad", storage=db)


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["show"], "required: name"),
    (["show", "nope", "--storage", "{db}"], "no study named 'nope'"),
    (["export", "quad", "--format", "xml", "--storage", "{db}"], "invalid choice: 'xml'"),
    (["studies", "--storage", "mysql://x"], "not supported"),
    (["studies", "--storage", "sqlite:///does-not-exist.db"], "no tunelab database"),
    (["worker", "--study", "quad", "--objective", "objectives:quadratic", "--storage", "sqlite:///typo.db"],
     "no tunelab database"),
    (["demo", "--trials", "0"], "--trials must be at least 1"),
    (["demo", "--trials", "many"], "invalid int value"),
])
def test_wrong_arguments_give_one_line_and_exit_code_2(db, tmp_path, args, message):
    result = cli(*[a.format(db=db) for a in args], cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "typo.db").exists()  # no command makes an empty database where one was expected


def test_a_command_that_only_reads_leaves_another_application_s_database_as_it_was(tmp_path):
    other, empty = tmp_path / "other.db", tmp_path / "empty.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    empty.write_bytes(b"")
    for path in (other, empty):
        result = cli("studies", "--storage", f"sqlite:///{path}", cwd=tmp_path)
        assert result.returncode == 2 and "is not a tunelab database (no tunelab tables in it)" in result.stderr
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not switched to WAL
    assert empty.stat().st_size == 0


@pytest.mark.parametrize("command", [[], ["demo"], ["studies"], ["show"], ["export"], ["delete"]])
def test_help_everywhere(tmp_path, command):
    result = cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "usage: tunelab" in result.stdout


def test_console_script_is_installed(tmp_path):
    import shutil

    exe = shutil.which("tunelab") or str(__import__("pathlib").Path(sys.executable).with_name("tunelab"))
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("tunelab ")


def test_dashboard_on_a_port_in_use_or_a_host_that_does_not_resolve_says_so_in_one_line(tmp_path, capsys):
    pytest.importorskip("starlette")
    from tunelab.cli import main

    url = f"sqlite:///{tmp_path / 'd.db'}"
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="d")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["dashboard", "--port", str(taken.getsockname()[1]), "--storage", url]) == 2
    assert main(["dashboard", "--host", "no-such-host.invalid", "--storage", url]) == 2
    out = capsys.readouterr()
    assert "pick another --port" in out.err and "cannot resolve it" in out.err and "dashboard of" not in out.out


def test_show_and_compare_give_every_metric_of_a_study_with_several(tmp_path):
    storage = f"sqlite:///{tmp_path / 'm.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric=["accuracy", "latency"], mode=["max", "min"],
                            storage=storage, name="two", seed=0)
    for accuracy, latency in ((0.9, 5.0), (0.8, 1.0), (0.7, 3.0)):  # the last is beaten on both by the second
        study.tell(study.ask(), {"accuracy": accuracy, "latency": latency})
    result = cli("show", "two", "--storage", storage, cwd=tmp_path, columns=120)
    assert result.returncode == 0, result.stderr
    assert "two: accuracy (max), latency (min)" in result.stdout
    assert "Pareto front (no trial better on every metric): trials 0, 1" in result.stdout
    lines = result.stdout.splitlines()
    header = [h.strip() for h in next(line for line in lines if "state" in line).strip("┃").split("┃")]
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines if "completed" in line and "│" in line]
    assert header[:4] == ["#", "state", "accuracy", "latency"]
    assert [row[:4] for row in rows] == [["0", "completed", "0.9", "5"], ["1", "completed", "0.8", "1"],
                                         ["2", "completed", "0.7", "3"]]  # the front first
    compared = json.loads(cli("compare", "two", "two", "--json", "--storage", storage, cwd=tmp_path).stdout)
    assert compared["summary"][0] == ["metric"] + ["accuracy (max), latency (min); compared on accuracy"] * 2


def test_show_says_cancelled_for_a_trial_its_tuner_stopped(tmp_path):
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=storage, name="c", seed=0)
    study.tell(study.ask(), 0.5)
    running = study.ask()
    study.storage.cancel_trial(running.id, "cancelled: target=0.6 reached")  # what the tuner does to a running trial
    study.tell(study.ask(), state="failed", error="ValueError: boom")
    lines = cli("show", "c", "--storage", storage, cwd=tmp_path, columns=160).stdout.splitlines()
    states = {row[0].strip(): row[1].strip() for row in
              (line.strip("│").split("│") for line in lines if "│" in line)}
    assert states == {"0": "completed", "1": "cancelled", "2": "failed"}
    assert "c: loss (min), 1 cancelled, 1 completed, 1 failed; seed 0" in lines[0]  # the header counts them so too


def test_show_and_compare_print_square_brackets_as_they_are(tmp_path):
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    study = tl.create_study({"opt": tl.choice(["a[/]", "[red]b"]), "x[0]": tl.uniform(0, 1)}, metric="loss",
                            mode="min", storage=storage, name="b", seed=0)
    study.tell(study.ask({"opt": "a[/]", "x[0]": 0.5}), 0.5)
    study.tell(study.ask({"opt": "[red]b", "x[0]": 0.25}), 0.25)
    study.tell(study.ask(), state="failed", error="KeyError: '[/bold]' in the data")
    for args in (["show", "b"], ["compare", "b", "b"]):
        result = cli(*args, "--storage", storage, cwd=tmp_path, columns=250)
        assert result.returncode == 0, result.stderr
        assert "[red]b" in result.stdout or "a[/]" in result.stdout, args
    shown = cli("show", "b", "--storage", storage, cwd=tmp_path, columns=250).stdout
    assert "a[/]" in shown and "[red]b" in shown and "x[0]" in shown and "'[/bold]'" in shown


def test_show_tells_a_parameter_apart_from_a_metric_of_the_same_name(tmp_path):
    storage = f"sqlite:///{tmp_path / 'same.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1), "cost": tl.uniform(5, 6)}, metric="x", mode="min",
                            storage=storage, name="same", seed=0)
    study.tell(study.ask({"x": 0.5, "cost": 5.5}), 0.25)
    lines = cli("show", "same", "--storage", storage, cwd=tmp_path, columns=200).stdout.splitlines()
    header = [h.strip() for h in next(line for line in lines if "state" in line).strip("┃").split("┃")]
    assert header.count("x") == 1 and "params.x" in header and header.count("cost") == 1 and "params.cost" in header


def test_the_end_of_a_run_counts_cancelled_trials_apart_from_failed_ones():
    """A trial its tuner stopped (a budget, Ctrl-C) said nothing of its configuration: the run's
    summary counted it as failed while the trial table showed it as cancelled."""
    from tunelab.commands.core import counts_text

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0)
    done, stopped, broken = study.ask(), study.ask(), study.ask()
    study.tell(done, 0.5)
    study.storage.cancel_trial(stopped.id, "cancelled: interrupted")
    study.tell(broken, state="failed")
    assert counts_text(study) == "1 cancelled, 1 completed, 1 failed"


def test_studies_and_show_count_cancelled_trials_apart_and_give_a_front_for_several_metrics(tmp_path):
    """`show`'s header and `studies` counted a cancelled trial as failed (the trial table said
    cancelled), and `studies` gave a study of several metrics the first one's best alone."""
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    two = tl.create_study({"x": tl.uniform(0, 1)}, metric=["accuracy", "latency"], mode=["max", "min"],
                          storage=storage, name="two", seed=0)
    for accuracy, latency in ((0.9, 5.0), (0.8, 1.0), (0.7, 3.0)):  # the last is beaten on both by the second
        two.tell(two.ask(), {"accuracy": accuracy, "latency": latency})
    two.storage.cancel_trial(two.ask().id, "cancelled: interrupted")
    two.tell(two.ask(), state="failed", error="ValueError: boom")
    one = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=storage, name="one", seed=0)
    one.tell(one.ask(), 0.25)
    shown = cli("show", "two", "--storage", storage, cwd=tmp_path, columns=200)
    assert "1 cancelled, 3 completed, 1 failed; seed 0" in shown.stdout, shown.stderr
    assert "1 cancelled" in cli("show", "two", "--limit", "2", "--storage", storage, cwd=tmp_path).stdout
    listed = cli("studies", "--storage", storage, cwd=tmp_path, columns=200)
    lines = listed.stdout.splitlines()
    header = [h.strip() for h in next(line for line in lines if "created" in line).strip("┃").split("┃")]
    rows = {r[0]: dict(zip(header, r)) for r in ([c.strip() for c in line.strip("│").split("│")]
                                                 for line in lines if line.startswith("│"))}
    assert header[3:] == ["trials", "completed", "failed", "cancelled", "best"], listed.stderr
    assert [rows["two"][c] for c in header[3:]] == ["5", "3", "1", "1", "2 on front"]
    assert [rows["one"][c] for c in header[3:]] == ["1", "1", "0", "0", "0.25"]
    assert "Pareto front" in listed.stdout
    two.storage.delete_study("two")  # none cancelled: no column for them
    assert "cancelled" not in cli("studies", "--storage", storage, cwd=tmp_path, columns=200).stdout
