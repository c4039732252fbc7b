"""The ``tunelab`` command: a thin shell face over the library.

Mistakes (a wrong flag, an unknown study, a bad storage URL) print one line and exit with
code 2; nothing a user typed ever ends in a traceback. Features add their own commands by
listing a module with ``register(subparsers)`` in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console
from rich.markup import escape

from tunelab.errors import TunelabError

DEFAULT_STORAGE = "sqlite:///tunelab.db"
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


def storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=os.environ.get("TUNELAB_STORAGE", DEFAULT_STORAGE),
                        help="where studies live (default: $TUNELAB_STORAGE or %(default)s)")


def existing_storage(url: str) -> str:
    """For read-only commands: refuse to create an empty database where the user expected one."""
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


def output_file(path: str, flag: str = "-o") -> str:
    """A file a command writes (-o): its folder is made if missing; a folder in its place is refused.
    Checked before the command does its work, so that nothing computed is lost to a bad path."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file in it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot make its folder ({err.strerror})") from None
    return path


def output_folder(path: str, flag: str = "-o") -> str:
    """A folder a command writes into (-o): made if missing; a file in its place is refused."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{flag} {path} is a file; this writes a folder, name one")
    try:
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


def main(argv: Sequence[str] | None = None) -> int:
    console = Console(stderr=True, highlight=False)
    try:
        parser = build_parser()
        args = parser.parse_args(_resolve_aliases(sys.argv[1:] if argv is None else argv))
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
        console.print(f"[red]tunelab: error:[/] {escape(str(err))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("tunelab: interrupted")
        return 130
    except BrokenPipeError:  # `tunelab show x | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
