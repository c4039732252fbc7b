"""Shared fixtures: a real PostgreSQL server for the tests that need one."""

from __future__ import annotations

import pytest

import pgserver


@pytest.fixture(scope="session")
def postgres_server():
    """One server for the whole session; skipped only where PostgreSQL or psycopg is not installed
    (CI installs both: see .ci/run)."""
    bindir = pgserver.binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'tunelab[postgres]')")
    server = pgserver.Server(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, tmp_path, monkeypatch) -> str:
    """A fresh database on the session's server. A server database keeps its studies' files in
    the working folder: the test's own, not the repository's."""
    monkeypatch.chdir(tmp_path)
    return postgres_server.new_database()
