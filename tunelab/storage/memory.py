"""Storage in this process's memory: nothing to set up, gone when the process ends.

For tests, notebooks and ask/tell loops where speed matters more than keeping the records.
Values go through the same JSON conversion as the databases, so a study that works here
stores the same way in SQLite.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import itertools
from collections import deque
from typing import Any, Iterable

from tunelab import _json
from tunelab.errors import StorageError, StudyExists, StudyNotFound
from tunelab.space import config_key
from tunelab.storage.base import CANCELLED, SeedFor, Storage, StudyRecord, StudySummary, config_for, now
from tunelab.trial import Report, Trial, TrialState


class _ById(dict):
    """A table by study or trial id: an id that is not there (its study was deleted while a
    handle on it was still in use) is a clear StorageError, as on a database."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def __missing__(self, key: Any) -> Any:
        raise StorageError(f"{self.what} id {key} does not exist in memory (its study deleted?)")


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self.url = "memory"
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[int, list[Trial]] = _ById("study")  # study id -> trials in creation (= id) order
        self._waiting: dict[int, deque[Trial]] = _ById("study")  # study id -> trials that were created waiting
        self._by_id: dict[int, Trial] = _ById("trial")
        self._study_of: dict[int, int] = _ById("trial")
        self._reports: dict[int, list[tuple[int, int, Report]]] = _ById("study")
        self._heartbeats: dict[int, float] = {}
        self._owners: dict[int, str | None] = {}
        self._counted: dict[int, int] = _ById("study")  # study id -> trials that spend the budget
        self._uncounted: set[int] = set()
        self._paused: dict[int, dict[int, None]] = {}  # study id -> its paused trials' ids (an ordered set)
        self._ids = itertools.count(1)
        self._report_ids = itertools.count(1)

    # -- studies ---------------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> StudyRecord:
        if record.name in self._studies:
            raise StudyExists(f"a study named {record.name!r} already exists in {self.url}")
        stored = _json_copy(dataclasses.replace(record, id=next(self._ids)))
        self._studies[record.name] = stored
        self._trials[stored.id], self._reports[stored.id], self._waiting[stored.id] = [], [], deque()
        self._counted[stored.id] = 0
        return copy.deepcopy(stored)

    def get_study(self, name: str) -> StudyRecord:
        if name not in self._studies:
            raise StudyNotFound(f"no study named {name!r} in {self.url}")
        return copy.deepcopy(self._studies[name])

    def list_studies(self) -> list[StudySummary]:
        out = []
        for record in self._studies.values():
            trials = self._trials[record.id]
            counts = self.count_states(record.id)
            values = [t.value for t in trials if t.state is TrialState.COMPLETED and t.value is not None]
            best = (max if record.modes[0] == "max" else min)(values) if values else None
            out.append(StudySummary(record.name, record.created_at, record.metrics, record.modes, counts, best))
        return out

    def delete_study(self, name: str) -> None:
        record = self._studies.pop(name, None)
        if record is None:
            raise StudyNotFound(f"no study named {name!r} in {self.url}")
        for trial in self._trials.pop(record.id):
            self._by_id.pop(trial.id, None)
        self._reports.pop(record.id)
        self._waiting.pop(record.id)
        self._paused.pop(record.id, None)

    def update_study(self, study_id: int, *, settings: dict | None = None, user_attrs: dict | None = None) -> None:
        record = next((r for r in self._studies.values() if r.id == study_id), None)
        if record is None:
            raise StorageError(f"study id {study_id} does not exist in memory (its study deleted?)")
        record.settings.update(_json_copy(settings or {}))
        record.user_attrs.update(_json.restore(_json_copy(user_attrs or {})))

    # -- trials ----------------------------------------------------------------------------------
    def create_trial(self, study_id, config, seed_for: SeedFor, state=TrialState.RUNNING, owner=None,
                     budget=None, system_attrs=None, *, limit=None, counted=True) -> Trial | None:
        if counted and limit is not None and self._counted[study_id] >= limit:
            return None
        trials = self._trials[study_id]
        number = len(trials)
        at, state = now(), TrialState(state)
        trial = Trial(
            id=next(self._ids), number=number, config=_json_copy(config_for(config, number)), seed=seed_for(number),
            state=state, budget=_json.number(budget), created_at=at,
            started_at=at if state is TrialState.RUNNING else None,
            running_since=at if state is TrialState.RUNNING else None,
            system_attrs=_json_copy(system_attrs or {}),
        )
        trials.append(trial)
        if state is TrialState.WAITING:
            self._waiting[study_id].append(trial)
        self._by_id[trial.id] = trial
        self._study_of[trial.id] = study_id
        self._owners[trial.id] = owner
        self._heartbeats[trial.id] = at
        if counted:
            self._counted[study_id] += 1
        else:
            self._uncounted.add(trial.id)
        return _snapshot(trial)

    def counted_trials(self, study_id: int) -> int:
        return self._counted.get(study_id, 0)

    def cancel_trial(self, trial_id: int, error: str) -> bool:
        trial = self._by_id.get(trial_id)
        if trial is None or not self.finish_trial(trial_id, TrialState.FAILED, error=error):
            return False
        trial.system_attrs[CANCELLED] = True
        if trial_id not in self._uncounted:
            self._uncounted.add(trial_id)
            self._counted[self._study_of[trial_id]] -= 1
        return True

    def abandon_trial(self, trial_id: int, error: str, retry_attrs: dict[str, Any] | None,
                      owner: str | None = None, ran_until: float | None = None) -> tuple[bool, Trial | None]:
        trial = self._running(trial_id, owner)
        if trial is None:
            return False, None
        if ran_until is not None:
            trial.stop_running(ran_until)
        self.finish_trial(trial_id, TrialState.FAILED, error=error)
        if retry_attrs is None:
            return True, None
        return True, self.create_trial(self._study_of[trial_id], trial.config, lambda _n: trial.seed,
                                       TrialState.WAITING, system_attrs=retry_attrs, counted=False)

    def requeue_trial(self, trial_id: int, attrs: dict[str, Any], owner: str | None = None,
                      ran_until: float | None = None) -> bool:
        trial = self._running(trial_id, owner)
        if trial is None:
            return False
        trial.stop_running(now() if ran_until is None else ran_until)
        trial.state, trial.value = TrialState.WAITING, None
        trial.system_attrs.update(_json_copy(attrs))
        self._owners[trial_id] = None
        study_id = self._study_of[trial_id]
        self._waiting[study_id] = deque(sorted([*self._waiting[study_id], trial], key=lambda t: t.number))
        return True

    def _running(self, trial_id: int, owner: str | None) -> Trial | None:
        trial = self._by_id.get(trial_id)
        if trial is None or trial.state is not TrialState.RUNNING or owner not in (None, self._owners.get(trial_id)):
            return None
        return trial

    def top_trials(self, study_id: int, k: int, descending: bool) -> list[Trial]:
        done = [t for t in self._trials[study_id] if t.state is TrialState.COMPLETED and t.value is not None]
        done.sort(key=lambda t: (-t.value if descending else t.value, t.number))
        return [_snapshot(t) for t in done[:k]]

    def last_trials(self, study_id: int, k: int) -> list[Trial]:
        return [_snapshot(t) for t in self._trials[study_id][-k:]] if k > 0 else []

    def held_seconds(self, study_id: int, now: float) -> float:
        return sum(t.held + (max(now - t.running_since, 0.0) if t.running_since is not None else 0.0)
                   for t in self._trials[study_id] if t.started_at is not None)

    def count_states(self, study_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trial in self._trials[study_id]:
            key = trial.shown_state
            counts[key] = counts.get(key, 0) + 1
        return counts

    def enqueue_once(self, study_id, config, seed_for: SeedFor, *, limit=None) -> tuple[Trial | None, bool]:
        # One process's memory, used from one thread: the look and the insert cannot interleave.
        key = config_key(_json_copy(config))
        for trial in self._trials[study_id]:
            if config_key(trial.config) == key:
                return _snapshot(trial), False
        trial = self.create_trial(study_id, config, seed_for, TrialState.WAITING, limit=limit)
        return trial, trial is not None

    def claim_waiting(self, study_id: int, owner: str, budget: float | None = None) -> Trial | None:
        queue = self._waiting[study_id]
        while queue:
            trial = queue.popleft()
            if trial.state is TrialState.WAITING:  # it may have been finished (cancelled) meanwhile
                trial.state, trial.running_since = TrialState.RUNNING, now()
                trial.started_at = trial.running_since if trial.started_at is None else trial.started_at
                trial.budget = _json.number(budget) if trial.budget is None else trial.budget
                self._owners[trial.id], self._heartbeats[trial.id] = owner, trial.running_since
                return _snapshot(trial)
        return None

    def resume_trial(self, trial_id: int, owner: str, budget: float | None) -> bool:
        trial = self._by_id[trial_id]
        if trial.state is not TrialState.PAUSED:
            return False
        trial.state, trial.budget, trial.running_since = TrialState.RUNNING, _json.number(budget), now()
        self._paused.get(self._study_of[trial_id], {}).pop(trial_id, None)
        self._owners[trial_id], self._heartbeats[trial_id] = owner, trial.running_since
        return True

    def finish_trial(self, trial_id, state, *, value=None, metrics=None, error=None, traceback=None,
                     at=None, paused_only=False) -> bool:
        trial = self._by_id[trial_id]
        if trial.state.finished or (paused_only and trial.state is not TrialState.PAUSED):
            return False
        at = now() if at is None else at
        trial.stop_running(at)
        trial.state = TrialState(state)
        paused = self._paused.setdefault(self._study_of[trial_id], {})
        if trial.state is TrialState.PAUSED:
            paused[trial_id] = None
        else:
            paused.pop(trial_id, None)
        trial.value, trial.metrics = _json.number(value), _json.numbers(_json_copy(metrics or {}))
        trial.error, trial.traceback = error, traceback
        if trial.state.finished:
            trial.finished_at = at
        return True

    def add_report(self, study_id, trial_id, step, metrics, at) -> int:
        clean = _json.numbers(_json_copy(metrics))
        report_id = next(self._report_ids)
        self._reports[study_id].append((report_id, trial_id, Report(float(step), clean, at)))
        return report_id

    def set_trial_attr(self, trial_id, key, value, *, system=False) -> None:
        trial = self._by_id[trial_id]
        (trial.system_attrs if system else trial.user_attrs)[key] = _json_copy(value) if system else \
            _json.restore(_json_copy(value))

    def heartbeat(self, trial_ids: Iterable[int], at: float | None = None) -> None:
        at = now() if at is None else at
        for trial_id in trial_ids:
            self._heartbeats[trial_id] = at

    def start_clock(self, trial_id: int, at: float) -> None:
        trial = self._by_id.get(trial_id)
        if trial is not None and trial.state is TrialState.RUNNING and trial.running_since is not None \
                and trial.running_since < at:
            trial.started_at = at if trial.started_at == trial.running_since else trial.started_at
            trial.running_since = at

    def trials(self, study_id: int, *, after_id: int = 0, ids: Iterable[int] = ()) -> list[Trial]:
        trials = self._trials[study_id]
        first_new = bisect.bisect_right(trials, after_id, key=lambda t: t.id)
        listed = [self._by_id[i] for i in sorted(set(ids))
                  if i <= after_id and self._study_of.get(i) == study_id]
        return [_snapshot(t) for t in listed + trials[first_new:]]

    def furthest_steps(self, trial_ids: Iterable[int]) -> dict[int, float]:
        wanted = set(trial_ids)
        furthest: dict[int, float] = {}
        for study_id in {self._study_of[i] for i in wanted if i in self._study_of}:
            for _, trial_id, report in self._reports[study_id]:
                if trial_id in wanted:
                    furthest[trial_id] = max(furthest.get(trial_id, report.step), report.step)
        return furthest

    def reports(self, study_id: int, *, after_id: int = 0) -> list[tuple[int, int, Report]]:
        rows = self._reports[study_id]
        if after_id == 0:
            return list(rows)
        # Report ids grow with position, so a binary search finds the first new one.
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if rows[mid][0] <= after_id:
                lo = mid + 1
            else:
                hi = mid
        return rows[lo:]

    def paused_trials(self, study_id: int) -> list[tuple[int, float | None]]:
        return [(trial_id, self._by_id[trial_id].budget) for trial_id in self._paused.get(study_id, {})]

    def running_trials(self, study_id: int) -> list[tuple[int, str | None, float | None]]:
        return [(t.id, self._owners.get(t.id), self._heartbeats.get(t.id))
                for t in self._trials[study_id] if t.state is TrialState.RUNNING]


def _json_copy(value: Any) -> Any:
    """Store only what the databases would store: JSON values, copied."""
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _json_copy(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if isinstance(getattr(value, f.name), (dict, list))})
    return _json.loads(_json.dumps(value))


def _snapshot(trial: Trial) -> Trial:
    return dataclasses.replace(trial, config=dict(trial.config), metrics=dict(trial.metrics), reports=[],
                               user_attrs=dict(trial.user_attrs), system_attrs=dict(trial.system_attrs))
