"""Storage in a relational database through SQLAlchemy Core: SQLite by default.

SQLite runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL`` (a commit survives a killed
process; only a power cut may lose the last few), and every write opens with ``BEGIN IMMEDIATE`` so that concurrent
processes queue for the lock instead of failing with "database is locked" halfway through a transaction. Each step that
must be atomic (numbering, claiming, finishing a trial) is one short transaction, and what can be done before it
(drawing the configuration of a trial numbered next, encoding JSON, building the returned record) is done outside it:
the lock is what processes sharing a study take turns on. They queue for that turn on a lock file beside the database
(``sqlite.WriterQueue``), which hands it over without idle gaps.

PostgreSQL runs each write in a READ COMMITTED transaction; the statements that must serialise take row locks: numbering
a trial updates its study's row (so creators of one study queue there, and the count of trials that spend the budget is
read and raised in the same statement), claiming a waiting trial skips rows another worker has locked (``FOR UPDATE SKIP
LOCKED``), and a read-modify-write of JSON attributes locks its row first. Creating or migrating the schema holds an
advisory lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Connection, case, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import DatabaseError, IntegrityError

from tunelab import _json
from tunelab.errors import StorageError, StudyExists, StudyNotFound
from tunelab.storage import migrations, schema
from tunelab.storage.sqlite import WriterQueue, begin_immediate, next_study_id, read_only_pragmas, \
    read_only_refusal, read_only_url, sqlite_pragmas
from tunelab.space import config_key
from tunelab.storage.statements import DriverStatement, Statements, check_types, clock_started, count_states, \
    decoding, deleted_underneath, new_id, running_trial, stop_running, study_summaries, to_study, to_trial, \
    trial_with_config
from tunelab.storage.base import CANCELLED, SeedFor, Storage, StudyRecord, StudySummary, config_for, hide_password, now
from tunelab.trial import Report, Trial, TrialState

_S, _T, _R = schema.studies.c, schema.trials.c, schema.reports.c
_NO_LIMIT = 2**31 - 1  # fits an INTEGER column everywhere
_SCHEMA_LOCK = 0x74756E656C6162  # "tunelab": the advisory lock that serialises schema creation on PostgreSQL


class SQLStorage(Storage):
    def __init__(self, url: str, *, migrate: bool = True):
        self.url, self._migrate, self._sqlite = url, migrate, url.startswith("sqlite")
        read_only = read_only_url(url) if self._sqlite else None
        self.read_only = read_only is not None  # sqlite:///path?mode=ro: every write is refused before it starts
        options: dict[str, Any] = {"json_serializer": _json.dumps, "json_deserializer": json.loads}
        # SQLite waits for its lock; a PostgreSQL server that never answers is given up on (it hung)
        options["connect_args"] = {"timeout": 60, "check_same_thread": False} if self._sqlite else {"connect_timeout": 10}
        self._engine = create_engine(read_only or url, **options)
        if self._sqlite:
            event.listen(self._engine, "connect", read_only_pragmas if self.read_only else sqlite_pragmas)
        self._writers = WriterQueue(self._engine.url.database if self._sqlite and not self.read_only else None)
        self._local, self._sql, self._pid, self._inherited = threading.local(), Statements(), os.getpid(), []
        self._driver_statements: dict[tuple, DriverStatement] = {}
        try:
            self._prepare_schema()
        except (DatabaseError, sqlite3.DatabaseError) as err:  # also "file is not a database"
            self._engine.dispose()
            raise StorageError(f"cannot open storage {hide_password(url)}: {getattr(err, 'orig', err)}") from None

    # -- connections and transactions ---------------------------------------------------------------
    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if self._pid != os.getpid():  # a forked child: what it inherited is its parent's socket or file, never its own
            self._pid, self._inherited, conn = os.getpid(), [*self._inherited, conn], None  # kept: never closed here
            self._engine.dispose(close=False)  # (closing them, or reusing them, broke the parent's connection)
        if conn is None or conn.closed:
            conn = self._engine.connect()
            if self._sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self.read_only:
            raise read_only_refusal(self.url)
        with deleted_underneath(self.url), self._transaction() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        conn = self._conn()
        if not self._sqlite:
            with conn.begin():
                yield conn
            return
        # BEGIN and COMMIT go straight to the driver: through SQLAlchemy each costs more than the
        # statements of a trial, and the COMMIT's share of it would be spent holding the lock.
        driver = conn.connection.driver_connection
        with self._writers.turn():
            begin_immediate(driver, self.url)
            try:
                yield conn
            except BaseException:
                driver.execute("ROLLBACK")
                raise
            try:
                driver.execute("COMMIT")
            except sqlite3.Error as err:  # a full disk, an I/O error: nothing of the transaction is kept
                driver.execute("ROLLBACK")
                raise StorageError(f"{hide_password(self.url)}: could not commit: {err}") from None

    def _execute(self, conn: Connection, name: str, params: dict[str, Any], bound: list | None = None):
        """Run a hot-path statement: through the driver on SQLite, through SQLAlchemy elsewhere.
        Returns a DB-API cursor or a SQLAlchemy result; both have rowcount, and callers read
        the rest through _first_value and _new_id. ``bound``: the driver's values from _bind,
        prepared before the write lock was taken."""
        if not self._sqlite:
            return conn.execute(getattr(self._sql, name), params)
        statement = self._driver_statement(name, params)
        return statement.run(conn.connection.driver_connection, statement.bind(params) if bound is None else bound)

    def _bind(self, name: str, params: dict[str, Any]) -> list | None:
        """The driver's values for a statement (JSON encoded), or None where SQLAlchemy binds them."""
        return self._driver_statement(name, params).bind(params) if self._sqlite else None

    def _driver_statement(self, name: str, params: dict[str, Any]) -> DriverStatement:
        key = (name, tuple(params))
        if key not in self._driver_statements:
            self._driver_statements[key] = DriverStatement(getattr(self._sql, name), self._engine.dialect,
                                                           tuple(params))
        return self._driver_statements[key]

    def _read(self, statement, params: dict | None = None) -> Any:
        conn = self._conn()
        if self._sqlite:
            return conn.execute(statement, params)
        with conn.begin():
            return conn.execute(statement, params).fetchall()

    def _prepare_schema(self) -> None:
        """Create the tables in a new database, or migrate an older one (see migrations.py)."""
        if self.read_only:  # nothing can be created or migrated in it: it is only checked
            return migrations.check_readable(self._conn(), self.url)
        with self._write() as conn:
            if not self._sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            self.migrated_from = migrations.prepare(conn, self.url, self._migrate)

    def close(self) -> None:
        if getattr(self._local, "conn", None) is not None:
            self._local.conn.close()
        self._engine.dispose()

    # -- studies -------------------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> StudyRecord:
        values = dict(name=record.name, created_at=record.created_at, space=record.space, metrics=record.metrics,
                      modes=record.modes, seed=record.seed, settings=record.settings,
                      environment=record.environment, user_attrs=record.user_attrs, next_number=0)
        try:
            with self._write() as conn:
                if self._sqlite:
                    values["id"] = next_study_id(conn)
                study_id = conn.execute(insert(schema.studies).values(**values)).inserted_primary_key[0]
        except IntegrityError:
            raise StudyExists(f"a study named {record.name!r} already exists in {hide_password(self.url)}") from None
        return self.get_study(record.name) if study_id else record

    def get_study(self, name: str) -> StudyRecord:
        with decoding(self.url, "tunelab_studies"):
            row = self._read(select(schema.studies).where(_S.name == name))
            row = row.first() if hasattr(row, "first") else (row[0] if row else None)
            if row is None:
                raise StudyNotFound(f"no study named {name!r} in {hide_password(self.url)}")
            return to_study(row)

    def list_studies(self) -> list[StudySummary]:
        with decoding(self.url, "tunelab_studies"):
            return study_summaries(self._read)

    def delete_study(self, name: str) -> None:
        study_id = self.get_study(name).id
        with self._write() as conn:
            conn.execute(delete(schema.reports).where(_R.study_id == study_id))
            conn.execute(delete(schema.trials).where(_T.study_id == study_id))
            conn.execute(delete(schema.studies).where(_S.id == study_id))

    def _locked(self, statement):
        """A read that a write in the same transaction depends on: lock the row on PostgreSQL."""
        return statement if self._sqlite else statement.with_for_update()

    def update_study(self, study_id: int, *, settings: dict | None = None, user_attrs: dict | None = None) -> None:
        with self._write() as conn:
            row = conn.execute(self._locked(select(_S.settings, _S.user_attrs).where(_S.id == study_id))).one()
            conn.execute(update(schema.studies).where(_S.id == study_id).values(
                settings={**(row[0] or {}), **(settings or {})}, user_attrs={**(row[1] or {}), **(user_attrs or {})}))

    # -- trials --------------------------------------------------------------------------------------
    def create_trial(self, study_id, config, seed_for: SeedFor, state=TrialState.RUNNING, owner=None,
                     budget=None, system_attrs=None, *, limit=None, counted=True) -> Trial | None:
        drawn = self._draw_ahead(study_id, config, seed_for) if callable(config) else None
        with self._write() as conn:
            made = self._insert_trial(conn, study_id, config, seed_for, TrialState(state), owner,
                                      _json.number(budget), system_attrs, limit, counted, drawn)
        return made and made()

    def _draw_ahead(self, study_id, config_for_number, seed_for: SeedFor) -> tuple[int, dict, int] | None:
        """(number, config, seed) for the number the next trial will most likely get, drawn
        before the write lock: drawing holds no lock, so processes sharing a study draw side by
        side, and only if another one took that number meanwhile is it drawn again inside."""
        params = {"study_id": study_id}
        row = self._execute(self._conn(), "peek_number", params).fetchone() if self._sqlite else \
            next(iter(self._read(self._sql.peek_number, params)), None)
        return None if row is None else (row[0], config_for_number(row[0]), seed_for(row[0]))

    def _insert_trial(self, conn, study_id, config, seed_for, state, owner, budget, system_attrs, limit,
                      counted, drawn=None) -> Callable[[], Trial] | None:
        """Number and insert a trial; returns what builds its record once the lock is released."""
        at = now()
        started = at if state is TrialState.RUNNING else None
        row = dict(study_id=study_id, state=state.value, budget=budget, created_at=at, started_at=started,
                   held=0.0, running_since=started, heartbeat_at=at, owner=owner, user_attrs={},
                   system_attrs=system_attrs or {},
                   counted=int(counted))
        numbered = self._execute(conn, "next_number", {"study_id": study_id, "counted": int(counted),
                                                       "limit": _NO_LIMIT if limit is None else limit}).fetchone()
        if numbered is None:
            if conn.execute(select(_S.id).where(_S.id == study_id)).first() is None:
                raise StorageError(f"study id {study_id} does not exist in {hide_password(self.url)} (deleted?)")
            return None  # the study's n_trials budget is spent
        number = numbered[0] - 1
        if drawn is not None and drawn[0] == number:
            row.update(number=number, config=drawn[1], seed=drawn[2])
        else:
            row.update(number=number, seed=seed_for(number), config=config_for(config, number))
        trial_id = new_id(self._execute(conn, "insert_trial", row))
        return lambda: Trial(id=trial_id, number=number, config=_json.loads(_json.dumps(row["config"])),
                             seed=row["seed"], state=state, budget=budget, created_at=at, started_at=started,
                             running_since=started,
                             system_attrs=_json.loads(_json.dumps(system_attrs or {})))

    def counted_trials(self, study_id: int) -> int:
        return next(iter(self._read(select(_S.counted_trials).where(_S.id == study_id))), (0,))[0]

    def cancel_trial(self, trial_id: int, error: str) -> bool:
        with self._write() as conn:
            row = conn.execute(self._locked(select(_T.study_id, _T.state, _T.counted, _T.system_attrs)
                                            .where(_T.id == trial_id))).first()
            if row is None or TrialState(row[1]).finished:
                return False
            at = now()
            conn.execute(update(schema.trials).where(_T.id == trial_id).values(
                state=TrialState.FAILED.value, error=_json.text(error, self._sqlite), finished_at=at, counted=0,
                system_attrs={**(row[3] or {}), CANCELLED: True}, **stop_running(at)))
            if row[2]:
                conn.execute(update(schema.studies).where(_S.id == row[0])
                             .values(counted_trials=_S.counted_trials - 1))
        return True

    def abandon_trial(self, trial_id: int, error: str, retry_attrs: dict[str, Any] | None,
                      owner: str | None = None, ran_until: float | None = None) -> tuple[bool, Trial | None]:
        with self._write() as conn:
            at = now()
            failed = conn.execute(update(schema.trials).where(running_trial(trial_id, owner))
                                  .values(state=TrialState.FAILED.value, error=_json.text(error, self._sqlite),
                                          finished_at=at, **stop_running(ran_until or at)))
            if failed.rowcount != 1 or retry_attrs is None:
                return failed.rowcount == 1, None
            study_id, config, seed = conn.execute(select(_T.study_id, _T.config, _T.seed)
                                                  .where(_T.id == trial_id)).one()
            retry = self._insert_trial(conn, study_id, config, lambda _number: seed, TrialState.WAITING, None, None,
                                       retry_attrs, None, False)
        return True, retry and retry()

    def requeue_trial(self, trial_id: int, attrs: dict[str, Any], owner: str | None = None, ran_until=None) -> bool:
        with self._write() as conn:
            row = conn.execute(self._locked(select(_T.system_attrs).where(running_trial(trial_id, owner)))).first()
            if row is None:
                return False
            conn.execute(update(schema.trials).where(_T.id == trial_id).values(  # value NULL: pick_waiting's index
                state=TrialState.WAITING.value, value=None, owner=None,
                system_attrs={**(row[0] or {}), **_json.to_jsonable(attrs)}, **stop_running(ran_until or now())))
        return True

    def top_trials(self, study_id: int, k: int, descending: bool) -> list[Trial]:
        order = _T.value.desc() if descending else _T.value.asc()
        with decoding(self.url, "tunelab_trials"):
            return [to_trial(row) for row in self._read(
                select(schema.trials).where(_T.study_id == study_id, _T.state == TrialState.COMPLETED.value,
                                            _T.value.is_not(None)).order_by(order, _T.number).limit(k))]

    def last_trials(self, study_id: int, k: int) -> list[Trial]:
        with decoding(self.url, "tunelab_trials"):
            rows = self._read(select(schema.trials).where(_T.study_id == study_id).order_by(_T.number.desc()).limit(k))
            return [to_trial(row) for row in rows][::-1]

    def held_seconds(self, study_id: int, now: float) -> float:
        running = func.coalesce(now - _T.running_since, 0.0)
        total = self._read(select(func.sum(_T.held + case((running > 0, running), else_=0.0)))
                           .where(_T.study_id == study_id, _T.started_at.is_not(None)))
        return float((total.scalar() if self._sqlite else total[0][0]) or 0.0)

    def count_states(self, study_id: int) -> dict[str, int]:
        return count_states(self._read, study_id)

    def enqueue_once(self, study_id, config, seed_for: SeedFor, *, limit=None) -> tuple[Trial | None, bool]:
        key = config_key(_json.loads(_json.dumps(config)))  # as it reads back
        with decoding(self.url, "tunelab_trials"):
            seen, found = trial_with_config(key, self._read, study_id, 0)  # before the lock: the bulk of them
            if found is None:
                with self._write() as conn:
                    conn.execute(self._locked(select(_S.id).where(_S.id == study_id)))  # where creators queue
                    _, found = trial_with_config(key, conn.execute, study_id, seen)  # those added meanwhile
                    made = None if found is not None else self._insert_trial(
                        conn, study_id, config, seed_for, TrialState.WAITING, None, None, None, limit, True)
                if found is None:
                    return (made(), True) if made else (None, False)
            return to_trial(list(self._read(select(schema.trials).where(_T.id == found)))[0]), False

    def claim_waiting(self, study_id: int, owner: str, budget: float | None = None) -> Trial | None:
        params = {"study_id": study_id}
        if self._execute(self._conn(), "pick_waiting", params).fetchone() is None if self._sqlite else not self._read(
                self._sql.pick_waiting, params):
            return None  # the common case answered by a read (on every ask), without taking the write lock
        at = now()
        pick = self._sql.pick_waiting if self._sqlite else self._sql.pick_waiting.with_for_update(skip_locked=True)
        with self._write() as conn:
            row = conn.execute(pick, params).first()
            if row is None:
                return None
            conn.execute(update(schema.trials).where(_T.id == row[0]).values(
                state=TrialState.RUNNING.value, started_at=func.coalesce(_T.started_at, at), running_since=at,
                heartbeat_at=at, owner=owner, budget=func.coalesce(_T.budget, _json.number(budget))))
            full = conn.execute(select(schema.trials).where(_T.id == row[0])).one()
        return to_trial(full)

    def resume_trial(self, trial_id: int, owner: str, budget: float | None) -> bool:
        at = now()
        with self._write() as conn:
            result = conn.execute(update(schema.trials).where(_T.id == trial_id, _T.state == TrialState.PAUSED.value)
                                  .values(state=TrialState.RUNNING.value, budget=_json.number(budget), owner=owner,
                                          heartbeat_at=at, running_since=at))
        return result.rowcount == 1

    def finish_trial(self, trial_id, state, *, value=None, metrics=None, error=None, traceback=None,
                     at=None, paused_only=False) -> bool:
        state, at = TrialState(state), now() if at is None else at
        params = dict(trial_id=trial_id, state=state.value, value=_json.number(value), metrics=metrics or {},
                      error=_json.text(error, self._sqlite), traceback=_json.text(traceback, self._sqlite),
                      finished_at=at if state.finished else None, at=at)  # (a NUL: SQLite keeps it, PostgreSQL not)
        statement = "finish_paused" if paused_only else "finish"
        bound = self._bind(statement, params)
        with self._write() as conn:
            return self._execute(conn, statement, params, bound).rowcount == 1

    def add_report(self, study_id, trial_id, step, metrics, at) -> int:
        row = dict(study_id=study_id, trial_id=trial_id, step=float(step), metrics=metrics, time=at)
        bound = self._bind("insert_report", row)
        with self._write() as conn:
            return new_id(self._execute(conn, "insert_report", row, bound))

    def set_trial_attr(self, trial_id, key, value, *, system=False) -> None:
        column = _T.system_attrs if system else _T.user_attrs
        with self._write() as conn:
            attrs = conn.execute(self._locked(select(column).where(_T.id == trial_id))).scalar_one() or {}
            attrs[key] = _json.to_jsonable(value)
            conn.execute(update(schema.trials).where(_T.id == trial_id).values({column.key: attrs}))

    def heartbeat(self, trial_ids: Iterable[int], at: float | None = None) -> None:
        ids = list(trial_ids)
        if ids:
            with self._write() as conn:
                conn.execute(update(schema.trials).where(_T.id.in_(ids)).values(heartbeat_at=now() if at is None else at))

    def start_clock(self, trial_id: int, at: float) -> None:
        with self._write() as conn:
            conn.execute(clock_started(trial_id, at))

    def trials(self, study_id: int, *, after_id: int = 0, ids: Iterable[int] = ()) -> list[Trial]:
        params = {"study_id": study_id, "after_id": after_id, "ids": list(ids)}
        with decoding(self.url, "tunelab_trials"):
            rows = self._read(self._sql.new_or_listed_trials if params["ids"] else self._sql.new_trials, params)
            return [to_trial(row) for row in rows]

    def reports(self, study_id: int, *, after_id: int = 0) -> list[tuple[int, int, Report]]:
        with decoding(self.url, "tunelab_reports"):
            rows = self._read(self._sql.new_reports, {"study_id": study_id, "after_id": after_id})
            return [(rid, tid, Report(step, _json.numbers(check_types(metrics, dict)), at))
                    for rid, tid, step, metrics, at in rows]

    def furthest_steps(self, trial_ids: Iterable[int]) -> dict[int, float]:
        ids = list(trial_ids)
        return {tid: float(step) for tid, step in self._read(self._sql.furthest_steps, {"ids": ids})} if ids else {}

    def paused_trials(self, study_id: int) -> list[tuple[int, float | None]]:
        return self._in_state(study_id, TrialState.PAUSED, _T.id, _T.budget)

    def running_trials(self, study_id: int) -> list[tuple[int, str | None, float | None]]:
        return self._in_state(study_id, TrialState.RUNNING, _T.id, _T.owner, _T.heartbeat_at)

    def _in_state(self, study_id: int, state: TrialState, *columns) -> list[tuple]:
        return [tuple(row) for row in self._read(select(*columns).where(_T.study_id == study_id,
                                                                        _T.state == state.value))]
