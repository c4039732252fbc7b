"""The shell face as a new user meets it: narrow terminals, pipes, an ASCII output encoding, a
mistyped study name, a bad output path, a storage from the environment. Each command runs as a
user runs it, in a subprocess, and is read by its output and exit code."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import tunelab as tl

#: Values that rich would have cut to '0.9…' on a narrow terminal.
VALUES = [0.9683839, 0.9543209, 0.9508122]
SPACE = {"learning_rate": tl.loguniform(1e-4, 1.0), "n_estimators": tl.randint(10, 500),
         "max_depth": tl.randint(1, 10), "subsample": tl.uniform(0.1, 1.0),
         "max_features": tl.choice(["sqrt", "log2", "none"]), "min_samples_leaf": tl.randint(1, 20)}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cli(*args, cwd, env=None, stdout=subprocess.PIPE):
    """The command, with `env` added to (None: taken out of) the environment; its result as text."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    environment.pop("TUNELAB_STORAGE", None)
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=300, env=environment)


def text(stream: bytes) -> str:
    return ANSI.sub("", stream.decode("utf-8"))


@pytest.fixture()
def storage(tmp_path):
    """A study of six parameters (its trials table is wider than 80 columns) and one named in
    two scripts, with non-ASCII values."""
    url = f"sqlite:///{tmp_path / 'tunelab.db'}"
    study = tl.create_study(SPACE, metric="accuracy", mode="max", name="wide", storage=url, seed=0)
    for value in VALUES:
        study.tell(study.ask(), value)
    names = tl.create_study({"kind": tl.choice(["ä", "日本"])}, metric="Verlust", mode="min", name="étude-日本",
                            storage=url, seed=0)
    for value in (0.25, 0.5):
        names.tell(names.ask(), value)
    return url


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_show_studies_and_compare_never_cut_a_value_short_on_a_narrow_width(storage, tmp_path, terminal):
    # TTY_COMPATIBLE=1 makes rich take the output for a terminal, as it is when a user types the command
    env = {"COLUMNS": "80", "TTY_COMPATIBLE": "1" if terminal else "0"}
    for args in (("show", "wide"), ("studies",), ("compare", "wide", "étude-日本")):
        result = cli(*args, "--storage", storage, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        out = text(result.stdout)
        assert "…" not in out, out
        assert f"{max(VALUES):.6g}" in out
    out = text(cli("show", "wide", "--storage", storage, cwd=tmp_path, env=env).stdout)
    for value in VALUES:
        assert f"{value:.6g}" in out
    for name in SPACE:
        assert name in out
    if terminal:  # in blocks of columns no wider than the terminal, each led by the trial's number
        assert max(len(line) for line in out.splitlines() if line.startswith(("┃", "│"))) <= 80
        assert sum(line.startswith("┃ # ") for line in out.splitlines()) >= 2


def test_a_study_name_that_is_not_there_is_said_with_the_close_ones(storage, tmp_path):
    for args in (("show", "wdie"), ("export", "WIDE"), ("delete", "wid", "--yes"), ("compare", "wide", "wdie")):
        result = cli(*args, "--storage", storage, cwd=tmp_path)
        assert result.returncode == 2
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "did you mean 'wide'?" in lines[0], lines
    far = cli("show", "xyz", "--storage", storage, cwd=tmp_path).stderr.decode()
    assert "its studies: wide, étude-日本" in far
    assert tl.load_study("wide", storage=storage)  # a misspelt delete deleted nothing


def test_an_output_file_that_cannot_be_written_is_one_line_before_any_work(storage, tmp_path):
    too_long = str(tmp_path / ("x" * 300 + ".csv"))
    for args in (("export", "wide", "-o", too_long), ("compare", "wide", "wide", "--html", too_long)):
        result = cli(*args, "--storage", storage, cwd=tmp_path)
        assert result.returncode == 2
        assert b"Traceback" not in result.stderr
        assert result.stderr.decode().count("\n") == 1 and "cannot write it" in result.stderr.decode()
    empty = cli("export", "wide", "-o", "", "--storage", storage, cwd=tmp_path)  # -o "$UNSET"
    assert empty.returncode == 2 and empty.stdout == b"" and b"-o needs a file name" in empty.stderr


def test_non_ascii_names_and_values_under_an_ascii_output_encoding(storage, tmp_path):
    ascii_output = {"PYTHONIOENCODING": "ascii"}
    for args in (("studies",), ("show", "étude-日本"), ("compare", "wide", "étude-日本")):
        result = cli(*args, "--storage", storage, cwd=tmp_path, env=ascii_output)
        assert result.returncode == 0, result.stderr
        assert b"Traceback" not in result.stderr
    shown = cli("show", "étude-日本", "--storage", storage, cwd=tmp_path, env=ascii_output).stdout.decode("ascii")
    assert "\\u65e5\\u672c" in shown  # a character the encoding lacks is escaped, not dropped
    # exported data is UTF-8 whatever the locale: the same bytes as the file -o writes
    piped = cli("export", "étude-日本", "--storage", storage, cwd=tmp_path, env=ascii_output)
    assert piped.returncode == 0, piped.stderr
    written = cli("export", "étude-日本", "-o", "out.csv", "--storage", storage, cwd=tmp_path, env=ascii_output)
    assert written.returncode == 0, written.stderr
    assert piped.stdout == (tmp_path / "out.csv").read_bytes()
    assert "日本" in piped.stdout.decode("utf-8")


@pytest.mark.parametrize("args", [("show", "wide"), ("studies",), ("export", "wide")])
def test_a_reader_that_went_away_ends_the_command_quietly_with_status_0(storage, tmp_path, args):
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has its lines: every write now meets a closed pipe
    try:
        result = cli(*args, "--storage", storage, cwd=tmp_path, stdout=write)
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""


def test_a_storage_from_the_environment_is_named_as_such_when_it_is_wrong(storage, tmp_path):
    wrong = cli("studies", cwd=tmp_path, env={"TUNELAB_STORAGE": "sqlite:///elsewhere.db"})
    assert wrong.returncode == 2 and "$TUNELAB_STORAGE=sqlite:///elsewhere.db" in wrong.stderr.decode()
    typed = cli("studies", "--storage", "sqlite:///elsewhere.db", cwd=tmp_path, env={"TUNELAB_STORAGE": storage})
    assert typed.returncode == 2 and "TUNELAB_STORAGE" not in typed.stderr.decode()
    # set but empty (export TUNELAB_STORAGE=) is unset: the default ./tunelab.db, here the fixture's
    empty = cli("studies", cwd=tmp_path, env={"TUNELAB_STORAGE": ""})
    assert empty.returncode == 0, empty.stderr
    assert "wide" in text(empty.stdout)


@pytest.mark.parametrize("metric", ["acc[val]", "loss[/]", "[bold]"])
def test_the_progress_bar_shows_a_metric_name_with_square_brackets_as_it_is(metric, capsys):
    study = tl.tune(lambda config: config["x"] ** 2, {"x": tl.uniform(-1.0, 1.0)}, metric=metric, mode="min",
                    n_trials=2, seed=0, progress=True)
    assert len(study.trials) == 2
    assert f"best {metric}:" in capsys.readouterr().err


def test_memory_storage_is_refused_by_a_command_that_reads_and_not_offered_by_the_demo(tmp_path):
    for args in (("studies",), ("show", "demo"), ("export", "demo"), ("compare", "a", "b")):
        result = cli(*args, "--storage", "memory", cwd=tmp_path)
        assert result.returncode == 2
        assert "memory storage" in result.stderr.decode() and "--storage sqlite:///" in result.stderr.decode()
    demo = cli("demo", "--trials", "1", "--workers", "1", "--storage", "memory", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "tunelab show demo" not in text(demo.stdout) and "memory only" in text(demo.stdout)


def test_a_driver_s_message_of_several_lines_is_said_on_one(tmp_path):
    pytest.importorskip("psycopg")
    # nothing listens on port 1: PostgreSQL's driver answers in two lines ("Is the server running ...")
    result = cli("studies", "--storage", "postgresql://user:s3cret@127.0.0.1:1/db", cwd=tmp_path)
    assert result.returncode == 2
    said = result.stderr.decode()
    assert said.count("\n") == 1 and said.startswith("tunelab: error: cannot open storage"), said
    assert "s3cret" not in said


def test_the_delete_question_does_not_show_the_database_password(postgres_url, tmp_path):
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=postgres_url, name="s")
    with_password = postgres_url.replace("@", ":s3cret@", 1)  # the test server trusts any password
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    asked = subprocess.run([sys.executable, "-m", "tunelab.cli", "delete", "s", "--storage", with_password],
                           cwd=tmp_path, input=b"n\n", capture_output=True, timeout=120, env=environment)
    assert asked.returncode == 1 and b"not deleted" in asked.stdout
    assert b"delete study 's'" in asked.stdout and b"s3cret" not in asked.stdout and b":***@" in asked.stdout


def test_export_writes_the_format_its_output_file_is_named_for(storage, tmp_path):
    for name in ("trials.xlsx", "trials.json", "trials.csv"):
        result = cli("export", "wide", "-o", name, "--storage", storage, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "trials.xlsx").read_bytes()[:2] == b"PK"  # an Excel workbook is a zip, not CSV text
    assert (tmp_path / "trials.json").read_text(encoding="utf-8").lstrip().startswith("{")
    assert (tmp_path / "trials.csv").read_text(encoding="utf-8").startswith("number,")
    mismatch = cli("export", "wide", "--format", "csv", "-o", "other.xlsx", "--storage", storage, cwd=tmp_path)
    assert mismatch.returncode == 2 and b"--format is csv" in mismatch.stderr
    assert not (tmp_path / "other.xlsx").exists()


def test_a_worker_or_nas_show_for_a_mistyped_study_says_the_close_name(tmp_path):
    """tunelab worker and nas show said only "no study named 'dmeo'", where the other commands
    offer the close names."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="demo", storage=url)
    for args in (["worker", "--study", "dmeo", "--objective", "objectives:sleepy"], ["nas", "show", "dmeo"]):
        done = cli(*args, "--storage", url, cwd=tmp_path)
        assert done.returncode == 2 and "did you mean 'demo'?" in text(done.stderr), (args, done.stderr)
