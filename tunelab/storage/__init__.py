"""Open a storage from a URL, and say clearly what is wrong with a bad one.

``None`` or ``"memory"`` -> this process's memory; ``sqlite:///tunelab.db`` -> a file (relative
to the working directory; four slashes for an absolute path); ``postgresql://user@host/db`` ->
a shared database (extra ``tunelab[postgres]``).
"""

from __future__ import annotations

import os
from pathlib import Path

from tunelab.errors import StorageError
from tunelab.storage.base import Storage, StudyRecord, StudySummary
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


def _open_sqlite(url: str) -> Storage:
    from tunelab.storage.sql import SQLStorage

    if not url.lower().startswith("sqlite:///"):
        raise StorageError(f"SQLite URLs have three slashes before a relative path: sqlite:///tunelab.db; got {url!r}")
    path = url[len("sqlite:///"):]
    path = os.path.expanduser(path) if path.startswith("~") else path  # SQLite itself would look for a folder '~'
    url = "sqlite:///" + path  # the scheme as SQLAlchemy spells it
    if path in ("", ":memory:"):
        raise StorageError("an in-memory SQLite database is private to one connection; use storage='memory'")
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise StorageError(f"cannot create {path!r}: directory {str(parent)!r} does not exist")
    if Path(path).is_dir():
        raise StorageError(f"{path!r} is a directory; give a file name such as {os.path.join(path, 'tunelab.db')!r}")
    return SQLStorage(url)


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
    from tunelab.storage.sql import SQLStorage

    return SQLStorage(driver_url)
