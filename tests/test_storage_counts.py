"""Counts of trials by state with the cancelled ones apart from the failed, answered by the storage
(memory, SQLite, PostgreSQL) without reading the trials: a cancelled trial is stored as a failed one
flagged in its system attributes, which counting by state alone could not tell apart."""

from __future__ import annotations

import sqlite3

from tunelab.storage.sql import SQLStorage
from tunelab.trial import TrialState

from test_storage import record, seed_for, sqlite_url, storage  # noqa: F401 (storage: the fixture)


def _fill(storage, study_id: int) -> None:
    """A completed trial, one failed by its own doing, one cancelled, one retry (not counted towards
    the budget, like a cancelled one) that failed by its own doing, and one running."""
    done, broken, stopped, running = (storage.create_trial(study_id, {"x": i / 10, "k": "a"}, seed_for)
                                      for i in range(4))
    storage.finish_trial(done.id, TrialState.COMPLETED, value=0.5, metrics={"loss": 0.5})
    storage.finish_trial(broken.id, TrialState.FAILED, error="ValueError: boom")
    assert storage.cancel_trial(stopped.id, "cancelled: target reached")
    _, retry = storage.abandon_trial(running.id, "abandoned: its process died", {"retry_of": running.number})
    storage.claim_waiting(study_id, "me")
    storage.finish_trial(retry.id, TrialState.FAILED, error="ValueError: boom again")
    storage.create_trial(study_id, {"x": 0.9, "k": "b"}, seed_for)


def test_count_states_gives_the_cancelled_trials_apart_from_the_failed(storage):
    study, other = storage.create_study(record()), storage.create_study(record("other"))
    _fill(storage, study.id)
    assert storage.count_states(study.id) == {"completed": 1, "failed": 3, "cancelled": 1, "running": 1}
    assert storage.count_states(other.id) == {}
    only_cancelled = storage.create_trial(other.id, {"x": 0.1, "k": "a"}, seed_for)
    storage.cancel_trial(only_cancelled.id, "cancelled: interrupted")
    assert storage.count_states(other.id) == {"cancelled": 1}  # no failed trial left to count


def test_study_summaries_give_the_cancelled_trials_apart_too(storage):
    study, other, empty = (storage.create_study(record(name)) for name in ("s", "other", "empty"))
    _fill(storage, study.id)
    failed = storage.create_trial(other.id, {"x": 0.1, "k": "a"}, seed_for)
    storage.finish_trial(failed.id, TrialState.FAILED, error="boom")
    summaries = {s.name: s for s in storage.list_studies()}
    assert summaries["s"].counts == {"completed": 1, "failed": 3, "cancelled": 1, "running": 1}
    assert summaries["s"].n_trials == 6
    assert summaries["other"].counts == {"failed": 1} and summaries["empty"].counts == {}


def test_the_count_of_cancelled_trials_reads_the_failed_trials_of_a_study_through_the_index(tmp_path):
    """The flag is in a JSON column, which no index holds; the query asks for the failed trials of
    named studies, so that SQLite reads those rows alone, never the whole table."""
    from sqlalchemy.dialects import sqlite

    from tunelab.storage.statements import CANCELLED_FLAG, _T

    store = SQLStorage(sqlite_url(tmp_path / "t.db"))
    study = store.create_study(record())
    _fill(store, study.id)
    store.close()
    flag = str(CANCELLED_FLAG.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert _T.system_attrs.name in flag
    conn = sqlite3.connect(tmp_path / "t.db")
    for question in (f"SELECT count(*) FROM tunelab_trials WHERE study_id = 1 AND state = 'failed' AND {flag}",
                     f"SELECT study_id, count(*) FROM tunelab_trials WHERE study_id IN (1, 2) AND state = 'failed' "
                     f"AND {flag} GROUP BY study_id"):
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + question))
        assert "USING INDEX ix_trials_study_state_value_number" in plan, (question, plan)
    conn.close()
