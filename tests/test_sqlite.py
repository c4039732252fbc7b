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


def test_processes_opening_a_new_database_at_once_wait_for_each_other_to_switch_it_to_wal(tmp_path):
    """Processes opening one new database at once each switch it to WAL; SQLite answers one that
    finds another mid-switch "database is locked" at once, without waiting (a read lock it cannot
    raise to a write lock), and one process of eight starting a study at once failed to open it.
    Here another connection holds the write lock of a database not yet in WAL mode."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    storage = SQLStorage(f"sqlite:///{path}")  # waits for the holder instead of failing
    release.join()
    assert storage._conn().connection.driver_connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    storage.close()


def test_an_error_other_than_a_lock_is_a_storage_error_at_once(tmp_path):
    driver = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    driver.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StorageError, match="within a transaction"):
        begin_immediate(driver, "sqlite:///c.db")  # a nested BEGIN: not worth waiting for
    assert time.monotonic() - started < 30


def test_writers_queue_on_a_lock_file_beside_the_database(tmp_path):
    from tunelab.storage.sqlite import WriterQueue

    queue = WriterQueue(str(tmp_path / "q.db"))
    order: list[str] = []
    inside = threading.Event()

    def first():
        with queue.turn():
            inside.set()
            time.sleep(0.2)
            order.append("first out")

    holder = threading.Thread(target=first)
    holder.start()
    inside.wait(5)
    with queue.turn():  # another thread: its own descriptor, so it waits for the first turn to end
        order.append("second in")
    holder.join()
    assert order == ["first out", "second in"]
    assert (tmp_path / "q.db-writers").exists()
    assert WriterQueue(":memory:").path is None and WriterQueue(None).path is None
    nowhere = WriterQueue(str(tmp_path / "missing-folder" / "x.db"))
    with nowhere.turn():  # no lock file can be made there: writers fall back on SQLite's own lock
        pass
    assert nowhere.path is None


def test_a_shared_study_writes_through_the_queue(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path / 'd.db'}")
    assert storage._writers.path == str(tmp_path / "d.db") + "-writers"
    storage.close()


def test_a_database_this_process_may_only_read_is_read_and_writes_are_a_clear_error(tmp_path):
    import tunelab as tl

    path = tmp_path / "r.db"
    tl.tune(lambda c: c["x"], {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2,
            storage=f"sqlite:///{path}", name="r", progress=False)
    readonly = SQLStorage(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert len(tl.load_study("r", storage=readonly).trials) == 2
    with pytest.raises(StorageError, match="is read-only here .*: it can be read \\(show, export\\), not written"):
        readonly.delete_study("r")
    with pytest.raises(StorageError, match="is read-only here"):
        tl.tune(lambda c: c["x"], {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=4,
                storage=readonly, name="r", progress=False)
    readonly.close()
