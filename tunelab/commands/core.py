"""The core commands: demo, studies, show, export, delete."""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import sys
from datetime import datetime

from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from tunelab import api
from tunelab.analysis.compare import objectives
from tunelab.analysis.summary import front_of, state_counts
from tunelab.cli import (DEFAULT_STORAGE, MEMORY_URLS, OutputConsole, UsageError, existing_storage, load_study,
                         output_file, output_folder, storage_argument, study_not_found)
from tunelab.errors import StudyNotFound
from tunelab.storage import open_storage
from tunelab.storage.base import hide_password
from tunelab.tracking.cost import study_cost
from tunelab.trial import Trial, TrialState

#: Wide enough for a trials table when the output goes to a file or a pipe.
console = OutputConsole(highlight=False, width=shutil.get_terminal_size((160, 24)).columns)


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="tune gradient boosting on bundled data (about 15 s on 2 cores)")
    demo.add_argument("--trials", type=int, default=30, help="number of trials (default %(default)s)")
    demo.add_argument("--workers", type=int, default=2, help="worker processes (default %(default)s)")
    demo.add_argument("--name", default=None, help="study name (default: demo, demo-2, ...)")
    demo.add_argument("--seed", type=int, default=0, help="the study's seed (default 0: the same run each time)")
    storage_argument(demo)
    demo.set_defaults(handler=run_demo)

    studies = subparsers.add_parser("studies", help="list the studies in a storage")
    storage_argument(studies)
    studies.set_defaults(handler=list_studies)

    show = subparsers.add_parser("show", help="a study's best trial and its trials")
    show.add_argument("name")
    show.add_argument("--limit", type=int, default=30, help="trials to list, best first (default %(default)s; 0: all)")
    show.add_argument("--sort", choices=["value", "number"], default="value",
                      help="trials best first (value, the default) or in the order they ran (number)")
    storage_argument(show)
    show.set_defaults(handler=show_study)

    export = subparsers.add_parser("export", help="write a study as CSV, JSON, Excel or TensorBoard events")
    export.add_argument("name")
    export.add_argument("--format", choices=["csv", "json", "xlsx", "tensorboard"], default=None,
                        help="default: from the -o file's extension (.csv, .json, .xlsx), else csv")
    export.add_argument("-o", "--output", default=None,
                        help="file (a folder for tensorboard) to write (default: standard output for csv/json)")
    storage_argument(export)
    export.set_defaults(handler=export_study)

    delete = subparsers.add_parser("delete", help="delete a study and its trials")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    storage_argument(delete)
    delete.set_defaults(handler=delete_study)


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise UsageError(f"{flag} must be at least 1; got {value}")
    return value


def run_demo(args: argparse.Namespace) -> int:
    import tunelab as tl
    from tunelab import demo

    trials, workers = _positive(args.trials, "--trials"), _positive(args.workers, "--workers")
    storage = open_storage(args.storage)
    taken = {s.name for s in storage.list_studies()}
    name = args.name or next(n for n in (f"demo-{i}" if i > 1 else "demo" for i in range(1, 10_000)) if n not in taken)
    console.print(f"Tuning GradientBoostingClassifier on breast_cancer (3-fold CV): {trials} trials, "
                  f"{workers} workers, study [bold]{escape(name)}[/] in {escape(hide_password(args.storage))}")
    study = tl.tune(demo.objective, demo.SPACE, metric="accuracy", mode="max", n_trials=trials, workers=workers,
                    storage=storage, name=name, seed=args.seed, enqueue=[demo.BASELINE], progress=True)
    best = study.best
    baseline = next((t for t in study.trials if t.number == 0 and t.value is not None), None)
    console.print(f"\nBest accuracy {best.value:.4f} (trial {best.number})"
                  + (f", baseline (scikit-learn defaults) {baseline.value:.4f}" if baseline else ""))
    console.print("Best configuration: " + ", ".join(f"{escape(k)}={param_text(v)}" for k, v in best.config.items()))
    if args.storage.strip() in MEMORY_URLS:  # no later command can read it: say so, not how to show it
        console.print(f"\nThe study was kept in this process's memory only; --storage {DEFAULT_STORAGE} keeps it.")
        return 0
    # commands to paste into a shell: a storage URL with a space, a '?' or a '&' quoted as one word
    flag = "" if args.storage == DEFAULT_STORAGE else f" --storage {shlex.quote(hide_password(args.storage))}"
    study_name = shlex.quote(name)
    console.print(escape(f"\nInspect it:  tunelab show {study_name}{flag}\n"
                         f"Export it:   tunelab export {study_name} -o {shlex.quote(name + '.csv')}{flag}"),
                  soft_wrap=True)  # a line each, however narrow the terminal: they are pasted whole
    return 0


def list_studies(args: argparse.Namespace) -> int:
    """One row per study from the storage's summaries (which count cancelled trials apart from
    failed ones); a study's trials are read (without their reports) only where a summary cannot
    answer: for a study of several metrics, the size of its Pareto front (its best trials, as
    `show` lists them; the first metric's best alone would hide the trade-off)."""
    storage = open_storage(existing_storage(args.storage))
    summaries = storage.list_studies()
    if not summaries:
        console.print(f"no studies in {hide_password(args.storage)}")
        return 0
    rows = [_study_row(storage, s) for s in summaries]
    shown = [c for c in rows[0] if c != "cancelled" or any(row["cancelled"] != "0" for row in rows)]  # narrow
    table = Table(title=f"studies in {hide_password(args.storage)}")
    for column in shown:
        table.add_column(column, justify="left" if column in ("name", "created", "metric") else "right")
    for row in rows:
        table.add_row(*(row[c] for c in shown))
    if any(len(s.metrics) > 1 for s in summaries):
        table.caption = "best of a study with several metrics: its trials on the Pareto front (show NAME lists them)"
    print_table(table)
    return 0


def _study_row(storage, summary) -> dict[str, str]:
    counts, best = summary.counts, _fmt(summary.best_value)
    if len(summary.metrics) > 1:
        trials = storage.trials(storage.get_study(summary.name).id)
        best = f"{len(front_of(trials, summary.metrics, summary.modes))} on front"
    created = datetime.fromtimestamp(summary.created_at).strftime("%Y-%m-%d %H:%M")
    return {"name": escape(summary.name), "created": created,
            "metric": escape(objectives(summary.metrics, summary.modes)), "trials": str(summary.n_trials),
            **{state: str(counts.get(state, 0)) for state in ("completed", "failed", "cancelled")}, "best": best}


def _load(args: argparse.Namespace):
    return load_study(args.name, args.storage)


def counts_text(study) -> str:
    """Trials by state as a line (``1 cancelled, 4 completed, 1 failed``), for the end of a run."""
    return _counts_line(state_counts(study))


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials"


def show_study(args: argparse.Namespace) -> int:
    """Reads only what it prints (counts, the best trials, the last ones) through indexed queries,
    so that a study of 100,000 trials shows in a fraction of a second; --limit 0 loads them all."""
    if args.limit < 0:
        raise UsageError(f"--limit is how many trials to list (0: all); got {args.limit}")
    study = _load(args)
    counts = state_counts(study)
    total = sum(counts.values())
    console.print(f"[bold]{escape(study.name)}[/]: {escape(objectives(study.metrics, study.modes))}, "
                  f"{_counts_line(counts)}; seed {study.seed}")
    settings = study.record.settings
    console.print(f"searcher: {(settings.get('searcher') or {}).get('name')}, "
                  f"scheduler: {(settings.get('scheduler') or {}).get('name')}, "
                  f"objective: {escape(settings.get('objective') or 'none recorded (ask/tell)')}")
    limit = args.limit if args.limit > 0 else total
    front = study.best_trials if len(study.metrics) > 1 else []
    if len(study.metrics) > 1 and args.sort == "value":
        # several metrics: the Pareto front first, then the others, most recent first
        kept = {t.id for t in front}
        trials = (front + sorted((t for t in study.trials if t.id not in kept), key=lambda t: -t.number))[:limit]
    elif args.limit <= 0:
        trials = study.trials
        if args.sort == "value":
            # as the limited view: completed trials best first, then the others, most recent first
            sign = -1 if study.mode == "max" else 1
            ranked = [t for t in trials if t.state is TrialState.COMPLETED and t.value is not None]
            ranked.sort(key=lambda t: (sign * t.value, t.number))
            kept = {t.id for t in ranked}
            trials = ranked + sorted((t for t in trials if t.id not in kept), key=lambda t: -t.number)
    elif args.sort == "value":
        trials = study.top_trials(limit)
        if len(trials) < limit:  # then the trials without a value, most recent first
            shown = {t.number for t in trials}
            trials += [t for t in reversed(study.last_trials(limit + len(shown))) if t.number not in shown]
            trials = trials[:limit]
    else:
        trials = study.last_trials(limit)
    cost = study_cost(study, trials)  # the total is summed by the storage
    console.print(f"cost: {cost.total:.4g} {cost.currency} (a trial holds {cost.resources.cpus:g} CPU cores and "
                  f"{cost.resources.gpus:g} GPUs at {cost.prices.cpu_hour:g}/{cost.prices.gpu_hour:g} per hour); "
                  f"files: {study.folder}")
    top = study.top_trials(1) if len(study.metrics) == 1 else []
    if len(study.metrics) > 1:
        numbers = ", ".join(str(t.number) for t in sorted(front, key=lambda t: t.number))
        console.print(f"Pareto front (no trial better on every metric): trials {numbers or 'none yet'}")
    if top:
        best = top[0]
        console.print(f"best: trial {best.number}, {escape(study.metric)} = {_fmt(best.value)}")
        console.print("      " + ", ".join(f"{escape(k)}={param_text(v)}" for k, v in best.config.items()))
    # Trials read without their reports (all but --limit 0) get how far they went from the index.
    furthest = study.storage.furthest_steps([t.id for t in trials if not t.reports]) if study.fidelity else {}
    print_table(_trials_table(study, trials, cost.per_trial, furthest))
    if len(trials) < total:
        console.print(f"({total - len(trials)} more; --limit 0 lists all)")
    return 0


def _trials_table(study, trials: list[Trial], costs: dict[int, float], furthest: dict[int, float]) -> Table:
    table = Table()
    budgets = study.fidelity is not None  # how far each trial went: a rung, where it was stopped, the full run
    columns = ("#", "state", *study.metrics, *(["reached"] if budgets else []), "duration", "cost")
    for column in columns:
        table.add_column(escape(column), justify="right")
    for name in study.space.params:  # a parameter named like a metric (or "cost") is told apart
        table.add_column(escape(name if name not in columns else f"params.{name}"), justify="right")
    table.add_column("failure")  # why a trial failed; "error" is a common metric name
    style = {"completed": "", "failed": "red", "pruned": "yellow", "running": "cyan", "paused": "blue",
             "cancelled": "yellow"}
    for t in trials:
        duration = f"{t.duration:.2f}s" if t.duration is not None else ""
        error = escape((t.error or "").splitlines()[0][:60]) if t.error else ""
        # no report: a completed trial's result stands for its budget; any other got nowhere yet
        reached = max(r.step for r in t.reports) if t.reports else \
            furthest.get(t.id, t.budget if t.state is TrialState.COMPLETED else None)
        budget = [_fmt(reached) if reached is not None else ""] if budgets else []
        values = [_fmt(t.value)] + [_fmt((t.metrics or {}).get(m)) for m in study.metrics[1:]]
        # failed, as storage counts it, but stopped by its tuner (a budget reached), not by its own doing
        state = t.shown_state
        table.add_row(str(t.number), state, *values, *budget, duration, f"{costs.get(t.number, 0.0):.3g}",
                      *[param_text(t.config[n]) if n in t.config else "-" for n in study.space.params], error,
                      style=style.get(state, ""))
    return table


#: The formats a file's extension names.
_EXTENSIONS = {".csv": "csv", ".json": "json", ".xlsx": "xlsx"}


def _export_format(given: str | None, output: str | None) -> str:
    """--format, or the one the -o file's extension names: ``-o demo.xlsx`` wrote CSV text into a
    file named .xlsx, which spreadsheets refuse to open. A format that contradicts the extension
    is refused rather than written under a misleading name."""
    from pathlib import Path

    named = _EXTENSIONS.get(Path(output).suffix.lower()) if output else None
    if given is None:
        return named or "csv"
    if named is not None and named != given and given != "tensorboard":  # (a folder: its name is its own)
        raise UsageError(f"-o {output} names a .{named} file but --format is {given}; give -o a name ending in "
                         f".{given}, or leave --format out to write {named}")
    return given


def export_study(args: argparse.Namespace) -> int:
    from tunelab.tracking.export import TEXT_FORMATS, export, write

    args.format = _export_format(args.format, args.output)
    if args.output is not None:  # -o "" (an unset shell variable) is refused, not taken for stdout
        path = output_folder(args.output) if args.format == "tensorboard" else output_file(args.output)
        print(f"wrote {write(_load(args), args.format, path)}")
    elif args.format in TEXT_FORMATS:
        _write_utf8(export(_load(args), args.format))
    else:
        raise UsageError(f"--format {args.format} writes a {'folder' if args.format == 'tensorboard' else 'file'}: "
                         "give it with -o PATH")
    return 0


def _write_utf8(text: str) -> None:
    """Data on standard output as UTF-8, as -o writes it, whatever the locale's encoding: the same
    bytes for ``export > f.csv`` as for ``-o f.csv``, and no character of a name or value lost (or
    a crash) under an ASCII locale or a Windows code page."""
    stream = sys.stdout
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
    if encoding in ("utf-8", "utf8") or not hasattr(stream, "buffer"):
        stream.write(text)
    else:
        stream.flush()
        stream.buffer.write(text.encode("utf-8"))
    stream.flush()


def delete_study(args: argparse.Namespace) -> int:
    storage = open_storage(existing_storage(args.storage))
    try:  # the record alone: a study whose space or settings no longer load can still be deleted
        storage.get_study(args.name)
    except StudyNotFound as err:
        raise study_not_found(err, args.name, args.storage) from None
    if not args.yes:
        try:
            answer = input(f"delete study {args.name!r} and all its trials from {hide_password(args.storage)}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    api.delete_study(args.name, storage)
    print(f"deleted {args.name}")
    return 0


def print_table(table: Table, keep: int = 1) -> None:
    """Print a table with every value whole. Fitted to the width by rich, a table too wide has its
    cells cut to '…' (the demo's accuracy of 0.968384 read '0.9…' on an 80-column terminal, and a
    study of many parameters lost digits in a file). Instead, on a terminal a table too wide goes
    out in blocks of columns that fit, each led by its first ``keep`` columns (what names a row),
    and to a file or a pipe at its full width, which no terminal limits."""
    options = console.options.update_width(100_000)
    widths = [max(Measurement.get(console, options, cell).maximum for cell in (column.header, *column.cells)) + 3
              for column in table.columns]  # + the padding either side and the border
    if sum(widths) + 1 <= console.width:
        console.print(table)
    elif not console.is_terminal:
        OutputConsole(highlight=False, width=sum(widths) + 1).print(table)
    else:
        blocks = _column_blocks(widths, keep, console.width)
        for number, block in enumerate(blocks):
            console.print(_part_of(table, block, first=number == 0, last=number == len(blocks) - 1))


def _column_blocks(widths: list[int], keep: int, room: int) -> list[list[int]]:
    """The columns of each block: the first ``keep``, then as many of the others as fit (one at
    least, which rich then folds, where a single column is wider than the terminal)."""
    blocks: list[list[int]] = []
    for index in range(keep, len(widths)):
        if blocks and sum(widths[i] for i in blocks[-1]) + widths[index] + 1 <= room:
            blocks[-1].append(index)
        else:
            blocks.append([*range(keep), index])
    return blocks or [list(range(len(widths)))]


def _part_of(table: Table, columns: list[int], first: bool, last: bool) -> Table:
    """A table of some of ``table``'s columns, its title above the first part, its caption below the last."""
    part = Table(title=table.title if first else None, caption=table.caption if last else None)
    cells = []
    for index in columns:
        column = table.columns[index]
        part.add_column(column.header, justify=column.justify, style=column.style, no_wrap=column.no_wrap)
        cells.append(list(column.cells))
    for number, row in enumerate(table.rows):
        part.add_row(*(column_cells[number] for column_cells in cells), style=row.style)
    return part


def param_text(value) -> str:
    """A parameter's value as a table cell or console text shows it. ``None`` is a value a choice
    may offer (scikit-learn's ``max_features=None``: all features), written as such: "-" marks a
    parameter a trial does not have (its condition was false), and the demo's best configuration
    read ``max_features=-``, as if it had none."""
    return "None" if value is None else _fmt(value)


def _fmt(value) -> str:
    """A value as a table cell or console text shows it; escaped, since rich reads square brackets
    as markup (a choice "a[/]" crashed `show`, "[red]b" printed as "b")."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return escape(str(value))
