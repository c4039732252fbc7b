"""Shared pieces of the analysis commands: pick a trial, load its objective, print a table."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from typing import Any, Callable, Iterator, Sequence

from rich.markup import escape
from rich.table import Table

from tunelab.analysis.rerun import study_objective
from tunelab.cli import UsageError, storage_argument
from tunelab.commands.core import _fmt as fmt
from tunelab.commands.core import _load as load_study
from tunelab.commands.core import console

__all__ = ["fmt", "load_study", "console", "chosen_trial", "recorded_objective", "table", "add_trial_option",
           "finish_parser", "rerun_target"]


def finish_parser(parser: argparse.ArgumentParser, handler: Callable, json_output: bool = True) -> None:
    """The options every analysis command ends with: --json, --storage, and its handler."""
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
    storage_argument(parser)
    parser.set_defaults(handler=handler)


def add_trial_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The study's name and --trial N, for commands that re-run one trial's configuration."""
    parser.add_argument("name")
    parser.add_argument("--trial", type=int, default=None, help=f"trial number to {what} (default: the best trial)")


@contextlib.contextmanager
def rerun_target(args: argparse.Namespace) -> Iterator[tuple[Any, Any, Callable]]:
    """(study, chosen trial, its objective) for a command that re-runs that trial's config."""
    study = load_study(args)
    trial = chosen_trial(study, args.trial)
    with recorded_objective(study) as objective:
        yield study, trial, objective


def chosen_trial(study: Any, number: int | None) -> Any:
    if number is not None:
        return study.get_trial(number)
    if len(study.metrics) > 1:
        raise UsageError(f"study {study.name!r} has several metrics; pick a trial with --trial N")
    return study.best


@contextlib.contextmanager
def recorded_objective(study: Any) -> Iterator[Callable]:
    """The study's objective, for re-runs whose folders (a script's logs) are removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tunelab-rerun-") as folder:
        yield study_objective(study.record.settings, folder)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> Table:
    out = Table(title=escape(title) if title else title)
    for i, column in enumerate(columns):
        out.add_column(escape(column), justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*[fmt(v) for v in row])
    return out
