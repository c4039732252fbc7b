"""The first questions asked of a study: which trials are best, and what do they look like?"""

from __future__ import annotations

from typing import Any

from tunelab.history import History
from tunelab.tracking.cost import study_cost
from tunelab.trial import Trial


def _history(study: Any) -> History:
    return study.history()


def best_trials(study: Any) -> list[Trial]:
    """The best trial for one metric; the Pareto front (best first on the first metric) for several."""
    if len(study.metrics) > 1:
        return study.best_trials
    best = study.history().best()
    return [] if best is None else [best]


def pareto_front(study: Any) -> list[Trial]:
    """Completed trials that no other trial beats on every metric."""
    return study.best_trials


def top_trials(study: Any, k: int = 10) -> list[Trial]:
    """The ``k`` best completed trials on the study's (first) metric, best first."""
    history = _history(study)
    return sorted(history.completed, key=lambda t: (history.score(t), t.number))[:max(int(k), 0)]


def trials_table(study: Any, trials: list[Trial] | None = None, k: int = 10) -> list[dict[str, Any]]:
    """Rows for a top-k table: rank, trial, metrics, parameters (``params.NAME``, as in the CSV
    export: a parameter called ``number`` or ``cost`` must not overwrite those columns),
    duration, cost, worker host."""
    trials = top_trials(study, k) if trials is None else trials
    costs = study_cost(study).per_trial
    rows = []
    for rank, t in enumerate(trials, start=1):
        row: dict[str, Any] = {"rank": rank, "number": t.number}
        row.update({m: (t.value if i == 0 else t.metrics.get(m)) for i, m in enumerate(study.metrics)})
        row.update({f"params.{name}": t.config.get(name) for name in study.space.params})
        row.update({"duration_s": t.duration, "cost": costs.get(t.number),
                    "host": (t.system_attrs.get("worker") or {}).get("host")})
        rows.append(row)
    return rows
