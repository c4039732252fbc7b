"""SQLite's connection settings and the writer's wait for the lock, on a real database file."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from tunelab.errors import StorageError
from tunelab.storage.sql import SQLStorage
from tunelab.storage.sqlite import begin_immediate


def test_every_connection_gets_the_log_settings(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path / 'a.db'}")
    driver = storage._conn().connection.driver_connection
    assert driver.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    assert driver.execute("PRAGMA journal_size_limit").fetchone()[0] == 64 << 20
    storage.close()


def test_a_writer_waits_for_the_lock_another_process_holds(tmp_path):
    path = tmp_path / "b.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0)
    begin_immediate(waiter, "sqlite:///b.db")  # returns only once the holder committed
    assert waiter.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    waiter.execute("COMMIT")
    release.join()


def test_an_error_other_than_a_lock_is_a_storage_error_at_once(tmp_path):
    driver = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    driver.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StorageError, match="within a transaction"):
        begin_immediate(driver, "sqlite:///c.db")  # a nested BEGIN: not worth waiting for
    assert time.monotonic() - started < 30
