"""Shared pieces of the analysis commands: pick a trial, load its objective, print a table."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from rich.markup import escape
from rich.table import Table

from tunelab.analysis.rerun import study_objective
from tunelab.cli import UsageError, storage_argument
from tunelab.commands.core import _fmt as fmt
from tunelab.commands.core import _load as load_study
from tunelab.commands.core import console

if TYPE_CHECKING:
    from tunelab.analysis.reproduce import ObjectiveFileChange

__all__ = ["fmt", "load_study", "console", "chosen_trial", "recorded_objective", "table", "add_trial_option",
           "add_metric_option", "add_rerun_options", "chosen_metric", "metric_mode", "metric_value",
           "note_default_metric", "finish_parser", "rerun_target"]


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


def add_metric_option(parser: argparse.ArgumentParser, what: str, **kwargs: Any) -> None:
    """--metric NAME: which metric of a study with several the command is about."""
    parser.add_argument("--metric", default=None, metavar="NAME",
                        help=f"a study with several metrics: the one to {what} (default: its first)", **kwargs)


def chosen_metric(study: Any, name: str | None) -> str:
    """The metric named by --metric, checked before any work is done (a misspelt name would
    otherwise show as a run that returned no such value), or the study's first."""
    if name is None:
        return study.metric
    if name not in study.metrics:
        raise UsageError(f"study {study.name!r} has no metric {name!r}; its metrics: {', '.join(study.metrics)}")
    return name


def metric_mode(study: Any, metric: str) -> str:
    return study.modes[study.metrics.index(metric)]


def metric_value(study: Any, trial: Any, metric: str) -> Any:
    """A trial's recorded value of ``metric`` (the first metric is its ``value``)."""
    return trial.value if metric == study.metric else (trial.metrics or {}).get(metric)


def note_default_metric(study: Any, name: str | None) -> None:
    """Say, on standard error (a --json output stays JSON), which metric the output of a study
    with several is about when --metric was not given: the first is never taken without a word."""
    if name is None and len(study.metrics) > 1:
        print(f"note: study {study.name!r} has {len(study.metrics)} metrics ({', '.join(study.metrics)}); this is "
              f"about {study.metric}: choose another with --metric NAME", file=sys.stderr)


@contextlib.contextmanager
def rerun_target(args: argparse.Namespace) -> Iterator[tuple[Any, Any, Callable, str, ObjectiveFileChange | None]]:
    """(study, chosen trial, its objective, the metric read, the edit to the objective's file
    since the trial ran or None) for a command that re-runs that trial's config (options from
    ``add_rerun_options``). An edit is said on standard error before the re-runs: without it, a
    re-run's value that differs from the record would be blamed on the seed or taken for the
    trial's own."""
    from tunelab.analysis.reproduce import objective_file_change

    study = load_study(args)
    trial = chosen_trial(study, args.trial, args.metric)
    metric = chosen_metric(study, args.metric)
    note_default_metric(study, args.metric)
    with recorded_objective(study) as objective:
        change = objective_file_change(study, trial, objective)
        if change is not None:
            print(change.warning(), file=sys.stderr)
        yield study, trial, objective, metric, change


def add_rerun_options(parser: argparse.ArgumentParser, trial_what: str, metric_what: str) -> None:
    """--trial and --metric of a command that re-runs a trial (see ``rerun_target``)."""
    add_trial_option(parser, trial_what)
    add_metric_option(parser, metric_what)


def chosen_trial(study: Any, number: int | None, metric: str | None = None) -> Any:
    """Trial ``number``, or the best one: of a study with several metrics, the best on
    ``metric`` when one was named (there is no best trial of all of them)."""
    metric = None if metric is None else chosen_metric(study, metric)
    if number is not None:
        return study.get_trial(number)
    if len(study.metrics) == 1:
        return study.best
    if metric is None:
        raise UsageError(f"study {study.name!r} has several metrics ({', '.join(study.metrics)}); pick a trial "
                         "with --trial N, or the best on one metric with --metric NAME")
    from tunelab.analysis.summary import top_trials

    best = top_trials(study, k=1, metric=metric)
    if not best:
        raise UsageError(f"study {study.name!r} has no completed trial yet (trials by state: {study.counts()})")
    return best[0]


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
