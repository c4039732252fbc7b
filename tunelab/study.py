"""A study: a space, a metric, and every trial tried on it, kept in storage.

The Study is the ask/tell face (``t = study.ask(); ...; study.tell(t, value)``) and the object the
tuner drives. It keeps an in-memory mirror of its trials that it refreshes incrementally (new
trials, unfinished trials, new reports) only when a decision needs the history, so cheap
searchers pay nothing and model-based ones do not re-read the whole study on every ask.
"""

from __future__ import annotations

import functools
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

from tunelab import _json, checkpoints, telling
from tunelab.errors import ConfigError, SearchExhausted, check_count, warn_caller
from tunelab.fidelity import Fidelity
from tunelab.history import History
from tunelab.recovery import claim_queued, keep_late_result, recover_abandoned
from tunelab.schedulers import Scheduler
from tunelab.searchers import Searcher
from tunelab.space import Space
from tunelab.storage import Storage, StudyRecord
from tunelab.storage.base import cancelled_as_failed, hide_password, process_owner
from tunelab.tracking.artifacts import study_folder
from tunelab.tracking.environment import environment_summary
from tunelab.tracking.seeds import trial_seed
from tunelab.trial import DIVERGED, Decision, Report, ReportSink, RunningTrial, Trial, TrialSpec, TrialState
from tunelab.values import plain

WORKER = "worker"
_ACTIVE = (TrialState.RUNNING, TrialState.WAITING)


class Study(ReportSink):
    def __init__(self, storage: Storage, record: StudyRecord, searcher: Searcher, scheduler: Scheduler):
        self.storage, self.record = storage, record
        self.space = Space.from_json(record.space)
        self.searcher, self.scheduler = searcher, scheduler
        self.fidelity = Fidelity.from_json(record.settings.get("fidelity"))
        scheduler.bind(self.fidelity)
        self._decisions: dict[int, Decision] = {}  # last answer per trial, so tell() can close a rung
        self._continuing: set[int] = set()  # interrupted trials claimed to go on from their checkpoint
        self.retired: list[Trial] = []  # paused trials pruned for good since the tuner last looked (its callbacks)
        self._recovered_at = -math.inf  # when ask() last looked for trials of dead processes
        self._cache: dict[int, Trial] = {}
        self._synced_id = 0  # every trial with id <= this has been read at least once
        self._report_id, self._local_reports = 0, set()  # the last report read; ids this process added
        self._tuning = self._stop_asked = False  # a tuner loop runs on this object; stop() was called in it

    # -- identity --------------------------------------------------------------------------------
    name = property(lambda self: self.record.name)
    metric = property(lambda self: self.record.metrics[0])
    mode = property(lambda self: self.record.modes[0])
    metrics = property(lambda self: list(self.record.metrics))
    modes = property(lambda self: list(self.record.modes))
    seed = property(lambda self: self.record.seed)
    environment = property(lambda self: self.record.environment)

    #: Who runs this process's trials, read again in a forked child: its trials are its own, and
    #: recovered when it dies (taken for the parent's, they stayed running while the parent lived)
    owner = property(lambda self: self.__dict__.get("_owner") or process_owner(),
                     lambda self, value: self.__dict__.__setitem__("_owner", value))

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, metric={self.metric!r}, mode={self.mode!r}, storage={hide_password(self.storage.url)!r})"

    # -- the mirror of storage -------------------------------------------------------------------
    @telling.serialised
    def _sync(self) -> None:
        """Bring the mirror up to date. Read again new, running and waiting trials, and only the
        paused ones storage no longer lists as paused at the mirror's budget (a paused trial
        changes only by a resume or a finish). Reports are read before the trials, so that their
        trials are known, and after, so that a trial read in a new state comes with the reports
        its process wrote before it (paused without the report that reached its rung, it would
        look as if it never got there). A report of a trial newer than the read waits for the next."""
        new_reports = self.storage.reports(self.record.id, after_id=self._report_id)
        active = [t.id for t in self._cache.values() if t.state in _ACTIVE]
        paused = [t for t in self._cache.values() if t.state is TrialState.PAUSED]
        if paused:
            stored = dict(self.storage.paused_trials(self.record.id))
            active += [t.id for t in paused if t.id not in stored or stored[t.id] != t.budget]
        for trial in self.storage.trials(self.record.id, after_id=self._synced_id, ids=active):
            old = self._cache.get(trial.id)
            if old is not None:
                trial.reports = old.reports
            self._cache[trial.id] = trial
            self._synced_id = max(self._synced_id, trial.id)
        new_reports += self.storage.reports(self.record.id, after_id=new_reports[-1][0] if new_reports
                                            else self._report_id)
        for report_id, trial_id, report in new_reports:
            if trial_id not in self._cache:
                break
            self._report_id = report_id
            if report_id in self._local_reports:
                self._local_reports.discard(report_id)
            else:
                self._cache[trial_id].reports.append(report)

    def history(self) -> History:
        """A view of the study for one decision; it reads storage only if the decision needs it."""

        def load() -> list[Trial]:
            self._sync()
            return list(self._cache.values())

        return History(load, self.record.metrics, self.record.modes, count=self._count)

    def _count(self) -> int:
        self._sync()
        return len(self._cache)

    @property
    def trials(self) -> list[Trial]:
        """Every trial, ordered by number, with its reports (copies: see :func:`telling.detached`)."""
        return [telling.detached(trial) for trial in self.history().trials]

    def get_trial(self, number: int) -> Trial:
        return telling.detached(telling.numbered(self, number))

    @property
    def best(self) -> Trial:
        """The best completed trial (for a single metric)."""
        if len(self.record.metrics) > 1:
            raise ConfigError("this study has several metrics; use study.best_trials for its Pareto front")
        best = self.history().best()
        if best is None:
            counts = self.counts()
            raise ConfigError(f"study {self.name!r} has no completed trial yet (trials by state: {counts or 'none'})")
        return telling.detached(best)

    @property
    def best_trials(self) -> list[Trial]:
        """Completed trials that no other trial beats on every metric (the Pareto front)."""
        return [telling.detached(trial) for trial in self.history().front()]

    def counts(self, cancelled_apart: bool = False) -> dict[str, int]:
        """Trials by state (TrialState values), counted by the storage (without loading them); a
        cancelled trial is one of the failed, or with ``cancelled_apart`` counted under
        "cancelled", as `tunelab show` counts it."""
        counts = self.storage.count_states(self.record.id)
        return counts if cancelled_apart else cancelled_as_failed(counts)

    def top_trials(self, k: int = 10) -> list[Trial]:
        """The ``k`` best completed trials on the first metric, read through an index (without
        their reports): for studies too large to load whole."""
        return self.storage.top_trials(self.record.id, k, descending=self.mode == "max")

    def last_trials(self, k: int = 100) -> list[Trial]:
        """The ``k`` most recent trials (without their reports), oldest first."""
        return self.storage.last_trials(self.record.id, k)

    def counted_trials(self) -> int:
        """Trials that spend the n_trials budget: all but cancelled ones and re-queued ones."""
        return self.storage.counted_trials(self.record.id)

    # -- starting trials -----------------------------------------------------------------------
    def _seed_for(self, number: int) -> int:
        return trial_seed(self.record.seed, number)

    def _start(self, allow_new: bool = True, limit: int | None = None) -> tuple[Trial, bool] | None:
        """Claim a waiting trial, resume a paused one, or (if allowed) create one from the searcher,
        as long as the study has fewer than ``limit`` counted trials (checked atomically in storage).
        Returns the trial and whether it was newly created, or None when nothing may start."""
        history = self.history()
        for retired in self.scheduler.retired(history):  # paused trials it will never resume: free their checkpoints
            self.retired.append(self.finish(retired.id, TrialState.PRUNED, paused_only=True))
        fresh_budget = self._budget(None, history)
        trial = claim_queued(self, fresh_budget)  # an interrupted one goes on at its budget from its checkpoint
        start_attrs = self.scheduler.start_attrs()
        if trial is not None and trial.id not in self._continuing:  # a queued trial starts now
            for key, value in start_attrs.items():
                self.storage.set_trial_attr(trial.id, key, value, system=True)
                trial.system_attrs[key] = value
        if trial is None:
            paused = self.scheduler.trial_to_resume(history)
            if paused is not None:
                budget = self._budget(paused, history)
                if self.storage.resume_trial(paused.id, self.owner, budget):  # (after_id: PostgreSQL's INTEGER)
                    trial = self.storage.trials(self.record.id, after_id=2**31 - 1, ids=[paused.id])[0]
        created = trial is None
        if created and not allow_new:
            return None
        if created:
            if self.searcher.by_number:
                config = self.searcher.config_for_number
            else:
                history.trusted_budget = self.scheduler.trusted_budget(history)
                configs = self.searcher.suggest(history, 1)
                if not configs:
                    raise SearchExhausted(f"searcher {self.searcher.name!r} has nothing new to propose")
                config = configs[0]
            trial = self.storage.create_trial(self.record.id, config, self._seed_for, TrialState.RUNNING,
                                              owner=self.owner, budget=fresh_budget, limit=limit,
                                              system_attrs=start_attrs or None)
            if trial is None:
                return None
            if telling.cancel_if_twin(self, trial, history):
                return self._start(allow_new, limit)
        old = self._cache.get(trial.id)
        trial.reports = old.reports if old is not None else []
        self._cache[trial.id] = trial
        return trial, created

    def _budget(self, trial: Trial | None, history: History) -> float | None:
        """The scheduler's budget; with a fidelity declared and none chosen, the full one."""
        budget = self.scheduler.budget_for(trial, history)
        budget = self.fidelity.max if budget is None and self.fidelity is not None else budget
        return None if budget is None else float(budget)

    def checkpoint_dir(self, trial: Trial) -> str:
        """Where a trial keeps its checkpoint: a folder of its own inside the trial's folder, so
        that deleting a checkpoint that can no longer be used keeps the trial's logs."""
        return str(self.trial_dir(trial.number) / "checkpoint")

    def spec(self, trial: Trial, timeout: float | None = None) -> TrialSpec:
        """What a worker needs to run ``trial`` (a continued one's checkpoint may lag its last report)."""
        continued, folder = trial.id in self._continuing, str(self.trial_dir(trial.number))
        self._continuing.discard(trial.id)
        checkpoint = os.path.join(folder, "checkpoint")
        if not trial.reports and not continued:
            checkpoints.start_afresh(checkpoint, f"new trial {trial.number} of study {self.name!r}")
        elif not continued and self.fidelity is not None and not self.fidelity.resumable:
            checkpoints.delete(checkpoint)  # a fresh run at the higher level: nothing to go on from
        resumable = trial.reports and self.fidelity and self.fidelity.resumable and not continued
        reported = {k: v for r in trial.reports for k, v in r.metrics.items() if k in self.record.metrics}
        return TrialSpec(id=trial.id, number=trial.number, config=trial.config, seed=trial.seed, continued=continued,
                         resumed_from=trial.reports[-1].step if resumable else None, reported=reported or None,
                         last_step=trial.last_step,
                         judged_on=self.metric if self.scheduler.judges_reports else None,
                         study=self.name, budget=trial.budget, timeout=timeout,
                         environment=environment_summary(self.record.environment),
                         artifact_dir=folder, checkpoint_dir=checkpoint)

    @functools.cached_property
    def folder(self) -> Path:
        """The folder of this study's files, one folder per trial in it; resolved once."""
        return study_folder(self.record.settings, self.storage.url, self.name)

    def trial_dir(self, number: int) -> Path:
        """The folder of one trial: its captured stdout/stderr and the files it saved."""
        return self.folder / str(number)

    @property
    def n_trials(self) -> int | None:
        """The study's trial limit (None: none), from ``tl.create_study`` or the last ``tl.tune``;
        ``tunelab worker`` processes and :meth:`ask` keep to it. Setting it stores it."""
        return (self.record.settings.get("budgets") or {}).get("n_trials")

    @n_trials.setter
    def n_trials(self, value: int | None) -> None:
        check_count("n_trials", value := plain(value))  # np.int64(50) as 50: a count, stored as JSON
        budgets = {**(self.record.settings.get("budgets") or {}), "n_trials": value}
        self.storage.update_study(self.record.id, settings={"budgets": budgets})
        self.record.settings = {**self.record.settings, "budgets": budgets}

    def ask(self, config: Mapping[str, Any] | None = None, *, wait: bool = True) -> RunningTrial:
        """Start a trial for your own loop (one to resume, ``trial.budget`` saying how far, or a
        new one); finish it with :meth:`tell`. Under a trial limit (:attr:`n_trials`, planned for
        as in ``tl.tune``) it raises :class:`TrialLimitReached` once nothing is left to run; while
        other processes still run trials whose results may get a paused one promoted, it waits
        for them unless ``wait`` is False (see :func:`tunelab.telling.ask`). With ``config``, a
        new trial of that configuration (a value for each parameter), chosen by you, not the searcher."""
        return telling.ask(self, wait, config)

    def stop(self) -> None:
        """End the tuning run in progress on this study once its running trials finish: no trial
        starts after the call. Call it from a callback (``on_trial_end(study, trial)``) or from an
        objective that runs in the tuner's process; the next ``tl.tune`` of the study goes on."""
        if not self._tuning:
            raise ConfigError("study.stop() ends a tuning run in progress (call it from a callback or an objective "
                              "of tl.tune); no run of this study object is in progress")
        self._stop_asked = True

    @telling.serialised
    def enqueue(self, config: Mapping[str, Any], *, retry_of: Trial | None = None, once: bool = False) -> Trial:
        """Queue a configuration (a baseline, a colleague's best) to be tried before new proposals.
        It spends one of the study's :attr:`n_trials` (a retry of a trial spends none): with
        none left, :class:`TrialLimitReached`. Each call queues a run; with ``once``, a
        configuration that a trial of the study has already (tried or queued, by any process) is
        not queued again, and that trial is returned (what ``tl.tune(..., enqueue=...)`` does, so
        that processes starting one study together queue a baseline once); see telling.enqueue."""
        return telling.enqueue(self, config, retry_of, once)

    # -- what a running trial tells us ------------------------------------------------------------
    def _trial(self, trial_id: int) -> Trial:
        if trial_id not in self._cache:
            self._sync()
        if trial_id not in self._cache:
            raise ConfigError(f"trial id {trial_id!r} does not belong to study {self.name!r} (a trial's id, trial.id, "
                              "is asked for; in an objective, trial.set_user_attr(key, value) sets one of its own)")
        return self._cache[trial_id]

    @telling.serialised
    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        trial = self._trial(trial_id)
        if trial.state is not TrialState.RUNNING:
            raise ConfigError(f"trial {trial.number} is {trial.state.value}; only running trials report")
        earlier = self._decisions.get(trial_id, Decision.CONTINUE)
        if trial.reports and step <= trial.reports[-1].step:
            return earlier  # a step it has reported (a run gone on from an older checkpoint): kept once
        report = Report(float(step), dict(metrics), _now())
        report_id = self.storage.add_report(self.record.id, trial_id, report.step, report.metrics, report.time)
        if report_id is not None:
            self._local_reports.add(report_id)
        trial.reports.append(report)
        if _diverged(report, self.metric) and earlier is Decision.CONTINUE:
            decision = Decision.STOP  # a NaN or inf ranks nowhere: the run has diverged (finish records it failed)
        elif earlier is not Decision.CONTINUE or self.metric not in metrics:
            decision = earlier  # the answer stands; a report without the metric decides nothing
        else:
            decision = Decision(self.scheduler.on_report(trial, report.step, report.metrics, self.history()))
            if decision is Decision.STOP and self.fidelity is not None and \
                    report.step >= self.fidelity.max * (1 - 1e-9):
                decision = Decision.CONTINUE  # the full run is done: stopping it saves nothing and loses its result
        self._decisions[trial_id] = decision
        return decision

    @telling.serialised
    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        trial = self._trial(trial_id)
        try:
            value = _json.restore(_json.loads(_json.dumps(value)))  # the mirror holds what storage gives back
        except TypeError as err:
            raise ConfigError(f"set_user_attr({key!r}): {err}; attributes are stored as JSON") from None
        self.storage.set_trial_attr(trial_id, key, value)
        trial.user_attrs[key] = value

    @telling.serialised
    def finish(self, trial_id: int, state: TrialState, *, metrics: Mapping[str, Any] | None = None,
               error: str | None = None, traceback: str | None = None,
               worker: Mapping[str, Any] | None = None, paused_only: bool = False) -> Trial:
        """Record the end of a trial once; later calls for the same trial change nothing.
        ``worker`` (host, pid, environment) is kept with the trial, before its state changes;
        ``paused_only`` ends it only if it is still paused (see ``Storage.finish_trial``)."""
        trial = self._trial(trial_id)
        if worker and not trial.state.finished:
            self.storage.set_trial_attr(trial_id, WORKER, dict(worker), system=True)
            trial.system_attrs[WORKER] = dict(worker)
        if state is TrialState.PRUNED and error is None:
            error = self.divergence(trial)
            state = TrialState.FAILED if error else state
        metrics = dict(metrics or {})
        if state in (TrialState.PRUNED, TrialState.PAUSED) and not metrics and trial.reports:
            metrics = {k: v for r in trial.reports for k, v in r.metrics.items()}  # last value of each
        value = metrics.get(self.metric)
        value = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        at = _now()
        if self.storage.finish_trial(trial_id, state, value=value, metrics=metrics, error=error, traceback=traceback,
                                     at=at, paused_only=paused_only):
            # The mirror holds what storage holds (the JSON form of the metrics, the same finish
            # time), so a finished trial equals the one a reloaded study reads.
            trial.state, trial.value, trial.metrics = state, value, _json.numbers(_json.loads(_json.dumps(metrics)))
            trial.stop_running(at)
            trial.error, trial.traceback, trial.finished_at = error, traceback, at if state.finished else None
            self._decisions.pop(trial_id, None)
            if state in (TrialState.PRUNED, TrialState.FAILED):
                checkpoints.delete(self.checkpoint_dir(trial))
            self.scheduler.on_result(trial, self.history())
        else:
            self._sync()
            keep_late_result(self, self._cache[trial_id], state, metrics)
        return self._cache[trial_id]

    def divergence(self, trial: Trial) -> str | None:
        """Why a trial failed when it reported a NaN or infinite value of the metric: its first such report."""
        report = next((r for r in trial.reports if _diverged(r, self.metric)), None)
        if report is None:
            return None
        return f"reported {self.metric}={report.metrics[self.metric]} at step {report.step:g} {DIVERGED}"

    @telling.serialised
    def tell(self, trial: "RunningTrial | Trial | int | None" = None, value: Any = None, *,
             state: TrialState | str = TrialState.COMPLETED, error: str | None = None,
             config: Mapping[str, Any] | None = None) -> Trial:
        """Finish a trial from :meth:`ask` with its result: a number, a dict of metrics, or None
        (the last reported values). ``config=`` records a configuration evaluated elsewhere. A
        trial the scheduler paused or stopped is paused or pruned; see :mod:`tunelab.telling`."""
        told = telling.tell(self, trial, value, state, error, config)
        if isinstance(trial, RunningTrial) and trial.id == told.id:
            trial._told = told.state.value
        return telling.detached(told)

    @telling.serialised
    def recover_abandoned(self, stale_after: float = 120.0, max_retries: int = 1) -> list[Trial]:
        """Queue again the running trials whose process is gone (once by default), to go on from
        their checkpoints where they saved one; see :func:`tunelab.recovery.recover_abandoned`."""
        return recover_abandoned(self, stale_after, max_retries)


def _diverged(report: Report, metric: str) -> bool:
    value = report.metrics.get(metric)
    return isinstance(value, float) and not math.isfinite(value)


def _now() -> float:
    return time.time()
