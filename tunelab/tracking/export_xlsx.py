"""A study as an Excel workbook: the spreadsheet the course recommends for a few parameters.

Sheet ``trials`` has one row per trial (the CSV columns plus cost and worker host; for a study of
several metrics, ``on_front`` marks its Pareto front, to filter by), sheet ``study`` the settings
and the summary, sheet ``reports`` every intermediate report (for curves). Rows past the million a
sheet holds go on in ``reports (2)``, ``reports (3)``... (``trials (2)``... alike).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Iterable

from tunelab import _json
from tunelab.errors import ConfigError
from tunelab.tracking.cost import study_cost


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise ConfigError("Excel export needs openpyxl: pip install 'tunelab[export]'") from None
    return openpyxl


#: Characters a worksheet cannot hold (control characters other than tab and newlines), which
#: openpyxl refuses: one colour code ("\x1b[31m") in an error message failed the whole export.
_NOT_IN_A_CELL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_CELL_CHARS = 32767  # Excel's limit; a longer text makes it "repair" the workbook
MAX_SHEET_ROWS = 1_048_576  # Excel's rows a sheet, the header's included


def _text(value: str) -> str:
    value = _NOT_IN_A_CELL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)  # shown, not dropped
    if len(value) > MAX_CELL_CHARS:
        marker = f" [cut at {MAX_CELL_CHARS} characters]"
        value = value[:MAX_CELL_CHARS - len(marker)] + marker
    return value


def _cell(value: Any) -> Any:
    """A value as a cell holds it. Excel has no NaN nor infinity (openpyxl writes an empty cell for
    them), so they are spelled as the JSON export spells them: "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _json.to_jsonable(value)
    return _text(value) if isinstance(value, str) else value


def _append(sheet: Any, values: list[Any]) -> None:
    """A row of values, text kept as text: openpyxl takes a string that starts with "=" for a
    formula, and Excel would show a choice "=1+2" as 3 (and run whatever a value says). The
    cells are made here, not looked up after (looking up the last row scans the whole sheet,
    which made exporting a study of many reports take minutes to hours)."""
    from openpyxl.cell.cell import Cell

    cells = [Cell(sheet, value=_cell(v)) for v in values]
    for cell in cells:
        if cell.data_type == "f":
            cell.data_type = "s"
    sheet.append(cells)


def _write_sheet(book: Any, title: str, header: list[Any], rows: Iterable[list[Any]],
                 first: Any = None) -> list[Any]:
    """``header`` and ``rows`` on a sheet ``title`` (``first``, when given, renamed so), continued
    on ``title (2)``, ``title (3)``... each with the header, past the MAX_SHEET_ROWS rows a sheet
    holds (openpyxl failed on the row after them, and Excel refuses a sheet with more). The sheets."""
    sheets: list[Any] = []

    def start() -> Any:
        name = f"{title} ({len(sheets) + 1})" if sheets else title
        sheet = book.create_sheet(name) if sheets or first is None else first
        sheet.title = name
        _append(sheet, header)
        sheets.append(sheet)
        return sheet

    sheet, count = start(), 1
    for row in rows:
        if count >= MAX_SHEET_ROWS:
            sheet, count = start(), 1
        _append(sheet, row)
        count += 1
    return sheets


def study_summary(study: Any) -> list[tuple[str, Any]]:
    """(field, value) rows describing a study: what it tuned, how, where, and what it found."""
    from tunelab.analysis.summary import state_counts

    record, settings, env = study.record, study.record.settings, study.environment
    cost = study_cost(study)
    counts = state_counts(study)  # cancelled apart, as `tunelab show` counts them
    best = study.history().best() if len(study.metrics) == 1 else None
    front = sorted(t.number for t in study.best_trials) if len(study.metrics) > 1 else None
    return [
        ("name", record.name), ("metrics", ", ".join(record.metrics)), ("modes", ", ".join(record.modes)),
        ("seed", record.seed), ("trials", sum(counts.values())),
        *[(f"trials {state}", n) for state, n in sorted(counts.items())],
        ("best value", None if best is None else best.value), ("best trial", None if best is None else best.number),
        ("best config", None if best is None else best.config),
        *([] if front is None else [("Pareto front (trials)", ", ".join(map(str, front)) or "none yet")]),
        ("searcher", settings.get("searcher")), ("scheduler", settings.get("scheduler")),
        ("objective", settings.get("objective")), ("artifact dir", settings.get("artifact_dir")),
        ("resources per trial", cost.resources.to_json()), ("prices", cost.prices.to_json()),
        (f"total cost ({cost.currency})", cost.total),
        ("environment fingerprint", env.get("fingerprint")), ("host", env.get("host")),
        ("python", (env.get("python") or {}).get("version")),
        ("git commit", (env.get("git") or {}).get("commit")), ("git dirty", (env.get("git") or {}).get("dirty")),
        ("space", record.space),
    ]


def write_xlsx(study: Any, path: str | os.PathLike) -> str:
    from tunelab.tracking.export import front_numbers, trial_columns, trial_rows

    openpyxl = _openpyxl()
    book = openpyxl.Workbook()
    trials = study.trials
    costs = study_cost(study).per_trial
    params, front = list(study.space.params), front_numbers(study)
    rows = trial_rows(trials, params, costs, front)
    for row, trial in zip(rows, trials):
        row["host"] = (trial.system_attrs.get("worker") or {}).get("host")
    header = trial_columns(rows, params, front) + ([] if rows else ["host"])  # a header even with no trials
    for sheet in _write_sheet(book, "trials", header, (list(row.values()) for row in rows), first=book.active):
        sheet.freeze_panes = "B2"
    _write_sheet(book, "study", ["field", "value"], ([key, value] for key, value in study_summary(study)))
    metric_names = sorted({k for t in trials for r in t.reports for k in r.metrics})
    _write_sheet(book, "reports", ["trial", "step", *metric_names],
                 ([trial.number, report.step, *[report.metrics.get(m) for m in metric_names]]
                  for trial in trials for report in trial.reports))
    book.save(os.fspath(path))
    return os.fspath(path)
