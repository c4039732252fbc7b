"""The first questions asked of a study: which trials are best, and what do they look like?"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from tunelab.errors import ConfigError
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


def pareto_front(study: Any, metrics: Sequence[str] | None = None) -> list[Trial]:
    """Completed trials that no other trial beats on every metric; with ``metrics``, on those
    only (two of three, to draw them in a plane)."""
    if metrics is None:
        return study.best_trials
    return front_of(study.trials, study.metrics, study.modes, on=metrics)


def front_of(trials: Iterable[Trial], metrics: Sequence[str], modes: Sequence[str],
             on: Sequence[str] | None = None) -> list[Trial]:
    """The Pareto front of ``trials`` (best first on the first metric of ``on``, then by number),
    for callers that hold trials rather than a study (``tunelab studies`` reads them without their
    reports) or that want it on some of the metrics: ``metrics`` and ``modes`` are the study's,
    ``on`` the ones compared (default: all). A trial missing a value, or with one that is not a
    finite number, is on no front: it cannot be placed against the others."""
    on = list(metrics) if on is None else list(on)
    unknown = [m for m in on if m not in metrics]
    if unknown or len(set(on)) != len(on) or not on:
        raise ConfigError(f"a Pareto front is on distinct metrics of the study ({', '.join(metrics)}); got {on}")
    listed = list(trials)
    return History(lambda: listed, metrics, modes).front(on)


def top_trials(study: Any, k: int = 10, metric: str | None = None) -> list[Trial]:
    """The ``k`` best completed trials on ``metric`` (default: the study's first), best first; a
    study of several metrics ranks by the one a command was asked about (seed-check's gap)."""
    history = _history(study)
    if metric is not None and metric not in history.metrics:
        raise ConfigError(f"study {study.name!r} has no metric {metric!r}; its metrics: {', '.join(history.metrics)}")
    return sorted(history.completed, key=lambda t: (history.score(t, metric), t.number))[:max(int(k), 0)]


def trials_table(study: Any, trials: list[Trial] | None = None, k: int = 10) -> list[dict[str, Any]]:
    """Rows for a top-k table: rank, trial, metrics (``metrics.NAME``), parameters
    (``params.NAME``), duration, cost, worker host. Metrics and parameters are prefixed as in the
    CSV export: one called ``number`` or ``cost`` must not overwrite those columns (a metric named
    ``number`` linked the dashboard's row to a trial that does not exist)."""
    trials = top_trials(study, k) if trials is None else trials
    costs = study_cost(study).per_trial
    rows = []
    for rank, t in enumerate(trials, start=1):
        row: dict[str, Any] = {"rank": rank, "number": t.number}
        row.update({f"metrics.{m}": (t.value if i == 0 else t.metrics.get(m)) for i, m in enumerate(study.metrics)})
        row.update({f"params.{name}": t.config.get(name) for name in study.space.params})
        row.update({"duration_s": t.duration, "cost": costs.get(t.number),
                    "host": (t.system_attrs.get("worker") or {}).get("host")})
        rows.append(row)
    return rows


def state_counts(study: Any) -> dict[str, int]:
    """A study's trials by state, the cancelled ones (stopped by their tuner: a budget reached,
    Ctrl-C) apart from the failed: a cancelled trial says nothing of its configuration, and
    `tunelab show` lists it as cancelled. The storage counts them, reading no trial's row, so that
    `tunelab show` of a study of 100,000 stays quick."""
    return study.counts(cancelled_apart=True)
