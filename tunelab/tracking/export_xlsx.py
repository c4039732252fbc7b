"""A study as an Excel workbook: the spreadsheet the course recommends for a few parameters.

Sheet ``trials`` has one row per trial (the CSV columns plus cost and worker host; for a study of
several metrics, ``on_front`` marks its Pareto front, to filter by), sheet ``study`` the settings
and the summary, sheet ``reports`` every intermediate report (for curves).
"""

from __future__ import annotations

import json
import os
from typing import Any

from tunelab.errors import ConfigError
from tunelab.tracking.cost import study_cost


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise ConfigError("Excel export needs openpyxl: pip install 'tunelab[export]'") from None
    return openpyxl


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and value != value:  # NaN: Excel has no such number
        return "NaN"
    return value


def _append(sheet: Any, values: list[Any]) -> None:
    """A row of values, text kept as text: openpyxl takes a string that starts with "=" for a
    formula, and Excel would show a choice "=1+2" as 3 (and run whatever a value says)."""
    sheet.append(values)
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
    from tunelab.tracking.export import front_numbers, trial_rows

    openpyxl = _openpyxl()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "trials"
    trials = study.trials
    costs = study_cost(study).per_trial
    rows = trial_rows(trials, list(study.space.params), costs, front_numbers(study))
    for row, trial in zip(rows, trials):
        row["host"] = (trial.system_attrs.get("worker") or {}).get("host")
    if rows:
        _append(sheet, list(rows[0]))
        for row in rows:
            _append(sheet, [_cell(v) for v in row.values()])
        sheet.freeze_panes = "B2"
    summary = book.create_sheet("study")
    _append(summary, ["field", "value"])
    for key, value in study_summary(study):
        _append(summary, [key, _cell(value)])
    reports = book.create_sheet("reports")
    metric_names = sorted({k for t in trials for r in t.reports for k in r.metrics})
    _append(reports, ["trial", "step", *metric_names])
    for trial in trials:
        for report in trial.reports:
            _append(reports, [trial.number, report.step, *[_cell(report.metrics.get(m)) for m in metric_names]])
    book.save(os.fspath(path))
    return os.fspath(path)
