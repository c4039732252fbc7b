"""What the dashboard shows, as JSON: built from storage through the study and analysis APIs.

Studies are kept open between requests so that each poll of a running study reads only what is
new (the study's incremental sync); a lock per study keeps the web server's threads from
syncing one study at the same time. Nothing here writes to storage.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from tunelab.analysis import plots
from tunelab.analysis.compare import compare_studies
from tunelab.analysis.importance import fanova_importance
from tunelab.analysis.summary import best_trials, trials_table
from tunelab.api import load_study
from tunelab.errors import ConfigError
from tunelab.storage import Storage
from tunelab.study import WORKER, Study
from tunelab.tracking.artifacts import read_logs
from tunelab.tracking.cost import study_cost
from tunelab.trial import Trial, TrialState

TOP_K = 10


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _trial_brief(trial: Trial) -> dict[str, Any]:
    # Metrics go out as recorded: a NaN or inf a run reported is spelled "NaN" / "Infinity" (as
    # in its reports), not turned into the "-" of a metric it never reported.
    return {"number": trial.number, "state": trial.shown_state, "value": _number(trial.value),
            "metrics": dict(trial.metrics),
            "config": trial.config, "duration_s": trial.duration,
            "host": (trial.system_attrs.get(WORKER) or {}).get("host"), "error": trial.error}


def _file_name(path: PurePath) -> str:
    """A file's name as text the page can show: a name that is not UTF-8 (an archive from another
    system unpacked in a trial's folder) is a lone surrogate in Python, which JSON cannot encode (the
    whole trial page was a server error); its odd bytes are written as escapes instead."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class TrialNotFound(LookupError):
    """No trial of that number in the study (the page answers 404, as for a study)."""


class DashboardData:
    def __init__(self, storage: Storage):
        self.storage = storage
        self._studies: dict[str, tuple[Study, threading.Lock]] = {}
        self._importance: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._guard = threading.Lock()

    def _open(self, name: str) -> tuple[Study, threading.Lock]:
        """The study of that name as storage has it now: one deleted since is not found (404),
        and one created again under the name replaces the old one (same name, another record)."""
        record = self.storage.get_study(name)  # StudyNotFound once deleted
        with self._guard:
            kept = self._studies.get(name)
            if kept is None or (kept[0].record.id, kept[0].record.created_at) != (record.id, record.created_at):
                # The dashboard proposes nothing and decides nothing: plain stand-ins for the recorded
                # searcher and scheduler, which may be a user's own (registered in the process that
                # tuned, not here: the study could not be shown at all) or need an extra (PyTorch).
                self._studies[name] = (load_study(name, storage=self.storage, searcher="random", scheduler="fifo"),
                                       threading.Lock())
                self._importance.pop(name, None)
            return self._studies[name]

    # -- pages' data ------------------------------------------------------------------------------
    def studies(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "created": _iso(s.created_at), "metrics": s.metrics, "modes": s.modes,
                 "trials": s.n_trials, "counts": s.counts, "best": _number(s.best_value)}
                for s in self.storage.list_studies()]

    def study(self, name: str) -> dict[str, Any]:
        study, lock = self._open(name)
        with lock:
            trials = study.trials
            cost = study_cost(study)
            best = best_trials(study)
            completed = sum(1 for t in trials if t.state is TrialState.COMPLETED)
            figures = {"history": plots.history_figure(study), "curves": plots.curves_figure(study),
                       "cost": plots.cost_figure(study)}
            if completed and study.space.dimensions:
                figures["parallel"] = plots.parallel_coordinates_figure(study)
            if completed and len(study.metrics) > 1:  # the trade-off, on the first two metrics
                figures["pareto"] = plots.pareto_figure(study, study.metrics[:2])
            return {
                "name": study.name, "metrics": study.metrics, "modes": study.modes, "seed": study.seed,
                "counts": study.counts(cancelled_apart=True), "n_trials": len(trials), "completed": completed,
                # what importance is computed from (rung values too): the page asks again when it moves
                "evidence": sum(t.state.finished for t in trials) + sum(len(t.reports) for t in trials),
                "settings": study.record.settings, "folder": str(study.folder),
                "environment": _environment_brief(study.environment),
                "best": [_trial_brief(t) for t in best], "top": trials_table(study, k=TOP_K),
                "cost": cost.to_json(), "trials": [_trial_brief(t) for t in trials],
                "figures": {k: plots.figure_json(f) for k, f in figures.items()},
            }

    def importance(self, name: str) -> dict[str, Any]:
        """fANOVA importance, recomputed only when trials have finished or reported since."""
        study, lock = self._open(name)
        with lock:
            trials = study.trials
            seen = (sum(t.state.finished for t in trials), sum(len(t.reports) for t in trials))
            cached = self._importance.get(name)
            if cached is not None and cached[0] == seen:
                return cached[1]
            try:
                found = fanova_importance(study)
            except ConfigError as err:
                result = {"available": False, "reason": str(err)}
            else:
                result = {"available": True, **found.to_json(),
                          "figure": plots.figure_json(plots.importance_figure(found))}
            self._importance[name] = (seen, result)
            return result

    def trial(self, name: str, number: int) -> dict[str, Any]:
        study, lock = self._open(name)
        with lock:
            try:
                trial = study.get_trial(number)
            except ConfigError as err:
                raise TrialNotFound(str(err)) from None
            folder = study.trial_dir(number)
            worker = trial.system_attrs.get(WORKER) or {}
            files = sorted(_file_name(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) \
                if folder.is_dir() else []
            curve = plots.figure_json(plots.trial_curve_figure(trial))
            return {
                **_trial_brief(trial), "seed": trial.seed, "budget": trial.budget, "started": _iso(trial.started_at),
                "finished": _iso(trial.finished_at),
                "traceback": trial.traceback, "user_attrs": trial.user_attrs,
                "cost": study_cost(study).per_trial.get(number), "worker": {k: v for k, v in worker.items()
                                                                            if k != "environment"},
                "environment": _environment_brief(worker.get("environment") or study.environment),
                "environment_differs": "environment" in worker,
                "reports": [{"step": r.step, "metrics": r.metrics} for r in trial.reports],
                "logs": read_logs(folder),
                "artifacts": files, "artifact_dir": str(folder), "figure": curve,
            }

    def compare(self, first: str, second: str) -> dict[str, Any]:
        a, lock_a = self._open(first)
        b, lock_b = self._open(second)
        # Both studies' locks are taken in one order, by name: a page comparing a with b and
        # another comparing b with a, each holding one lock and waiting for the other, would hang
        # those requests and every later one of either study.
        locks = [lock for _, lock in sorted({first: lock_a, second: lock_b}.items())]
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            result = compare_studies(a, b).to_json()
            result["figure"] = plots.figure_json(plots.compare_figure(a, b))
            return result


def _environment_brief(env: dict[str, Any]) -> dict[str, Any]:
    """The parts of an environment record worth a glance (the full record is in the JSON export)."""
    git = env.get("git") or {}
    return {"fingerprint": env.get("fingerprint"), "host": env.get("host"),
            "python": (env.get("python") or {}).get("version"), "os": (env.get("os") or {}).get("platform"),
            "cpu": (env.get("cpu") or {}).get("model"), "gpus": [g.get("name") for g in env.get("gpus") or []],
            "git commit": git.get("commit"), "git dirty": git.get("dirty"), "packages": env.get("packages") or {}}
