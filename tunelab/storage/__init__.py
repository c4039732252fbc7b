"""Open a storage from a URL, and say clearly what is wrong with a bad one.

``None`` or ``"memory"`` -> this process's memory; ``sqlite:///tunelab.db`` -> a file (relative
to the working directory; four slashes for an absolute path; ``?mode=ro`` opens an existing one
read-only: it is read, and a write is refused); ``postgresql://user@host/db`` -> a shared
database (extra ``tunelab[postgres]``).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from tunelab.errors import StorageError, StudyNotFound
from tunelab.storage.base import Storage, StudyRecord, StudySummary, hide_password
from tunelab.storage.memory import MemoryStorage

__all__ = ["Storage", "StudyRecord", "StudySummary", "MemoryStorage", "open_storage", "DEFAULT_STORAGE"]

DEFAULT_STORAGE = "sqlite:///tunelab.db"
_ALLOWED = "'memory', 'sqlite:///path/to/file.db' or 'postgresql://user:password@host/database'"


def open_storage(url: "str | Storage | None") -> Storage:
    """A storage object for ``url`` (an existing Storage is returned as it is)."""
    if isinstance(url, Storage):
        return url
    if url is None or url in ("memory", "memory://", ":memory:"):
        return MemoryStorage()
    if not isinstance(url, str):
        raise StorageError(f"storage must be a URL string; got {type(url).__name__}. Use {_ALLOWED}")
    url = url.strip()
    if "\x00" in url:
        raise StorageError(f"storage URL {url!r} holds a NUL character. Use {_ALLOWED}")
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return _open_postgres(url)
    if not scheme:
        path = url[len("sqlite:"):].lstrip("/") if url.lower().startswith("sqlite:") else url
        hint = f"; for a file, write 'sqlite:///{path}'" if url.endswith((".db", ".sqlite", ".sqlite3")) else ""
        raise StorageError(f"storage {url!r} is not a URL{hint}. Use {_ALLOWED}")
    raise StorageError(f"storage scheme {scheme!r} is not supported. Use {_ALLOWED}")


def open_existing(url: "str | Storage") -> Storage:
    """The storage of studies that must be there already (``load_study``): a SQLite file that
    does not exist is an error, not an empty database made on the spot (with its lock file, in
    whatever folder a mistyped path named)."""
    if isinstance(url, str) and url.lower().startswith("sqlite:///"):
        path = url[len("sqlite:///"):].partition("?")[0]
        if path not in ("", ":memory:") and not Path(urllib.parse.unquote(os.path.expanduser(path))).exists():
            raise StudyNotFound(f"no database at {path!r}, so no study in it (check the path; tl.tune or "
                                "tl.create_study makes a new one)")
    return open_storage(url)


def _open_sqlite(url: str) -> Storage:
    from tunelab.storage.sql import SQLStorage

    if not url.lower().startswith("sqlite:///"):
        raise StorageError(f"SQLite URLs have three slashes before a relative path: sqlite:///tunelab.db; got {url!r}")
    path, _, query = url[len("sqlite:///"):].partition("?")
    path = os.path.expanduser(path) if path.startswith("~") else path  # SQLite itself would look for a folder '~'
    mode = _sqlite_mode(url, query)
    url = "sqlite:///" + path + ("?mode=ro" if mode == "ro" else "")  # the scheme as SQLAlchemy spells it
    if path in ("", ":memory:"):
        raise StorageError("an in-memory SQLite database is private to one connection; use storage='memory'")
    file = Path(urllib.parse.unquote(path))  # the file SQLAlchemy opens: it decodes %20, %23, %3F in the path
    parent = file.resolve().parent
    if not parent.is_dir():
        escaped = " (a '%' of a file name is written %25 in a URL)" if "%" in path else ""
        raise StorageError(f"cannot create {path!r}: directory {str(parent)!r} does not exist{escaped}")
    if file.is_dir():
        raise StorageError(f"{path!r} is a directory; give a file name such as {os.path.join(path, 'tunelab.db')!r}")
    if mode in ("ro", "rw") and not file.is_file():
        raise StorageError(f"no database at {path!r}: ?mode={mode} opens an existing one (leave the mode out to "
                           "create it)")
    return SQLStorage(url)


def _sqlite_mode(url: str, query: str) -> str:
    """The ``mode`` a SQLite URL asks for: ``ro`` (read-only), ``rw`` (an existing file) or ``rwc``
    (the default: created if missing). Any other query is refused: SQLAlchemy passed none of them
    to SQLite (it warned and opened the file for writing, ``?mode=ro`` included)."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        pairs = [("", query)]
    options = dict(pairs)
    mode = options.pop("mode", "rwc")
    if options or len(pairs) > 1 or mode not in ("ro", "rw", "rwc"):  # ?mode=ro&mode=rw: the last won
        raise StorageError(f"SQLite storage URLs take one option, ?mode=ro (open read-only), or ?mode=rw / rwc; "
                           f"got ?{query} in {url!r}")
    return mode


def _open_postgres(url: str) -> Storage:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise StorageError("PostgreSQL storage needs a driver: pip install 'tunelab[postgres]'") from None
        else:
            driver_url = url
    else:
        driver_url = url if "+" in url.split("://", 1)[0] else "postgresql+psycopg://" + url.split("://", 1)[1]
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from tunelab.storage.sql import SQLStorage

    try:
        make_url(driver_url)
    except (ArgumentError, ValueError) as err:  # a port that is not a number, an unclosed [ of an IPv6 host
        raise StorageError(f"storage URL {hide_password(url)} cannot be read ({err}); write it as "
                           "postgresql://user:password@host:5432/database, with an '@', '/', ':' or '?' of the "
                           "password percent-escaped (%40, %2F, %3A, %3F)") from None
    return SQLStorage(driver_url)
