"""Where a relative path of a study points: one rule, applied in one place.

* Written in the study file (``workdir:``, ``storage:``, ``artifacts:``), a path is relative to
  the study file's folder: the file means the same wherever ``tunelab run`` is started from, and
  the database and logs it names land beside it rather than in whatever folder the shell was in.
* Typed on the command line (``--storage``, ``--set workdir=...``), it is relative to the current
  folder, as every path on a command line is (and as the shell's completion wrote it).
* The command's own paths (``{python} train.py``, ``./train.sh``) and ``result_file`` are the
  script's business: relative to the folder the command runs in, ``workdir`` (by default the
  study file's folder), as the script itself sees them.

Paths are made absolute when the file is read, so that what runs, what is recorded with the study
and what ``tunelab reproduce`` runs again later, from any folder, all name the same places.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from tunelab.script.source import Document

#: Keys holding a path (or a SQLite URL) that the rule above resolves.
PATH_KEYS = ("workdir", "storage", "artifacts")


def base_folder(doc: Document, key: str) -> Path:
    """The folder ``key``'s relative path starts from: the current one for a value given on the
    command line, the study file's otherwise."""
    return Path.cwd() if (key,) in doc.overrides else doc.path.resolve().parent


def absolute(text: str, base: Path) -> Path:
    """``text`` (``~`` expanded) from ``base``, normalised; an absolute path stays as it is."""
    return Path(os.path.normpath(base / Path(text).expanduser()))


def absolute_storage(url: str, base: Path) -> str:
    """``sqlite:///runs.db`` -> ``sqlite:////<base>/runs.db``; any other URL (a server, memory,
    an absolute or ``~`` path) as it is."""
    if not url.lower().startswith("sqlite:///"):
        return url
    path, sep, query = url[len("sqlite:///"):].partition("?")
    if path in ("", ":memory:") or path.startswith(("/", "~")):
        return url
    return "sqlite:///" + str(absolute(path, base)) + sep + query


def recordable_overrides(doc: Document, overrides: Sequence[str | tuple[str, str]], study: Any) -> list:
    """``overrides`` as a study records them, each path given on the command line replaced by its
    absolute value on ``study`` (a StudyFile): a re-run from another folder finds the same workdir."""
    out: list = []
    for override in overrides:
        flag, assignment = override if isinstance(override, (tuple, list)) else (f"--set {override}", override)
        key = assignment.partition("=")[0].strip()
        value = getattr(study, key, None) if key in PATH_KEYS and (key,) in doc.overrides else None
        out.append((flag, f"{key}={value}") if value else override)
    return out
