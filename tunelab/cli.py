"""The ``tunelab`` command: a thin shell face over the library.

Mistakes (a wrong flag, an unknown study, a bad storage URL) print one line and exit with
code 2; nothing a user typed ever ends in a traceback. Features add their own commands by
listing a module with ``register(subparsers)`` in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console
from rich.markup import escape

from tunelab.errors import StorageError, StudyNotFound, TunelabError

DEFAULT_STORAGE = "sqlite:///tunelab.db"
#: The spellings of memory storage (see tunelab.storage.open_storage).
MEMORY_URLS = ("memory", "memory://", ":memory:")
#: Modules that add subcommands: each has register(subparsers) -> None.
COMMAND_MODULES = [
    "tunelab.commands.core",
    "tunelab.commands.run",
    "tunelab.commands.importance",
    "tunelab.commands.sensitivity",
    "tunelab.commands.seedcheck",
    "tunelab.commands.compare",
    "tunelab.commands.reproduce",
    "tunelab.commands.plot",
    "tunelab.commands.dashboard",
    "tunelab.commands.nas",
    "tunelab.commands.bench",
    "tunelab.commands.bench_mf",
    "tunelab.commands.worker",
]


class UsageError(TunelabError):
    """A command line that cannot be understood."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (and the exit code 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


STORAGE_VARIABLE = "TUNELAB_STORAGE"


def _storage_from_environment() -> str | None:
    """$TUNELAB_STORAGE, where it is set to something: an empty one (``export TUNELAB_STORAGE=``)
    means unset, as it does for most tools, rather than a storage URL of ''."""
    return os.environ.get(STORAGE_VARIABLE, "").strip() or None


class OutputConsole(Console):
    """rich's console for a command's output. A reader that goes away (``tunelab show x | head``)
    ends the command as any other write to a closed pipe does, through ``main``, where rich's own
    handling exited with status 1 and print's with 0."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=_storage_from_environment() or DEFAULT_STORAGE,
                        help=f"where studies live (default: ${STORAGE_VARIABLE} or {DEFAULT_STORAGE})")


def load_study(name: str, url: str, **options):
    """The study ``name`` of the storage at ``url``, for a command that reads it (``options``:
    tl.load_study's); a name that is not there is said with the close names that are (a typo is
    the usual cause), or with the names there are when the storage holds few."""
    import tunelab as tl

    url = existing_storage(url)
    try:
        return tl.load_study(name, storage=url, **options)
    except StudyNotFound as err:
        raise study_not_found(err, name, url) from None


def study_not_found(err: StudyNotFound, name: str, url: str) -> StudyNotFound:
    """``err`` (no study ``name`` at ``url``) with '; did you mean ...' where the storage holds a
    close name, or the names it holds where they are few."""
    from tunelab.storage import open_storage

    try:
        names = [s.name for s in open_storage(url).list_studies()]
    except TunelabError:
        return err
    return StudyNotFound(f"{err}{_other_names(name, names)}")


def _other_names(name: str, names: list[str]) -> str:
    """What to add to 'no study named ...': the close names, else the few there are, else a hint."""
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close += [n for n in names if n.lower() == name.lower() and n not in close]  # only the case differs
    if close:
        return "; did you mean " + " or ".join(repr(n) for n in close) + "?"
    if not names:
        return " (it holds no studies)"
    if len(names) <= 5:
        return "; its studies: " + ", ".join(names)
    return f"; 'tunelab studies --storage URL' lists its {len(names)} studies"


def existing_storage(url: str) -> str:
    """For read-only commands: refuse to create an empty database where the user expected one, and
    memory storage, which a new process always finds empty ("no studies in memory" read as if the
    studies were lost)."""
    if url.strip() in MEMORY_URLS:
        raise UsageError("memory storage belongs to the process that made it and is always empty here: pass "
                         "--storage sqlite:///path/to/file.db (or a postgresql:// URL) where the study was written")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///file:"):
        from sqlalchemy.engine import make_url

        try:  # the file SQLAlchemy will open: %-escapes decoded, a ?query left out
            path = Path(make_url(url).database or "").expanduser()
        except Exception:  # noqa: BLE001 (a URL it cannot parse: the storage says what is wrong)
            return url
        if not path.exists():
            raise UsageError(f"no tunelab database at {path} (run a study first, or pass --storage URL)")
        if path.is_file() and not _holds_tunelab_tables(path):  # left as it is: another application's file
            raise UsageError(f"{path} is not a tunelab database (no tunelab tables in it); pass the --storage URL "
                             "of one")
    return url


def _holds_tunelab_tables(path: Path) -> bool:
    """Whether a SQLite file has tunelab's tables, read without writing (an empty file, or
    another application's database, is not turned into a tunelab one by a command that only
    reads). A file that is no SQLite database at all, or one that cannot be read, is left to the
    storage's own error."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'tunelab_meta'").fetchone() is not None
    except sqlite3.DatabaseError:
        return True  # not SQLite, or not readable so: the storage says which


def output_file(path: str, flag: str = "-o", suffixes: tuple[str, ...] = ()) -> str:
    """A file a command writes (-o): its folder is made if missing; a folder in its place is refused,
    and so is a file that cannot be written (no permission, a read-only or special file system, a
    name too long), or, where ``suffixes`` are given, one named as another kind of file (HTML
    written into ``x.png``). Checked before the command does its work, so that nothing computed is
    lost to a bad path, and the user reads one line instead of a traceback."""
    if not path:
        raise UsageError(f"{flag} needs a file name; got an empty one")
    target = Path(path)
    try:
        if target.is_dir():
            raise UsageError(f"{flag} {path} is a folder; name a file in it")
        existed = target.exists()
    except OSError as err:  # a name too long, a part of the path that is a file, ...
        raise UsageError(f"{flag} {path}: cannot write it ({err.strerror})") from None
    if suffixes and not path.lower().endswith(suffixes):
        raise UsageError(f"{flag} writes {' or '.join(suffixes)}; got {path!r} (name it e.g. {Path(path).stem}"
                         f"{suffixes[0]})")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot make its folder ({err.strerror})") from None
    try:
        with open(target, "a"):  # appending nothing: an existing file is left as it is
            pass
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write it ({err.strerror})") from None
    if not existed:
        target.unlink()  # made only to try: the command writes it when its work is done
    return path


def output_folder(path: str, flag: str = "-o") -> str:
    """A folder a command writes into (-o): made if missing; a file in its place is refused."""
    if not path:
        raise UsageError(f"{flag} needs a folder name; got an empty one")
    target = Path(path)
    try:
        if target.exists() and not target.is_dir():
            raise UsageError(f"{flag} {path} is a file; this writes a folder, name one")
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot make the folder ({err.strerror})") from None
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tunelab", description="Tune machine-learning models and keep every experiment.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


#: ``tunelab bench --multi-fidelity ...`` is ``tunelab bench-mf ...``: one benchmark command for
#: users who look for it there, one parser for its options.
_FLAG_ALIASES = {("bench", "--multi-fidelity"): "bench-mf"}


def _resolve_aliases(argv: Sequence[str]) -> list[str]:
    argv = list(argv)
    if argv:
        for (command, flag), target in _FLAG_ALIASES.items():
            if argv[0] == command and flag in argv[1:]:
                return [target, *(a for a in argv[1:] if a != flag)]
    return argv


def _tolerate_any_encoding() -> None:
    """Where the output's encoding cannot hold every character (an ASCII locale, a Windows code
    page, PYTHONIOENCODING=ascii), one it lacks is written as an escape (``\\xe9``) instead of
    ending the command in a UnicodeEncodeError: study names, parameter values and metric names
    may be in any script. (``export`` writes its data as UTF-8 whatever the locale.)"""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if not encoding.startswith("utf") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):  # a stream that cannot be reconfigured is left as it is
                stream.reconfigure(errors="backslashreplace")


def _storage_note(err: TunelabError, args: argparse.Namespace | None, argv: Sequence[str]) -> str:
    """' (the storage is $TUNELAB_STORAGE)' for an error about a storage that the user did not
    type: without it, a wrong URL in the environment reads as a mistake in the command line."""
    env = _storage_from_environment()
    if args is None or env is None or getattr(args, "storage", None) != env:
        return ""
    if any(a == "--storage" or a.startswith("--storage=") for a in argv):
        return ""
    if isinstance(err, StorageError) or "--storage" in str(err):
        from tunelab.storage.base import hide_password

        return f" (the storage is ${STORAGE_VARIABLE}={hide_password(env)})"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    _tolerate_any_encoding()
    console = Console(stderr=True, highlight=False)
    argv = _resolve_aliases(sys.argv[1:] if argv is None else argv)
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from tunelab import __version__

            print(f"tunelab {__version__}")
            return 0
        handler: Callable | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return int(handler(args) or 0)
    except TunelabError as err:
        # one line, also where a message quotes a driver's own of several (PostgreSQL's "Is the server running ...")
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        console.print(f"[red]tunelab: error:[/] {escape(message + _storage_note(err, args, argv))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("tunelab: interrupted")
        return 130
    except BrokenPipeError:  # `tunelab show x | head`: what the reader wanted, it has
        with contextlib.suppress(OSError):  # nothing more reaches the pipe, not even Python's flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
