"""Storage in a relational database through SQLAlchemy Core: SQLite by default.

SQLite runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL`` (a commit
survives a killed process; only a power cut may lose the last few), and every write opens with
``BEGIN IMMEDIATE`` so that concurrent processes queue for the lock instead of failing with
"database is locked" halfway through a transaction. Each step that must be atomic (numbering,
claiming, finishing a trial) is one short transaction.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import Connection, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from tunelab import _json
from tunelab.errors import StorageError, StudyExists, StudyNotFound
from tunelab.storage import schema
from tunelab.storage.base import SeedFor, Storage, StudyRecord, StudySummary, now
from tunelab.trial import Report, Trial, TrialState

_UNFINISHED = [TrialState.WAITING.value, TrialState.RUNNING.value, TrialState.PAUSED.value]
_S, _T, _R = schema.studies.c, schema.trials.c, schema.reports.c


class SQLStorage(Storage):
    def __init__(self, url: str):
        self.url = url
        self._sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"json_serializer": _json.dumps, "json_deserializer": json.loads}
        if self._sqlite:
            options["connect_args"] = {"timeout": 60, "check_same_thread": False}
        self._engine = create_engine(url, **options)
        if self._sqlite:
            event.listen(self._engine, "connect", _sqlite_pragmas)
        self._local = threading.local()
        try:
            self._prepare_schema()
        except OperationalError as err:
            raise StorageError(f"cannot open storage {url}: {err.orig}") from None

    # -- connections and transactions ---------------------------------------------------------------
    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._engine.connect()
            if self._sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        conn = self._conn()
        if not self._sqlite:
            with conn.begin():
                yield conn
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")

    def _read(self, statement) -> Any:
        conn = self._conn()
        if self._sqlite:
            return conn.execute(statement)
        with conn.begin():
            return conn.execute(statement).fetchall()

    def _prepare_schema(self) -> None:
        with self._write() as conn:
            schema.metadata.create_all(conn, checkfirst=True)
            row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
            if row is None:
                conn.execute(insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
            elif int(row[0]) > schema.SCHEMA_VERSION:
                raise StorageError(
                    f"{self.url} was written by a newer tunelab (schema {row[0]}, this one knows "
                    f"{schema.SCHEMA_VERSION}); upgrade tunelab: pip install -U tunelab"
                )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._engine.dispose()

    def artifact_dir(self) -> str:
        """Next to a SQLite file (``runs.db`` -> ``runs-artifacts``), so the two travel together."""
        if self._sqlite and not os.environ.get("TUNELAB_ARTIFACTS"):
            path = Path(self.url[len("sqlite:///"):]).expanduser().resolve()
            return str(path.with_name(path.stem + "-artifacts"))
        return super().artifact_dir()

    # -- studies -------------------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> StudyRecord:
        values = dict(name=record.name, created_at=record.created_at, space=record.space, metrics=record.metrics,
                      modes=record.modes, seed=record.seed, settings=record.settings,
                      environment=record.environment, user_attrs=record.user_attrs, next_number=0)
        try:
            with self._write() as conn:
                study_id = conn.execute(insert(schema.studies).values(**values)).inserted_primary_key[0]
        except IntegrityError:
            raise StudyExists(f"a study named {record.name!r} already exists in {self.url}") from None
        return self.get_study(record.name) if study_id else record

    def get_study(self, name: str) -> StudyRecord:
        row = self._read(select(schema.studies).where(_S.name == name))
        row = row.first() if hasattr(row, "first") else (row[0] if row else None)
        if row is None:
            raise StudyNotFound(f"no study named {name!r} in {self.url}")
        m = row._mapping
        return StudyRecord(id=m["id"], name=m["name"], space=m["space"], metrics=m["metrics"], modes=m["modes"],
                           seed=m["seed"], created_at=m["created_at"], settings=m["settings"] or {},
                           environment=m["environment"] or {}, user_attrs=m["user_attrs"] or {})

    def list_studies(self) -> list[StudySummary]:
        rows = list(self._read(select(_S.id, _S.name, _S.created_at, _S.metrics, _S.modes).order_by(_S.id)))
        counts = list(self._read(select(_T.study_id, _T.state, func.count()).group_by(_T.study_id, _T.state)))
        bests = list(self._read(
            select(_T.study_id, func.min(_T.value), func.max(_T.value))
            .where(_T.state == TrialState.COMPLETED.value).group_by(_T.study_id)
        ))
        by_study: dict[int, dict[str, int]] = {}
        for study_id, state, count in counts:
            by_study.setdefault(study_id, {})[state] = count
        extremes = {study_id: (lo, hi) for study_id, lo, hi in bests}
        out = []
        for study_id, name, created_at, metrics, modes in rows:
            lo_hi = extremes.get(study_id)
            best = None if lo_hi is None else (lo_hi[1] if modes[0] == "max" else lo_hi[0])
            out.append(StudySummary(name, created_at, metrics, modes, by_study.get(study_id, {}), best))
        return out

    def delete_study(self, name: str) -> None:
        study_id = self.get_study(name).id
        with self._write() as conn:
            conn.execute(delete(schema.reports).where(_R.study_id == study_id))
            conn.execute(delete(schema.trials).where(_T.study_id == study_id))
            conn.execute(delete(schema.studies).where(_S.id == study_id))

    def update_study(self, study_id: int, *, settings: dict | None = None, user_attrs: dict | None = None) -> None:
        with self._write() as conn:
            row = conn.execute(select(_S.settings, _S.user_attrs).where(_S.id == study_id)).one()
            conn.execute(update(schema.studies).where(_S.id == study_id).values(
                settings={**(row[0] or {}), **(settings or {})}, user_attrs={**(row[1] or {}), **(user_attrs or {})}))

    # -- trials --------------------------------------------------------------------------------------
    def create_trial(self, study_id, config, seed_for: SeedFor, state=TrialState.RUNNING, owner=None,
                     budget=None, system_attrs=None) -> Trial:
        at = now()
        state = TrialState(state)
        with self._write() as conn:
            number = conn.execute(
                update(schema.studies).where(_S.id == study_id)
                .values(next_number=_S.next_number + 1).returning(_S.next_number)
            ).scalar_one() - 1
            seed = seed_for(number)
            started = at if state is TrialState.RUNNING else None
            trial_id = conn.execute(insert(schema.trials).values(
                study_id=study_id, number=number, state=state.value, config=config, seed=seed, budget=budget,
                created_at=at, started_at=started, heartbeat_at=at, owner=owner, user_attrs={},
                system_attrs=system_attrs or {},
            )).inserted_primary_key[0]
        return Trial(id=trial_id, number=number, config=_json.loads(_json.dumps(config)), seed=seed, state=state,
                     budget=budget, created_at=at, started_at=started, system_attrs=dict(system_attrs or {}))

    def claim_waiting(self, study_id: int, owner: str, budget: float | None = None) -> Trial | None:
        pick = (select(_T.id).where(_T.study_id == study_id, _T.state == TrialState.WAITING.value)
                .order_by(_T.number).limit(1))
        if self._read(pick).first() is None if self._sqlite else not self._read(pick):
            return None  # the common case answered by a read, without taking the write lock
        at = now()
        with self._write() as conn:
            row = conn.execute(pick if self._sqlite else pick.with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            conn.execute(update(schema.trials).where(_T.id == row[0]).values(
                state=TrialState.RUNNING.value, started_at=at, heartbeat_at=at, owner=owner, budget=budget))
            full = conn.execute(select(schema.trials).where(_T.id == row[0])).one()
        return _to_trial(full)

    def resume_trial(self, trial_id: int, owner: str, budget: float | None) -> bool:
        with self._write() as conn:
            result = conn.execute(update(schema.trials).where(_T.id == trial_id, _T.state == TrialState.PAUSED.value)
                                  .values(state=TrialState.RUNNING.value, budget=budget, owner=owner,
                                          heartbeat_at=now()))
        return result.rowcount == 1

    def finish_trial(self, trial_id, state, *, value=None, metrics=None, error=None, traceback=None) -> bool:
        state = TrialState(state)
        values: dict[str, Any] = dict(state=state.value, value=value, metrics=metrics or {}, error=error,
                                      traceback=traceback)
        if state.finished:
            values["finished_at"] = now()
        with self._write() as conn:
            result = conn.execute(update(schema.trials)
                                  .where(_T.id == trial_id, _T.state.in_(_UNFINISHED)).values(**values))
        return result.rowcount == 1

    def add_report(self, study_id, trial_id, step, metrics, at) -> int:
        with self._write() as conn:
            return conn.execute(insert(schema.reports).values(study_id=study_id, trial_id=trial_id, step=float(step),
                                                             metrics=metrics, time=at)).inserted_primary_key[0]

    def set_trial_attr(self, trial_id, key, value, *, system=False) -> None:
        column = _T.system_attrs if system else _T.user_attrs
        with self._write() as conn:
            attrs = conn.execute(select(column).where(_T.id == trial_id)).scalar_one() or {}
            attrs[key] = _json.to_jsonable(value)
            conn.execute(update(schema.trials).where(_T.id == trial_id).values({column.key: attrs}))

    def heartbeat(self, trial_ids: Iterable[int], at: float | None = None) -> None:
        ids = list(trial_ids)
        if ids:
            with self._write() as conn:
                conn.execute(update(schema.trials).where(_T.id.in_(ids)).values(heartbeat_at=now() if at is None else at))

    def trials(self, study_id: int, *, after_id: int = 0, ids: Iterable[int] = ()) -> list[Trial]:
        ids = list(ids)
        condition = _T.id > after_id if not ids else or_(_T.id > after_id, _T.id.in_(ids))
        rows = self._read(select(schema.trials).where(_T.study_id == study_id, condition).order_by(_T.id))
        return [_to_trial(row) for row in rows]

    def reports(self, study_id: int, *, after_id: int = 0) -> list[tuple[int, int, Report]]:
        rows = self._read(select(_R.id, _R.trial_id, _R.step, _R.metrics, _R.time)
                          .where(_R.study_id == study_id, _R.id > after_id).order_by(_R.id))
        return [(rid, tid, Report(step, _json.numbers(metrics), at)) for rid, tid, step, metrics, at in rows]

    def running_trials(self, study_id: int) -> list[tuple[int, str | None, float | None]]:
        rows = self._read(select(_T.id, _T.owner, _T.heartbeat_at)
                          .where(_T.study_id == study_id, _T.state == TrialState.RUNNING.value))
        return [tuple(row) for row in rows]


def _to_trial(row) -> Trial:
    m = row._mapping
    return Trial(
        id=m["id"], number=m["number"], config=m["config"], seed=m["seed"], state=TrialState(m["state"]),
        value=m["value"], metrics=_json.numbers(m["metrics"]), budget=m["budget"], created_at=m["created_at"],
        started_at=m["started_at"], finished_at=m["finished_at"], error=m["error"], traceback=m["traceback"],
        user_attrs=m["user_attrs"] or {}, system_attrs=m["system_attrs"] or {},
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()
