"""SQLite's side of the SQL storage: the settings of each connection and how a writer waits.

Every process of a shared study writes through one file lock, so what happens around it decides
whether a second worker adds throughput: how a writer waits for the lock, and how often the
write-ahead log is copied back into the database.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import urllib.parse
from contextlib import contextmanager
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: writers poll SQLite's lock instead of queueing
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import URL, Connection, func, insert, make_url, select, update

from tunelab.errors import StorageError
from tunelab.storage import schema
from tunelab.storage.base import hide_password

_LOCK_WAIT_SECONDS = 60.0
_CHECKPOINT_PAGES = 10_000  # about 40 MB of log between checkpoints
_LOG_LIMIT_BYTES = 64 << 20


def begin_immediate(driver: sqlite3.Connection, url: str) -> None:
    """Take SQLite's write lock, polling every fraction of a millisecond while another process
    holds it: SQLite's own busy handler sleeps in steps of up to 100 ms and wakes up late."""
    try:
        execute_when_unlocked(driver, "BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        raise StorageError(f"{url}: {err}") from None


def execute_when_unlocked(driver: sqlite3.Connection, statement: str) -> None:
    """Run ``statement``, trying again while another process holds the lock it needs; after
    _LOCK_WAIT_SECONDS, or on any other error, SQLite's error is raised. Also for statements that
    SQLite answers "locked" at once, without its busy handler: switching a new database to WAL
    while other processes open it is one."""
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    pause = 0.0002
    while True:
        try:
            driver.execute(statement)
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err):
                raise
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"{err} (waited {_LOCK_WAIT_SECONDS:g} s)") from None
        time.sleep(random.uniform(0, pause))
        pause = min(pause * 1.5, 0.002)


class WriterQueue:
    """Writers of one database file queue on a lock file beside it before they take SQLite's lock.

    SQLite has no queue: a writer that finds the lock taken polls, and between polls the holder
    often finishes, starts its next transaction and takes the lock again. With two processes each
    waited longer than a whole transaction takes, and a second process took throughput away.
    The kernel wakes a process blocked on ``flock`` the moment the lock is released, so the
    write lock passes from one process to the next without idle gaps. It only orders tunelab's
    writers: SQLite's own lock still guards the data against everyone else.
    """

    def __init__(self, database: str | None):
        self.path = None if fcntl is None or database in (None, "", ":memory:") \
            else os.path.abspath(f"{database}-writers")
        self._local = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        try:
            handle = self._handle()
        except OSError:  # a folder this process may not write to: SQLite's own lock still orders writers
            self.path = None
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

    def _handle(self) -> int:
        """One descriptor per thread and process: flock excludes between descriptors, so threads
        queue too, and a forked child never shares its parent's turn."""
        owner = (os.getpid(), self.path)
        if getattr(self._local, "owner", None) != owner:
            self._local.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._local.owner = owner
        return self._local.fd


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """Run on every new connection (SQLAlchemy's connect event): these settings are per connection."""
    execute_when_unlocked(dbapi_connection, "PRAGMA journal_mode=WAL")
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5")  # writers wait in begin_immediate, readers never block in WAL
    # A checkpoint copies the log back into the database file. With several processes reading all
    # the time it often cannot finish, and SQLite retries it after every commit once the log is
    # past the threshold (1000 pages by default), which made a second worker slow the first down.
    # A larger threshold checkpoints rarely; the size limit gives the disk back afterwards.
    cursor.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={_LOG_LIMIT_BYTES}")
    cursor.close()


def read_only_pragmas(dbapi_connection, _record) -> None:
    """A read-only connection's settings: none of those that write (the log's mode, its size)."""
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    dbapi_connection.execute("PRAGMA busy_timeout=5")


def read_only_url(url: str) -> URL | None:
    """The URL that opens a ``sqlite:///path?mode=ro`` database read-only, None for any other.

    SQLite takes ``mode=ro`` only in a ``file:`` URI, and SQLAlchemy passes one on only when the
    URL says ``uri=true``: without it, the mode was dropped with a warning and the file opened for
    writing. The path is written as a URI (percent-escaped) and ``uri=true`` added; a URL that
    says ``uri=true`` already is taken as it is.

    A database in a folder this process cannot write to (a read-only disk, another team's share)
    is opened ``immutable``: reading a WAL database needs a ``-shm`` file beside it, which SQLite
    could not create there ("unable to open database file"), and nothing can be writing to a file
    in a folder no one may write to from here. Immutable reads the database file alone, so one
    whose write-ahead log still holds transactions is refused rather than read as it was before
    them."""
    parsed = make_url(url)
    if parsed.query.get("mode") != "ro":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return parsed
    path = os.path.abspath(os.path.expanduser(parsed.database or ""))
    query = {**parsed.query, "uri": "true"}
    if not os.access(os.path.dirname(path), os.W_OK):
        log = path + "-wal"
        if os.path.exists(log) and os.path.getsize(log) > 0:
            raise StorageError(f"{hide_password(url)}: its folder cannot be written to from here, and {log} holds "
                               "transactions not yet in the database file, which SQLite cannot read without writing "
                               "beside it: open it once where it can be written (any tunelab command merges the "
                               "log on closing), or copy the database with its -wal file to a folder you can write")
        query["immutable"] = "1"
    return parsed.set(database="file:" + urllib.parse.quote(path), query=query)


def read_only_refusal(url: str) -> StorageError:
    """The one error a write to a database opened read-only gets, before it takes any lock."""
    return StorageError(f"{hide_password(url)} is read-only here (opened with ?mode=ro): it can be read (show, "
                        "export), not written; open it without ?mode=ro to write to it")


_LAST_STUDY_ID = "last_study_id"


def next_study_id(conn: Connection) -> int:
    """The id of a study created now, inside the write that creates it. SQLite would hand out the
    largest id in use plus one, so once the newest study was deleted its id went to the next
    study, and a process still holding the deleted one (a worker, an ask/tell loop) wrote its
    trials into the new one. The largest id ever given is kept in ``tunelab_meta``; PostgreSQL's
    sequences never go back and need none of this."""
    meta, studies = schema.meta.c, schema.studies.c
    kept = conn.execute(select(meta.value).where(meta.key == _LAST_STUDY_ID)).scalar()
    new = max(int(kept or 0), conn.execute(select(func.max(studies.id))).scalar() or 0) + 1
    if kept is None:
        conn.execute(insert(schema.meta).values(key=_LAST_STUDY_ID, value=str(new)))
    else:
        conn.execute(update(schema.meta).where(meta.key == _LAST_STUDY_ID).values(value=str(new)))
    return new
