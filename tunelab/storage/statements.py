"""The statements of the SQL storage's hot path, and the decoding of its rows.

Building a SQLAlchemy statement costs about five times more than running it, and a writer should
hold SQLite's lock only to run; so the statements are built once here, and on SQLite compiled once
more to the driver's own SQL.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from sqlalchemy import JSON, Float, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, NoResultFound, OperationalError
from sqlalchemy.sql.dml import Insert

from tunelab import _json
from tunelab.errors import StorageError
from tunelab.space import config_key
from tunelab.storage import schema
from tunelab.storage.base import CANCELLED, StudyRecord, StudySummary, hide_password
from tunelab.trial import Trial, TrialState

_UNFINISHED = [TrialState.WAITING.value, TrialState.RUNNING.value, TrialState.PAUSED.value]
_S, _T, _R = schema.studies.c, schema.trials.c, schema.reports.c
_FAILED = TrialState.FAILED.value
#: A failed trial its tuner cancelled. The flag lives in the trial's system attributes (JSON: a
#: JSON_EXTRACT on SQLite, ->> on PostgreSQL); every question that asks it also asks for failed
#: trials of given studies, so the (study, state, ...) index narrows the rows it reads to those.
CANCELLED_FLAG = _T.system_attrs[CANCELLED].as_boolean()


def stop_running(at: Any) -> dict[str, Any]:
    """The values that end a trial's running stretch at ``at``: its seconds join ``held`` (a
    trial not running, retired from its pause, holds what it held)."""
    return {"held": _T.held + func.coalesce(at - _T.running_since, 0.0), "running_since": None}


def clock_started(trial_id: int, at: float) -> Any:
    """A running trial's clock starts at ``at`` (see ``Storage.start_clock``): ``started_at``
    too when this is its first stretch (SET reads the row as it was)."""
    first = case((_T.started_at == _T.running_since, at), else_=_T.started_at)
    return update(schema.trials).where(_T.id == trial_id, _T.state == TrialState.RUNNING.value,
                                       _T.running_since < at).values(started_at=first, running_since=at)


def running_trial(trial_id: int, owner: str | None) -> Any:
    """The trial, if it is running (and, with ``owner``, held by that process): what a process
    that takes a trial from another compares, so that a stale view takes nothing."""
    running = and_(_T.id == trial_id, _T.state == TrialState.RUNNING.value)
    return running if owner is None else and_(running, _T.owner == owner)


class Statements:
    """The statements of the hot path, built once: building a statement costs SQLAlchemy about
    five times more than running it, and a writer should hold the lock only to run."""

    def __init__(self) -> None:
        p = bindparam
        # One statement numbers the trial and spends budget, so that no two workers overshoot n_trials.
        self.next_number = (update(schema.studies)
                            .where(_S.id == p("study_id"), _S.counted_trials + p("counted") <= p("limit"))
                            .values(next_number=_S.next_number + 1, counted_trials=_S.counted_trials + p("counted"))
                            .returning(_S.next_number))
        self.peek_number = select(_S.next_number).where(_S.id == p("study_id"))
        self.insert_trial = insert(schema.trials)
        # "value IS NULL" (always true of a waiting trial) lets the one state index answer in order.
        self.pick_waiting = (select(_T.id).where(_T.study_id == p("study_id"), _T.state == TrialState.WAITING.value,
                                                 _T.value.is_(None))
                             .order_by(_T.number).limit(1))
        unfinished = or_(*(_T.state == state for state in _UNFINISHED))  # no IN list: it compiles once
        closing = dict(state=p("state"), value=p("value"), metrics=p("metrics", type_=_T.metrics.type),
                       error=p("error"), traceback=p("traceback"), finished_at=p("finished_at"),
                       **stop_running(p("at", type_=Float())))
        self.finish = update(schema.trials).where(_T.id == p("trial_id"), unfinished).values(**closing)
        self.finish_paused = (update(schema.trials).where(_T.id == p("trial_id"), _T.state == TrialState.PAUSED.value)
                              .values(**closing))
        self.insert_report = insert(schema.reports)
        self.new_trials = (select(schema.trials).where(_T.study_id == p("study_id"), _T.id > p("after_id"))
                           .order_by(_T.id))
        self.new_or_listed_trials = (select(schema.trials).where(
            _T.study_id == p("study_id"), or_(_T.id > p("after_id"), _T.id.in_(p("ids", expanding=True))))
            .order_by(_T.id))
        self.new_reports = (select(_R.id, _R.trial_id, _R.step, _R.metrics, _R.time)
                            .where(_R.study_id == p("study_id"), _R.id > p("after_id")).order_by(_R.id))
        self.furthest_steps = (select(_R.trial_id, func.max(_R.step))
                               .where(_R.trial_id.in_(p("ids", expanding=True))).group_by(_R.trial_id))


class DriverStatement:
    """A hot-path statement compiled once to the driver's SQL, for SQLite.

    Even prebuilt, a SQLAlchemy execution costs about 0.1 ms of Python while the writer holds
    SQLite's only write lock; through the driver it costs a fifth of that, which is what lets a
    second process add throughput. The SQL still comes from the one SQLAlchemy statement.
    """

    def __init__(self, statement, dialect, keys: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if isinstance(statement, Insert) else None)
        self.sql, self._compiled = str(compiled), compiled
        self._order = list(compiled.positiontup or [])
        self._json = {name for name, bind in compiled.binds.items() if isinstance(bind.type, JSON)}

    def bind(self, params: dict[str, Any]) -> list:
        """The values in the driver's order, JSON encoded: work that need not hold the lock."""
        values = self._compiled.construct_params(params)
        return [_json.dumps(values[k]) if k in self._json else values[k] for k in self._order]

    def run(self, driver_connection, bound: list):
        return driver_connection.execute(self.sql, bound)


def trial_with_config(key: str, read: Callable[[Any], Any], study_id: int, after_id: int) -> tuple[int, int | None]:
    """(the largest trial id read, the id of a trial whose configuration has ``key``, if any) among
    the study's trials with ids above ``after_id``: ``read`` runs a statement and returns its rows.

    What lets a writer that must not queue a configuration twice read most of a large study
    before it takes the write lock, and under it only the trials added since: a configuration
    never changes, and a study's trials are committed in the order of their ids (SQLite has one
    writer at a time; on PostgreSQL an insert first takes the study's row, see next_number, and
    holds it until its commit, so a reader that takes that row next sees every earlier trial)."""
    last = after_id
    for trial_id, config in list(read(select(_T.id, _T.config).where(_T.study_id == study_id, _T.id > after_id))):
        last = max(last, trial_id)
        if config_key(config) == key:
            return last, trial_id
    return last, None


def new_id(result) -> int:
    """The primary key of the row just inserted, from a DB-API cursor or a SQLAlchemy result."""
    return result.lastrowid if hasattr(result, "lastrowid") and not hasattr(result, "inserted_primary_key") \
        else result.inserted_primary_key[0]


def check_types(*pairs) -> Any:
    """Raise TypeError unless each value has its type; returns the first value."""
    for value, kind in zip(pairs[::2], pairs[1::2]):
        if not isinstance(value, kind):
            raise TypeError(f"expected a JSON {'object' if kind is dict else 'array'}, found {value!r:.60}")
    return pairs[0]


def to_study(row) -> StudyRecord:
    m = row._mapping
    record = StudyRecord(id=m["id"], name=m["name"], space=m["space"], metrics=m["metrics"], modes=m["modes"],
                         seed=m["seed"], created_at=float(m["created_at"]), settings=m["settings"] or {},
                         environment=m["environment"] or {}, user_attrs=_json.restore(m["user_attrs"] or {}))
    check_types(record.space, dict, record.metrics, list, record.modes, list, record.settings, dict)
    if not record.metrics or len(record.modes) != len(record.metrics) or not set(record.modes) <= {"min", "max"}:
        raise ValueError(f"metrics {record.metrics!r} and modes {record.modes!r} do not match")
    return record


def to_trial(row) -> Trial:
    m = row._mapping
    check_types(m["config"], dict, *(item for key in ("metrics", "user_attrs", "system_attrs")
                                      for item in (m[key] if m[key] is not None else {}, dict)))
    if m["value"] is not None and not isinstance(m["value"], (int, float)):
        raise TypeError(f"value {m['value']!r:.40} is not a number")
    return Trial(
        id=m["id"], number=m["number"], config=m["config"], seed=m["seed"], state=TrialState(m["state"]),
        value=m["value"], metrics=_json.numbers(m["metrics"]), budget=m["budget"], created_at=m["created_at"],
        started_at=m["started_at"], finished_at=m["finished_at"], error=m["error"], traceback=m["traceback"],
        user_attrs=_json.restore(m["user_attrs"] or {}), system_attrs=m["system_attrs"] or {},
        held=m["held"], running_since=m["running_since"],
    )


@contextmanager
def deleted_underneath(url: str) -> Iterator[None]:
    """A write to a trial or study that another process deleted (``tunelab delete`` while a
    worker runs), or to a database this process may only read, is a clear StorageError, not a
    driver's foreign-key, no-row or read-only error."""
    try:
        yield
    except (OperationalError, sqlite3.OperationalError) as err:
        if "readonly" not in str(err) and "read-only" not in str(err):
            raise
        raise StorageError(f"{hide_password(url)} is read-only here ({getattr(err, 'orig', err)}): it can be "
                           "read (show, export), not written; use a copy, or ask for write access") from None
    except (IntegrityError, sqlite3.IntegrityError, NoResultFound) as err:
        if not isinstance(err, NoResultFound) and "foreign key" not in str(err).lower():
            raise  # another constraint (a study's name taken): the caller says what it means
        raise StorageError(f"{hide_password(url)}: the trial or study written to does not exist (its study deleted "
                           "by another process?)") from None


@contextmanager
def decoding(url: str, what: str) -> Iterator[None]:
    """A row that does not decode (edited by hand, half-written by a foreign tool) is a clear
    StorageError naming the table, never a stray ValueError from deep inside."""
    try:
        yield
    except StorageError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise StorageError(f"{hide_password(url)}: a corrupted {what} row could not be read ({type(err).__name__}: "
                           f"{err}); repair or delete that row") from None


def cancelled_apart(counts: dict[str, int], cancelled: int) -> dict[str, int]:
    """Counts by state with ``cancelled`` of the failed trials moved to a "cancelled" count."""
    if not cancelled:
        return counts
    counts = {**counts, _FAILED: counts[_FAILED] - cancelled, CANCELLED: cancelled}
    return {state: n for state, n in counts.items() if n}


def count_states(read: Callable[[Any], Any], study_id: int) -> dict[str, int]:
    """One study's trials by state, the cancelled apart: the states are counted on the index
    alone, and only the failed trials' rows are read, and only where there are some."""
    counts = {state: n for state, n in read(select(_T.state, func.count()).where(_T.study_id == study_id)
                                            .group_by(_T.state))}
    if not counts.get(_FAILED):
        return counts
    cancelled = list(read(select(func.count()).where(_T.study_id == study_id, _T.state == _FAILED, CANCELLED_FLAG)))
    return cancelled_apart(counts, cancelled[0][0])


def study_summaries(read: Callable[[Any], Any]) -> list[StudySummary]:
    """Every study's summary in at most four queries (studies, trial counts by state, cancelled
    trials of the studies with failed ones, extreme values), whatever the number of studies:
    ``read`` runs a statement and returns its rows."""
    rows = list(read(select(_S.id, _S.name, _S.created_at, _S.metrics, _S.modes).order_by(_S.id)))
    counts = list(read(select(_T.study_id, _T.state, func.count()).group_by(_T.study_id, _T.state)))
    bests = list(read(
        select(_T.study_id, func.min(_T.value), func.max(_T.value))
        .where(_T.state == TrialState.COMPLETED.value).group_by(_T.study_id)
    ))
    by_study: dict[int, dict[str, int]] = {}
    for study_id, state, count in counts:
        by_study.setdefault(study_id, {})[state] = count
    failing = [study_id for study_id, states in by_study.items() if states.get(_FAILED)]
    for start in range(0, len(failing), 500):  # the studies named, so that the index finds their failed trials
        cancelled = read(select(_T.study_id, func.count()).where(_T.study_id.in_(failing[start:start + 500]),
                                                                  _T.state == _FAILED, CANCELLED_FLAG)
                         .group_by(_T.study_id))
        for study_id, count in list(cancelled):
            by_study[study_id] = cancelled_apart(by_study[study_id], count)
    extremes = {study_id: (lo, hi) for study_id, lo, hi in bests}
    out = []
    for study_id, name, created_at, metrics, modes in rows:
        lo_hi = extremes.get(study_id)
        best = None if lo_hi is None else (lo_hi[1] if modes[0] == "max" else lo_hi[0])
        out.append(StudySummary(name, float(created_at), metrics, modes, by_study.get(study_id, {}), best))
    return out
