"""Export a study as flat rows (CSV, for a spreadsheet) or as one JSON document (everything,
for a colleague or another tool); Excel and TensorBoard live in their own modules. All are
read-only views over storage."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone
from typing import Any, Iterable

from tunelab import _json
from tunelab.tracking.cost import study_cost
from tunelab.trial import Trial

FORMATS = ("csv", "json", "xlsx", "tensorboard")
TEXT_FORMATS = ("csv", "json")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


#: The columns after a trial's parameters, metrics and user attributes.
_LAST = ("seed", "budget", "started_at", "finished_at", "duration_s", "cost", "n_reports", "error")


def front_numbers(study: Any) -> set[int] | None:
    """The numbers of the trials on a study's Pareto front; None for a study of one metric, whose
    exports keep their columns (its best trial is the one with the best value)."""
    return {t.number for t in study.best_trials} if len(study.metrics) > 1 else None


def trial_rows(trials: Iterable[Trial], param_names: list[str], costs: dict[int, float] | None = None,
               front: set[int] | None = None) -> list[dict[str, Any]]:
    """One flat dict per trial: number, state, value, on_front (a study of several metrics:
    whether no trial beats it on all of them, by ``front``'s numbers), params.*, metrics.*, seed,
    times, cost (in the study's currency, from ``costs`` by trial number), error."""
    costs = costs or {}
    trials = list(trials)
    metric_names = sorted({k for t in trials for k in t.metrics})
    attr_names = sorted({k for t in trials for k in t.user_attrs})
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.shown_state, "value": t.value}
        if front is not None:
            row["on_front"] = t.number in front
        row.update({f"params.{p}": t.config.get(p) for p in param_names})
        row.update({f"metrics.{m}": t.metrics.get(m) for m in metric_names})
        row.update({f"user_attrs.{a}": t.user_attrs.get(a) for a in attr_names})
        row.update(zip(_LAST, (t.seed, t.budget, _iso(t.started_at), _iso(t.finished_at), t.duration,
                               costs.get(t.number), len(t.reports), t.error)))
        rows.append(row)
    return rows


def trial_columns(rows: list[dict[str, Any]], param_names: list[str], front: set[int] | None) -> list[str]:
    """The columns of :func:`trial_rows`; those of a study without trials too, so that its export
    still has a header (a reader such as pandas then sees the columns, not an error)."""
    return list(rows[0]) if rows else ["number", "state", "value", *(["on_front"] if front is not None else []),
                                       *(f"params.{p}" for p in param_names), *_LAST]


def to_csv(study: Any) -> str:
    params, front = list(study.space.params), front_numbers(study)
    rows = trial_rows(study.trials, params, study_cost(study).per_trial, front)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=trial_columns(rows, params, front), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return out.getvalue()


def study_document(study: Any) -> dict[str, Any]:
    """The whole study as JSON-ready data: settings, space, environment, trials with curves."""
    record = study.record
    cost = study_cost(study)
    front = front_numbers(study)
    return _json.to_jsonable({
        "name": record.name, "metrics": record.metrics, "modes": record.modes, "seed": record.seed,
        "created_at": _iso(record.created_at), "space": record.space, "settings": record.settings,
        "environment": record.environment, "user_attrs": record.user_attrs,
        "cost": {"total": cost.total, "currency": cost.currency},
        "trials": [{
            "number": t.number, "state": t.shown_state, "config": t.config, "seed": t.seed, "value": t.value,
            **({} if front is None else {"on_front": t.number in front}),
            "metrics": t.metrics, "budget": t.budget, "started_at": _iso(t.started_at),
            "finished_at": _iso(t.finished_at), "duration_s": t.duration, "cost": cost.per_trial.get(t.number),
            "error": t.error, "traceback": t.traceback, "user_attrs": t.user_attrs,
            "system_attrs": t.system_attrs,
            "reports": [{"step": r.step, "metrics": r.metrics, "time": r.time} for r in t.reports],
        } for t in study.trials],
    })


def to_json(study: Any) -> str:
    return json.dumps(study_document(study), indent=2, allow_nan=False)


def export(study: Any, fmt: str) -> str:
    if fmt == "csv":
        return to_csv(study)
    if fmt == "json":
        return to_json(study)
    raise ValueError(f"unknown text export format {fmt!r}; known: {', '.join(TEXT_FORMATS)}")


def write(study: Any, fmt: str, output: str | os.PathLike) -> str:
    """Write ``study`` to ``output``: a file (csv, json, xlsx) or a folder (tensorboard)."""
    if fmt in TEXT_FORMATS:
        # UTF-8 whatever the locale (a parameter named "λ" failed to write where it is ASCII or
        # cp1252), and newlines as exported (Windows made a "\n" inside a CSV value "\r\n")
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(export(study, fmt))
        return os.fspath(output)
    if fmt == "xlsx":
        from tunelab.tracking.export_xlsx import write_xlsx

        return write_xlsx(study, output)
    if fmt == "tensorboard":
        from tunelab.tracking.export_tensorboard import write_tensorboard

        return write_tensorboard(study, output)
    raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
