"""A database written by tunelab's first schema (version 1, built here by hand with its own DDL)
opens in this tunelab: migrated in place, its trials kept, its budget counted as before."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

import tunelab as tl
from tunelab.cli import main
from tunelab.errors import StorageError
from tunelab.storage import schema
from tunelab.storage.sql import SQLStorage
from tunelab.trial import TrialState

SPACE = {"x": tl.uniform(0.0, 1.0)}

VERSION_1 = """
CREATE TABLE tunelab_meta (key VARCHAR(64) NOT NULL, value VARCHAR(255) NOT NULL, PRIMARY KEY (key));
CREATE TABLE tunelab_studies (
    id {SERIAL} NOT NULL, name VARCHAR(255) NOT NULL, created_at FLOAT NOT NULL, space JSON NOT NULL,
    metrics JSON NOT NULL, modes JSON NOT NULL, seed BIGINT NOT NULL, settings JSON NOT NULL,
    environment JSON NOT NULL, user_attrs JSON NOT NULL, next_number INTEGER NOT NULL,
    PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE tunelab_trials (
    id {SERIAL} NOT NULL, study_id INTEGER NOT NULL, number INTEGER NOT NULL, state VARCHAR(16) NOT NULL,
    config JSON NOT NULL, seed BIGINT NOT NULL, budget FLOAT, value FLOAT, metrics JSON, created_at FLOAT NOT NULL,
    started_at FLOAT, finished_at FLOAT, heartbeat_at FLOAT, owner VARCHAR(255), error TEXT, traceback TEXT,
    user_attrs JSON NOT NULL, system_attrs JSON NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_trials_study_number UNIQUE (study_id, number),
    FOREIGN KEY(study_id) REFERENCES tunelab_studies (id) ON DELETE CASCADE);
CREATE INDEX ix_trials_study_state ON tunelab_trials (study_id, state);
CREATE INDEX ix_trials_study_value ON tunelab_trials (study_id, value);
CREATE TABLE tunelab_reports (
    id {SERIAL} NOT NULL, study_id INTEGER NOT NULL, trial_id INTEGER NOT NULL, step FLOAT NOT NULL,
    metrics JSON NOT NULL, time FLOAT NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(study_id) REFERENCES tunelab_studies (id) ON DELETE CASCADE,
    FOREIGN KEY(trial_id) REFERENCES tunelab_trials (id) ON DELETE CASCADE);
CREATE INDEX ix_reports_study_id ON tunelab_reports (study_id, id);
CREATE INDEX ix_reports_trial ON tunelab_reports (trial_id, step);
INSERT INTO tunelab_meta VALUES ('schema_version', '1')
"""


def write_version_1(url: str) -> str:
    """A study of four trials as version 1 wrote it (SQLite or PostgreSQL, whose ids were SERIAL):
    one completed, one cancelled, one abandoned and its completed retry (the budget then counted
    two of them). Returns the URL."""
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    serial = "INTEGER" if url.startswith("sqlite") else "SERIAL"
    with engine.begin() as conn:
        for statement in VERSION_1.replace("{SERIAL}", serial).split(";"):
            conn.exec_driver_sql(statement)
        conn.execute(text("INSERT INTO tunelab_studies (name, created_at, space, metrics, modes, seed, settings, "
                          "environment, user_attrs, next_number) VALUES ('old', 1000.0, :space, '[\"loss\"]', "
                          "'[\"min\"]', 7, :settings, '{}', '{}', 4)"),
                     {"space": json.dumps(tl.Space(SPACE).to_json()),
                      "settings": json.dumps({"searcher": {"name": "random"}, "scheduler": {"name": "fifo"}})})
        rows = [(0, "completed", 0.25, "{}", None), (1, "failed", None, '{"cancelled": true}', "cancelled: stop"),
                (2, "failed", None, "{}", "abandoned: gone"), (3, "completed", 0.5, '{"retry_of": 2}', None)]
        for number, state, value, attrs, error in rows:
            conn.execute(text("INSERT INTO tunelab_trials (study_id, number, state, config, seed, value, metrics, "
                              "created_at, started_at, finished_at, error, user_attrs, system_attrs) VALUES (1, :number, :state, "
                              ":config, :seed, :value, :metrics, 1000.0, 1000.0, 1001.0, :error, '{}', :attrs)"),
                         {"number": number, "state": state, "config": json.dumps({"x": value or 0.9}),
                          "seed": 40 + number, "value": value, "error": error, "attrs": attrs,
                          "metrics": json.dumps({"loss": value} if value is not None else {})})
        conn.execute(text("INSERT INTO tunelab_reports (study_id, trial_id, step, metrics, time) VALUES (1, 1, 1, "
                          "'{\"loss\": 0.3}', 1000.5)"))
    engine.dispose()
    return url


def version_1_database(path: Path) -> str:
    return write_version_1(f"sqlite:///{path}")


def assert_migrated_and_continues(url: str) -> None:
    """The trials of write_version_1 as they were, the budget counted as version 1 counted it,
    and the study goes on."""
    study = tl.load_study("old", storage=url)
    assert [(t.number, t.state, t.value) for t in study.trials] == [
        (0, TrialState.COMPLETED, 0.25), (1, TrialState.FAILED, None), (2, TrialState.FAILED, None),
        (3, TrialState.COMPLETED, 0.5)]
    assert study.trials[0].reports[0].metrics == {"loss": 0.3}
    assert [(t.held, t.running_since, t.duration) for t in study.trials] == [(1.0, None, 1.0)] * 4  # ran start to end
    assert study.counted_trials() == 2  # as version 1 counted n_trials: not cancelled, not re-queued
    assert study.best.number == 0
    continued = tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=4, storage=url,
                        name="old", executor="inline", progress=False)
    assert sum(t.state is TrialState.COMPLETED for t in continued.trials) == 4
    assert len(continued.trials) == 6


def test_a_version_1_study_opens_migrated_and_continues(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    tl.load_study("old", storage=url).storage.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT value FROM tunelab_meta").fetchall() == [(str(schema.SCHEMA_VERSION),)]
        assert [row[0] for row in conn.execute("SELECT counted FROM tunelab_trials ORDER BY number")] == [1, 0, 0, 1]
        indices = {row[1] for row in conn.execute("PRAGMA index_list(tunelab_trials)")}
        SQLStorage(f"sqlite:///{tmp_path / 'new.db'}").close()
        with sqlite3.connect(tmp_path / "new.db") as fresh:  # the same indices as a new database, no more
            assert indices == {row[1] for row in fresh.execute("PRAGMA index_list(tunelab_trials)")}
        assert "ix_trials_study_state_value_number" in indices
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT state, count(*) FROM tunelab_trials WHERE study_id = 1 "
                            "GROUP BY state").fetchall()
        assert "COVERING INDEX ix_trials_study_state_" in str(plan)  # counts by state read an index, not the table
        storage = SQLStorage(url)
        pick = storage._driver_statement("pick_waiting", {"study_id": 1})
        storage.close()
        plan = conn.execute(f"EXPLAIN QUERY PLAN {pick.sql}", pick.bind({"study_id": 1})).fetchall()
        assert "COVERING INDEX ix_trials_study_state_value_number" in str(plan)  # claiming a waiting trial scans nothing
    assert_migrated_and_continues(url)


def test_without_migrating_the_message_names_the_command(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    with pytest.raises(StorageError, match=r"schema version 1.*tunelab migrate --storage sqlite:///"):
        SQLStorage(url, migrate=False)
    with sqlite3.connect(tmp_path / "old.db") as conn:  # untouched
        assert conn.execute("SELECT value FROM tunelab_meta").fetchall() == [("1",)]


def test_migrate_command(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    env_path = str(Path(__file__).resolve().parents[1])
    run = [sys.executable, "-m", "tunelab.cli", "migrate", "--storage", url]
    first = subprocess.run(run, capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert first.returncode == 0, first.stderr
    assert f"migrated from schema version 1 to {schema.SCHEMA_VERSION}" in first.stdout
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["migrate", "--storage", url]) == 0
    assert "nothing to do" in out.getvalue()
    assert main(["migrate", "--storage", f"sqlite:///{tmp_path / 'typo.db'}"]) == 2  # no new empty database
    assert not (tmp_path / "typo.db").exists()


def test_a_broken_version_row_is_a_clear_error(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("UPDATE tunelab_meta SET value = 'banana'")
    with pytest.raises(StorageError, match="schema_version"):
        SQLStorage(url)


def test_a_version_1_study_on_postgresql_asks_for_migrate_then_opens(postgres_url):
    url = write_version_1(postgres_url)
    driver_url = url.replace("postgresql://", "postgresql+psycopg://")
    with pytest.raises(StorageError, match=r"schema version 1.*run: tunelab migrate --storage postgresql"):
        SQLStorage(driver_url, migrate=False)
    engine = sqlalchemy.create_engine(driver_url)
    with engine.connect() as conn:  # untouched by the refusal
        assert conn.execute(text("SELECT value FROM tunelab_meta")).all() == [("1",)]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["migrate", "--storage", url]) == 0
    assert f"migrated from schema version 1 to {schema.SCHEMA_VERSION}" in out.getvalue()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT counted FROM tunelab_trials ORDER BY number")).scalars().all() == [1, 0, 0, 1]
        indices = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'tunelab_trials'"))
                      .scalars())
        assert "ix_trials_study_state_value_number" in indices
    engine.dispose()
    SQLStorage(driver_url, migrate=False).close()  # now at the current version: no refusal
    assert_migrated_and_continues(url)
