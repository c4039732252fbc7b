"""A study as an Excel workbook: the spreadsheet the course recommends for a few parameters.

Sheet ``trials`` has one row per trial (the CSV columns plus cost and worker host; for a study of
several metrics, ``on_front`` marks its Pareto front, to filter by), sheet ``study`` the settings
and the summary, sheet ``reports`` every intermediate report (for curves).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

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
    formula, and Excel would show a choice "=1+2" as 3 (and run whatever a value says)."""
    sheet.append([_cell(v) for v in values])
    for cell in sheet[sheet.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"


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
    sheet = book.active
    sheet.title = "trials"
    trials = study.trials
    costs = study_cost(study).per_trial
    params, front = list(study.space.params), front_numbers(study)
    rows = trial_rows(trials, params, costs, front)
    for row, trial in zip(rows, trials):
        row["host"] = (trial.system_attrs.get("worker") or {}).get("host")
    _append(sheet, trial_columns(rows, params, front) + ([] if rows else ["host"]))  # a header even with no trials
    for row in rows:
        _append(sheet, list(row.values()))
    sheet.freeze_panes = "B2"
    summary = book.create_sheet("study")
    _append(summary, ["field", "value"])
    for key, value in study_summary(study):
        _append(summary, [key, value])
    reports = book.create_sheet("reports")
    metric_names = sorted({k for t in trials for r in t.reports for k in r.metrics})
    _append(reports, ["trial", "step", *metric_names])
    for trial in trials:
        for report in trial.reports:
            _append(reports, [trial.number, report.step, *[report.metrics.get(m) for m in metric_names]])
    book.save(os.fspath(path))
    return os.fspath(path)
