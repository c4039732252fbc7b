"""Where a study keeps its files: per-trial folders for logs and the artefacts an objective saves.

The folder sits next to the database so that copying ``tunelab.db`` and ``tunelab-artifacts/``
together moves a whole experiment: ``tunelab-artifacts/<study>/<trial number>/`` (``tunelab run``
keeps its scripts' logs and checkpoints there too). A study takes ``<study>-2`` instead when
``<study>`` is there already, left by a study of the same name in another database. A study in
memory gets a temporary folder that lives as long as the process (as the study does). The
resolved folder is written into the study's settings when the study is created, so readers (the
CLI, the dashboard, ``reproduce``) find it without knowing how it was chosen.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import os
import shutil
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, TextIO

from tunelab.errors import ConfigError

ARTIFACTS_FOLDER = "tunelab-artifacts"
STDOUT, STDERR = "stdout.txt", "stderr.txt"  # what the objective printed, captured by its worker
#: Logs a trial folder may hold, by stream: the objective's own, then a script's (``tunelab run``).
LOGS = {"stdout": (STDOUT, "stdout.log"), "stderr": (STDERR, "stderr.log")}
_TEMP_DIRS: list[str] = []


def default_artifact_root(storage_url: str) -> Path:
    """``tunelab-artifacts`` beside a SQLite file (or in the working folder for a server
    database); a temporary folder for a study in memory.

    The file is the one the database driver opens: the path without its ``?mode=...``, with
    ``%20``, ``%23``... decoded (the logs of a database in "my runs/", written
    ``sqlite:///my%20runs/x.db``, went to a folder "my%20runs/" of their own)."""
    if storage_url[:len("sqlite:///")].lower() == "sqlite:///":
        path = urllib.parse.unquote(storage_url[len("sqlite:///"):].partition("?")[0])
        return Path(path).expanduser().resolve().parent / ARTIFACTS_FOLDER
    if storage_url == "memory":
        return Path(_temporary_root())
    return Path.cwd().resolve() / ARTIFACTS_FOLDER


def _temporary_root() -> str:
    """A folder removed when the process ends, like the in-memory studies whose files it holds."""
    if not _TEMP_DIRS:
        _TEMP_DIRS.append(tempfile.mkdtemp(prefix="tunelab-artifacts-"))
        atexit.register(shutil.rmtree, _TEMP_DIRS[0], True)
    return _TEMP_DIRS[0]


def resolve_artifact_root(storage_url: str, artifact_dir: str | os.PathLike | None) -> str:
    """The absolute root folder a study will use (checked here, at the boundary)."""
    if artifact_dir is None:
        return str(default_artifact_root(storage_url))
    if not isinstance(artifact_dir, (str, os.PathLike)) or not os.fspath(artifact_dir):
        raise ConfigError(f"artifact_dir must be a folder path; got {artifact_dir!r}")
    path = Path(artifact_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"artifact_dir {str(path)!r} exists and is not a folder")
    return str(path)


def claim_study_folder(root: str | os.PathLike, study: str) -> str:
    """The name of a new study's folder under ``root``, created now: the study's name, or when a
    folder of that name is there already, ``<name>-2``, ``<name>-3``... Such a folder belongs to
    a study of the same name in another database beside this one (or to one whose database was
    deleted): sharing it would mix the two studies' logs and load one's checkpoints into the
    other. Created at once, so that a study made later elsewhere finds it taken."""
    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
        for k in itertools.count(1):
            folder = study if k == 1 else f"{study}-{k}"
            with contextlib.suppress(FileExistsError):
                (base / folder).mkdir()
                return folder
    except OSError:  # a folder we cannot write: the trials that need it will say so
        pass
    return study


@contextlib.contextmanager
def folder_claims(root: str | os.PathLike) -> Iterator[None]:
    """Processes of this machine creating studies under ``root`` take turns (a lock file there),
    so that a claim and the study's creation are one step: two processes creating the same
    study at once would otherwise claim ``<name>`` and ``<name>-2``, and if the second won the
    race in the database, the study would keep ``-2`` while ``<name>`` was given back."""
    try:
        import fcntl

        Path(root).mkdir(parents=True, exist_ok=True)
        handle = os.open(os.path.join(root, ".claims.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):  # no flock (Windows), or a folder we cannot write: no turns
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def release_study_folder(root: str | os.PathLike, folder: str) -> None:
    """Give back a claimed folder that no study came to use (another process created the study)."""
    with contextlib.suppress(OSError):
        (Path(root) / folder).rmdir()  # only while empty


def study_folder(settings: dict[str, Any], storage_url: str, study: str) -> Path:
    """The folder of one study's files: ``<root>/<folder>``, as recorded when it was created (a
    study recorded before folders were claimed uses its name)."""
    return study_root(settings, storage_url) / (settings.get("folder") or study)


def study_root(settings: dict[str, Any], storage_url: str) -> Path:
    """The root folder of a study's files: the one recorded when it was created, else the default."""
    return Path(settings.get("artifact_dir") or default_artifact_root(storage_url))


def delete_study_files(settings: dict[str, Any], storage_url: str, study: str) -> None:
    """Remove a deleted study's folder (logs, checkpoints, artefacts): a later study of the same
    name would otherwise find its trials' checkpoints and go on from them."""
    shutil.rmtree(study_folder(settings, storage_url, study), ignore_errors=True)


def safe_child(folder: str | os.PathLike, name: str) -> Path:
    """``folder/name`` for a relative name that stays inside ``folder`` (no '..', no absolute path)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"an artefact name must be a non-empty relative path such as 'model.pt'; got {name!r}")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ConfigError(f"an artefact name must stay inside the trial's folder; got {name!r}")
    return Path(folder) / relative


def read_logs(folder: str | os.PathLike | None) -> dict[str, str]:
    """Each stream's logs in a trial folder, joined (a script trial has both kinds)."""
    return {stream: "".join(read_log(folder, name) for name in names) for stream, names in LOGS.items()}


def read_log(folder: str | os.PathLike | None, name: str, limit: int = 200_000) -> str:
    """The end of a captured log (the end is where the error is), or '' when there is none."""
    if folder is None:
        return ""
    path = Path(folder) / name
    try:
        with open(path, "rb") as handle:
            handle.seek(max(path.stat().st_size - limit, 0))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


# -- capturing what a trial prints ------------------------------------------------------------------
class _ThreadTee(io.TextIOBase):
    """Stands in for ``sys.stdout`` (or ``sys.stderr``) while trials run in the tuner's process:
    everything goes to the console, and what a thread running a trial writes goes to that
    trial's log as well.

    One tee per stream serves every thread: trials running side by side on threads (Dask's
    threads, say) would otherwise each swap ``sys.stdout`` and restore it in whatever order they
    end, leaving a log file that is closed in its place. The progress bar refreshes from a thread
    of its own, so its frames never land in a trial's log.
    """

    def __init__(self, console: TextIO):
        self.console = console
        self.logs: dict[int, TextIO] = {}  # thread ident -> the log of the trial it runs

    def write(self, text: str) -> int:
        log = self.logs.get(threading.get_ident())
        if log is not None:
            log.write(text)
        return self.console.write(text)

    def flush(self) -> None:
        log = self.logs.get(threading.get_ident())
        if log is not None:
            log.flush()
        self.console.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The console's descriptor: code that hands ``sys.stdout`` to a child process
        (``subprocess.run(..., stdout=sys.stdout)``) or to ``faulthandler`` runs as it does
        outside tunelab; what is written there reaches the console, not the trial's log."""
        return self.console.fileno()

    def __getattr__(self, name: str) -> Any:
        """What a text stream has beyond writing (``buffer``, ``name``, ``reconfigure``...) is the
        console's: an objective that uses it works as it does outside tunelab."""
        if name == "console":  # not set yet (being built or unpickled): no stream to ask
            raise AttributeError(name)
        return getattr(self.console, name)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.console, "encoding", "utf-8")


_tee_lock = threading.Lock()


@contextlib.contextmanager
def _teed(name: str, log: TextIO) -> Iterator[None]:
    """While inside, what this thread writes to ``sys.<name>`` goes to ``log`` too. The tee is
    put in place by the first thread in and taken out by the last one out."""
    me = threading.get_ident()
    with _tee_lock:
        tee = getattr(sys, name)
        if not isinstance(tee, _ThreadTee):
            tee = _ThreadTee(tee)
            setattr(sys, name, tee)
        tee.logs[me] = log
    try:
        yield
    finally:
        with _tee_lock:
            tee.logs.pop(me, None)
            if not tee.logs and getattr(sys, name) is tee:
                setattr(sys, name, tee.console)


@contextlib.contextmanager
def capture_output(folder: str | os.PathLike | None, *, whole_process: bool) -> Iterator[None]:
    """Save what the code inside prints to ``folder/stdout.txt`` and ``folder/stderr.txt``.

    ``whole_process`` redirects the file descriptors themselves, so output of C extensions and of
    child processes is kept too; only a worker process that does nothing else may do that. In the
    tuner's process the Python streams are teed instead, so the user still sees the output.
    """
    if folder is None:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(folder / STDOUT, "a", encoding="utf-8") as out, open(folder / STDERR, "a", encoding="utf-8") as err:
            if whole_process:
                with _redirect_fd(sys.stdout, 1, out), _redirect_fd(sys.stderr, 2, err):
                    yield
            else:
                with _teed("stdout", out), _teed("stderr", err):
                    yield
    finally:
        for name in (STDOUT, STDERR):  # a silent trial leaves no empty logs behind
            with contextlib.suppress(OSError):
                if (folder / name).stat().st_size == 0:
                    (folder / name).unlink()


@contextlib.contextmanager
def _redirect_fd(stream: Any, fd: int, target: TextIO) -> Iterator[None]:
    with contextlib.suppress(Exception):
        stream.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor (a detached worker): keep what Python itself prints
        with (contextlib.redirect_stdout if fd == 1 else contextlib.redirect_stderr)(target):
            yield
        return
    os.dup2(target.fileno(), fd)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            stream.flush()
        os.dup2(saved, fd)
        os.close(saved)
