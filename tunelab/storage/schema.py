"""The relational schema, versioned so that an old database opens or says how to migrate it.

Values are JSON columns (text in SQLite, json in PostgreSQL); indices serve the questions the
tuner and the CLI ask often: a study's trials by state or by value, its best and its last trials,
reports since an id. A change of shape bumps SCHEMA_VERSION and adds a step to migrations.py.

Version 2 counts the trials that spend a study's ``n_trials`` budget in the study row
(``counted_trials``, with a ``counted`` flag per trial), so that many workers claim budget with one
atomic update instead of counting rows. Version 3 drops two indices that others cover (an index
on (study, state) is the prefix of (study, state, value); (study, value) served nothing the
(study, state, value) one does not): every index is one more page to write on each new and each
finished trial, inside the write lock that all workers of a SQLite study share. Version 5 keeps
the time a trial held its worker (``held``: the seconds of its running stretches that ended, and
``running_since``: the start of the one under way), because a trial that pauses at a rung and is
resumed later runs in several stretches: ``finished_at - started_at`` counted its time paused as
if it had held a worker.
"""

from __future__ import annotations

from sqlalchemy import (
    text,
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 5

metadata = MetaData()

meta = Table(
    "tunelab_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

studies = Table(
    "tunelab_studies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("space", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("modes", JSON, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("user_attrs", JSON, nullable=False),
    Column("next_number", Integer, nullable=False, default=0),
    Column("counted_trials", Integer, nullable=False, default=0, server_default=text("0")),
)

trials = Table(
    "tunelab_trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("tunelab_studies.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("budget", Float),
    Column("value", Float),
    Column("metrics", JSON),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("heartbeat_at", Float),
    Column("owner", String(255)),
    Column("error", Text),
    Column("traceback", Text),
    Column("user_attrs", JSON, nullable=False),
    Column("system_attrs", JSON, nullable=False),
    Column("counted", Integer, nullable=False, default=1, server_default=text("1")),
    Column("held", Float, nullable=False, default=0.0, server_default=text("0")),
    Column("running_since", Float),
    UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
    # One index serves the best trials (by value, then number), counts by state, and the oldest
    # waiting trial (whose value is always NULL): every index costs each trial written a page.
    Index("ix_trials_study_state_value_number", "study_id", "state", "value", "number"),
)

reports = Table(
    "tunelab_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("tunelab_studies.id", ondelete="CASCADE"), nullable=False),
    Column("trial_id", Integer, ForeignKey("tunelab_trials.id", ondelete="CASCADE"), nullable=False),
    Column("step", Float, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("time", Float, nullable=False),
    Index("ix_reports_study_id", "study_id", "id"),
    Index("ix_reports_trial", "trial_id", "step"),
)
