"""Bring a database written by an older tunelab up to the current schema, one version at a time.

Each step is a function of an open transaction: opening storage runs the steps that are due
(under the same lock that creates the schema, so two processes never migrate at once), and
``tunelab migrate --storage URL`` runs them explicitly. A step never changes what older rows mean
(it adds columns and indices, or drops indices that others cover), and a step that fails leaves the
database at its old version (the transaction rolls back).
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection, and_, inspect, insert, select, text, update

from tunelab.errors import StorageError
from tunelab.storage import schema
from tunelab.storage.base import CANCELLED, RETRY_OF, hide_password


def _v1_to_v2(conn: Connection) -> None:
    """Version 2 counts the trials that spend the n_trials budget: every trial but the cancelled
    ones and those abandoned and queued again (their retry counts in their place). Its indices find
    the best trials and the oldest waiting one without scanning the study (version 1 scanned every
    trial to claim a waiting one, which made each new trial cost more as the study grew)."""
    conn.execute(text("ALTER TABLE tunelab_studies ADD COLUMN counted_trials INTEGER NOT NULL DEFAULT 0"))
    conn.execute(text("ALTER TABLE tunelab_trials ADD COLUMN counted INTEGER NOT NULL DEFAULT 1"))
    conn.execute(text("CREATE INDEX ix_trials_study_state_value ON tunelab_trials (study_id, state, value)"))
    conn.execute(text("CREATE INDEX ix_trials_study_state_number ON tunelab_trials (study_id, state, number)"))
    t = schema.trials.c
    rows = conn.execute(select(t.id, t.study_id, t.number, t.system_attrs)).all()
    retried = {(study_id, attrs[RETRY_OF]) for _, study_id, _, attrs in rows if attrs and RETRY_OF in attrs}
    uncounted = [trial_id for trial_id, study_id, number, attrs in rows
                 if (attrs or {}).get(CANCELLED) or (study_id, number) in retried]
    for start in range(0, len(uncounted), 500):
        conn.execute(update(schema.trials).where(t.id.in_(uncounted[start:start + 500])).values(counted=0))
    for (study_id,) in conn.execute(select(schema.studies.c.id)).all():
        counted = conn.execute(text("SELECT count(*) FROM tunelab_trials WHERE study_id = :s AND counted = 1"),
                               {"s": study_id}).scalar_one()
        conn.execute(update(schema.studies).where(schema.studies.c.id == study_id).values(counted_trials=counted))


def _v2_to_v3(conn: Connection) -> None:
    """Version 3 drops the indices that others cover, so each trial written updates fewer pages."""
    for index in ("ix_trials_study_state", "ix_trials_study_value"):
        conn.execute(text(f"DROP INDEX IF EXISTS {index}"))


def _v3_to_v4(conn: Connection) -> None:
    """Version 4 keeps one index on (study, state, value, number) in place of two, one page fewer
    for every trial written; the oldest waiting trial is found through it (its value is NULL)."""
    for index in ("ix_trials_study_state_value", "ix_trials_study_state_number"):
        conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_trials_study_state_value_number "
                      "ON tunelab_trials (study_id, state, value, number)"))


def _v4_to_v5(conn: Connection) -> None:
    """Version 5 keeps the seconds a trial held its worker (``held``) and when its running stretch
    began (``running_since``). Older rows kept only the first start and the end: a finished
    trial is taken to have run from one to the other, as before; a paused one until its last
    heartbeat, sent while it ran (the time since, which the old sum kept adding, is left out);
    a running one since its start."""
    conn.execute(text("ALTER TABLE tunelab_trials ADD COLUMN held FLOAT NOT NULL DEFAULT 0"))
    conn.execute(text("ALTER TABLE tunelab_trials ADD COLUMN running_since FLOAT"))
    t = schema.trials.c
    started = t.started_at.is_not(None)
    for end, which in ((t.finished_at, t.finished_at.is_not(None)),
                       (t.heartbeat_at, and_(t.finished_at.is_(None), t.state != "running"))):
        conn.execute(update(schema.trials).where(started, which, end > t.started_at)
                     .values(held=end - t.started_at))
    conn.execute(update(schema.trials).where(started, t.state == "running").values(running_since=t.started_at))


#: from version -> the step that makes it version + 1
STEPS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


def migrate(conn: Connection, version: int) -> int:
    """Run every step from ``version`` to the current one; returns the version reached."""
    while version < schema.SCHEMA_VERSION:
        STEPS[version](conn)
        version += 1
    conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value=str(version)))
    return version


def prepare(conn: Connection, url: str, allowed: bool = True) -> int | None:
    """Create the tables of a new database, or bring an older one up to date (``allowed``: else
    ask the user to run ``tunelab migrate``). Returns the version migrated from, if any."""
    version = stored_version(conn)
    if version is not None and version > schema.SCHEMA_VERSION:
        raise StorageError(f"{hide_password(url)} was written by a newer tunelab (schema {version}, this one knows "
                           f"{schema.SCHEMA_VERSION}); upgrade tunelab: pip install -U tunelab")
    migrated_from = None
    if version is not None and version < schema.SCHEMA_VERSION:
        if not allowed:
            raise StorageError(f"{hide_password(url)} has schema version {version}, this tunelab needs "
                               f"{schema.SCHEMA_VERSION}; run: tunelab migrate --storage {hide_password(url)}")
        migrated_from = version
        migrate(conn, version)
    schema.metadata.create_all(conn, checkfirst=True)
    if version is None:
        conn.execute(insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
    return migrated_from


def check_readable(conn: Connection, url: str) -> None:
    """A database opened read-only is read as it is: it must hold tunelab's tables at the version
    this tunelab reads, since nothing can be created or migrated in it."""
    version = stored_version(conn)
    if version is None:
        raise StorageError(f"{hide_password(url)} holds no tunelab tables: a database opened read-only (?mode=ro) "
                           "must be one that tunelab wrote")
    if version != schema.SCHEMA_VERSION:
        newer = version > schema.SCHEMA_VERSION
        raise StorageError(f"{hide_password(url)} has schema version {version}, this tunelab reads "
                           f"{schema.SCHEMA_VERSION}; opened read-only (?mode=ro) it cannot be "
                           + ("read: upgrade tunelab: pip install -U tunelab" if newer else
                              "migrated: open it once without ?mode=ro (or run tunelab migrate on it) first"))


def stored_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(schema.meta.name):
        return None
    row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
    if row is None or not str(row[0]).isdigit():
        raise StorageError(f"the tunelab_meta table has no valid schema_version row ({row and row[0]!r})")
    return int(row[0])
