"""Two studies side by side: their best values and configurations, and how fast each got there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.analysis.summary import best_trials
from tunelab.history import better
from tunelab.tracking.cost import study_cost
from tunelab.trial import Trial, TrialState

CHECKPOINTS = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def best_so_far(study: Any) -> list[tuple[int, float]]:
    """(trials finished, best value so far) after each finished trial, in the order they ended:
    the optimisation-history curve."""
    finished = sorted((t for t in study.trials if t.state.finished),
                      key=lambda t: (t.finished_at or 0.0, t.number))
    best: float | None = None
    curve = []
    for i, trial in enumerate(finished, start=1):
        if trial.state is TrialState.COMPLETED and trial.value is not None and better(trial.value, best, study.mode):
            best = trial.value
        if best is not None:
            curve.append((i, best))
    return curve


def best_after(curve: list[tuple[int, float]], n: int) -> float | None:
    """The best after ``n`` finished trials; None before the first result, and for a study that
    has not finished ``n`` trials (its best after its last is not its best after ``n``)."""
    if not curve or n > curve[-1][0]:
        return None
    value = None
    for count, best in curve:
        if count > n:
            break
        value = best
    return value


@dataclass
class Comparison:
    names: tuple[str, str]
    summary: list[tuple[str, Any, Any]]  # (row label, first study, second study)
    configs: list[tuple[str, Any, Any]]  # parameters of the two best trials
    history: list[tuple[int, float | None, float | None]]  # best after n finished trials

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "summary": [list(r) for r in self.summary],
                "configs": [list(r) for r in self.configs], "history": [list(r) for r in self.history]}


def _best(study: Any) -> Trial | None:
    best = best_trials(study)
    return best[0] if best else None


def objectives(metrics: list[str], modes: list[str]) -> str:
    """What a study optimises, as shown: ``accuracy (max), latency (min)``."""
    return ", ".join(f"{m} ({mode})" for m, mode in zip(metrics, modes))


def _compared_on(study: Any) -> str:
    """What the study optimises; of several metrics, the first is the one compared here."""
    named = objectives(study.metrics, study.modes)
    return named if len(study.metrics) == 1 else f"{named}; compared on {study.metric}"


def compare_studies(a: Any, b: Any) -> Comparison:
    bests, costs = (_best(a), _best(b)), (study_cost(a), study_cost(b))
    counts = (a.counts(cancelled_apart=True), b.counts(cancelled_apart=True))

    def pair(f) -> tuple[Any, Any]:
        return f(0), f(1)

    studies = (a, b)
    summary = [
        ("metric", *pair(lambda i: _compared_on(studies[i]))),
        ("trials", *pair(lambda i: sum(counts[i].values()))),
        ("completed", *pair(lambda i: counts[i].get("completed", 0))),
        ("failed", *pair(lambda i: counts[i].get("failed", 0))),
        ("pruned", *pair(lambda i: counts[i].get("pruned", 0))),
        ("cancelled", *pair(lambda i: counts[i].get("cancelled", 0))),
        # trials not finished, where either study has them (a multi-fidelity study's paused ones)
        *[(state, *pair(lambda i, state=state: counts[i].get(state, 0))) for state in ("running", "paused", "waiting")
          if counts[0].get(state) or counts[1].get(state)],
        ("best value", *pair(lambda i: None if bests[i] is None else bests[i].value)),
        ("best trial", *pair(lambda i: None if bests[i] is None else bests[i].number)),
        ("searcher", *pair(lambda i: (studies[i].record.settings.get("searcher") or {}).get("name"))),
        ("scheduler", *pair(lambda i: (studies[i].record.settings.get("scheduler") or {}).get("name"))),
        ("cost", *pair(lambda i: f"{costs[i].total:.4g} {costs[i].currency}")),  # 4 figures: a cost of 6e-07 is not 0
        ("environment", *pair(lambda i: studies[i].environment.get("fingerprint"))),
    ]
    params = list(dict.fromkeys([*a.space.params, *b.space.params]))
    configs = [(p, *pair(lambda i: None if bests[i] is None else bests[i].config.get(p))) for p in params]
    curves = (best_so_far(a), best_so_far(b))
    longest = max((c[-1][0] for c in curves if c), default=0)
    marks = [n for n in CHECKPOINTS if n < longest] + ([longest] if longest else [])
    history = [(n, best_after(curves[0], n), best_after(curves[1], n)) for n in marks]
    return Comparison((a.name, b.name), summary, configs, history)
