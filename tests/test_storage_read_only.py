"""``sqlite:///path?mode=ro``: a database opened read-only is read, and any write is one clear
error. SQLAlchemy passed ``mode`` to SQLite only with ``uri=true``; without it the mode was
dropped (with a warning) and the file opened for writing."""

from __future__ import annotations

import sqlite3
import warnings

import pytest

import tunelab as tl
from tunelab.errors import StorageError
from tunelab.storage import open_storage

SPACE = {"x": tl.uniform(0.0, 1.0)}
READ_ONLY = r"read-only here \(opened with \?mode=ro\): it can be read \(show, export\), not written"


def _objective(config):
    return config["x"]


@pytest.fixture()
def written(tmp_path):
    """A database with a study of three trials, written as usual and closed."""
    path = tmp_path / "with space.db"
    tl.tune(_objective, SPACE, metric="loss", mode="min", n_trials=3, storage=f"sqlite:///{path}", name="r",
            seed=0, progress=False)
    return path


def _rows(path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (conn.execute("SELECT count(*) FROM tunelab_studies").fetchone()[0],
                conn.execute("SELECT count(*) FROM tunelab_trials").fetchone()[0])


def test_a_database_opened_read_only_is_read_and_a_write_is_refused_clearly(written):
    url = f"sqlite:///{str(written).replace(' ', '%20')}?mode=ro"  # a %-escape, as a URL writes a space
    storage = open_storage(url)
    study = tl.load_study("r", storage=storage)
    assert len(study.trials) == 3 and study.counts() == {"completed": 3} and study.best.value is not None
    assert [s.name for s in storage.list_studies()] == ["r"]
    writes = [
        lambda: study.tell(config={"x": 0.5}, value=0.5),
        lambda: study.enqueue({"x": 0.5}),
        lambda: setattr(study, "n_trials", 10),
        lambda: storage.delete_study("r"),
        lambda: tl.tune(_objective, SPACE, metric="loss", mode="min", n_trials=5, storage=storage, name="r",
                        progress=False),
        lambda: tl.tune(_objective, SPACE, metric="loss", mode="min", n_trials=5, storage=url, name="r",
                        progress=False),
    ]
    for write in writes:
        with pytest.raises(StorageError, match=READ_ONLY):
            write()
    with pytest.raises(StorageError, match=READ_ONLY):
        tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="new")
    storage.close()
    assert _rows(written) == (1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLAlchemy's "Query string argument(s) 'mode' ... ignored"
        open_storage(url).close()
    assert sorted(p.name for p in (written.parent / "tunelab-artifacts").iterdir() if p.is_dir()) == ["r"]


def test_read_only_needs_an_existing_tunelab_database_and_other_options_are_refused(tmp_path, written):
    with pytest.raises(StorageError, match=r"no database at .*\?mode=ro opens an existing one"):
        open_storage(f"sqlite:///{tmp_path / 'missing.db'}?mode=ro")
    assert not (tmp_path / "missing.db").exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    with pytest.raises(StorageError, match="holds no tunelab tables"):
        open_storage(f"sqlite:///{other}?mode=ro")
    for query in ("timeout=5", "mode=readonly", "mode=ro&cache=shared", "ro", "mode=ro&mode=rw"):
        with pytest.raises(StorageError, match=r"take one option, \?mode=ro"):
            open_storage(f"sqlite:///{written}?{query}")
    open_storage(f"sqlite:///{written}?mode=rw").close()  # the default, said out loud
    with pytest.raises(StorageError, match=r"\?mode=rw opens an existing one"):
        open_storage(f"sqlite:///{tmp_path / 'missing.db'}?mode=rw")


def test_a_database_of_an_older_schema_opened_read_only_says_how_to_migrate_it(written):
    with sqlite3.connect(written) as conn:
        conn.execute("UPDATE tunelab_meta SET value = '4' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match=r"schema version 4.*opened read-only \(\?mode=ro\) it cannot be migrated"):
        open_storage(f"sqlite:///{written}?mode=ro")
    with sqlite3.connect(written) as conn:
        assert conn.execute("SELECT value FROM tunelab_meta WHERE key = 'schema_version'").fetchone()[0] == "4"


def test_the_cli_reads_a_database_opened_read_only(written, capsys):
    from tunelab.cli import main

    url = f"sqlite:///{written}?mode=ro"
    assert main(["show", "r", "--storage", url]) == 0
    assert "3 completed" in capsys.readouterr().out
    assert main(["studies", "--storage", url]) == 0
    assert _rows(written) == (1, 3)


def test_a_database_in_a_folder_this_process_cannot_write_to_is_read_without_files_beside_it(written, monkeypatch):
    """On a read-only disk (a copy on a share) reading a WAL database needed a -shm file beside
    it, which SQLite could not make there: "unable to open database file". Such a folder is read
    immutable, and no file is made beside the database (os.access stands in for the read-only
    mount, which a test cannot make)."""
    import os

    import tunelab.storage.sqlite as sqlite_storage

    folder = str(written.parent)
    real = os.access
    monkeypatch.setattr(sqlite_storage.os, "access",
                        lambda path, how, **kw: False if str(path) == folder and how == os.W_OK else real(path, how, **kw))
    with pytest.raises(StorageError, match=r"with space.db-wal holds transactions not yet in the database file"):
        open_storage(f"sqlite:///{written}?mode=ro")  # its writer, in this process, has not merged its log yet
    with sqlite3.connect(written) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as the last writer's close does
    before = sorted(p.name for p in written.parent.iterdir())
    study = tl.load_study("r", storage=f"sqlite:///{written}?mode=ro")
    assert len(study.trials) == 3
    study.storage.close()
    assert sorted(p.name for p in written.parent.iterdir()) == before
