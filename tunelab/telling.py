"""The ask/tell face: what ``study.ask()`` hands out, and what ``study.tell(trial, value)`` does
with a result, its one way to end a run.

At a trial limit with nothing to resume, ``ask`` waits while other processes run trials of the
study: their results may complete a rung and get a paused trial promoted. Ending the loop there
instead, as two processes sharing a Hyperband study may both do at once (each having seen the
other's last trial still running), leaves paused trials that no one resumes. A trial this
process holds never makes it wait: telling it is up to the loop that asks.

A told result ends the trial's run as the tuner would end it. The scheduler's last answer
stands: a trial it paused at a rung is paused there (a later ``ask`` resumes it), one it stopped
is pruned. A result told before the trial reported at its budget (a loop that fits a
subsample and tells the score, never calling ``report``) is its report at that budget, so the
scheduler still decides: a value at a rung never passes for a full run. The answer comes from
what storage holds when this Study object did not hear it (the trial reported through another
process, or the study was reloaded), so the same tell means the same thing from anywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from tunelab import _json
from tunelab.errors import ConfigError, SearchExhausted, TrialLimitReached, warn_caller
from tunelab.space import config_key
from tunelab.recovery import ENDS, answer_again, keep_late_result, recover_now_and_then, retry_attrs
from tunelab.results import normalize_result
from tunelab.trial import Decision, InvalidResult, RunningTrial, Trial, TrialState, warn_ended_short

if TYPE_CHECKING:
    from tunelab.study import Study

log = logging.getLogger(__name__)
#: How often an ask at the trial limit looks again while other processes' trials run.
WAIT_SECONDS = 0.5
_Method = TypeVar("_Method", bound=Callable[..., Any])
#: Each Study object's lock, kept beside it (not in it: a study in memory storage pickles, as
#: ``TuneSearchCV`` does when saved, and a lock does not).
_LOCKS: "weakref.WeakKeyDictionary[Study, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_MADE = threading.Lock()


def lock_of(study: "Study") -> threading.RLock:
    """The lock that threads sharing ``study`` take turns on (made on first use)."""
    lock = _LOCKS.get(study)
    if lock is None:
        with _LOCKS_MADE:
            lock = _LOCKS.setdefault(study, threading.RLock())
    return lock


def serialised(method: _Method) -> _Method:
    """Run a Study method holding the study's lock. Threads sharing one Study each ask and tell:
    unserialised, two asks proposed from one view (one configuration, one of them cancelled as a
    twin), and a tell returned its trial still "running" when another thread's read of the study
    replaced the mirror's record while the tell wrote it. The lock is re-entrant (a tell reports,
    a report reads the study), and an ask never holds it while it waits for other processes."""

    @functools.wraps(method)
    def locked(study: "Study", *args: Any, **kwargs: Any) -> Any:
        with lock_of(study):
            return method(study, *args, **kwargs)

    return locked  # type: ignore[return-value]


def ask(study: "Study", wait: bool = True, config: Mapping[str, Any] | None = None) -> RunningTrial:
    if not isinstance(wait, bool):
        raise ConfigError(f"ask: wait must be True or False; got {wait!r}")
    if config is not None:
        with lock_of(study):
            return _ask_for(study, config)
    limit = study.n_trials
    waiting = looked_again = False
    while True:
        with lock_of(study):
            started = _start(study, limit)
            if started is not None:
                return RunningTrial(study.spec(started[0]), sink=study, managed=False)
        others = [i for i, owner, _ in study.storage.running_trials(study.record.id) if owner != study.owner]
        if not (wait and others):
            if not looked_again:  # a trial told after the study was read, before the running ones were
                looked_again = True
                continue
            raise TrialLimitReached(f"study {study.name!r} has used its n_trials={limit} and no paused trial is to "
                                    f"be resumed{_still_running(study)}; to go on, raise the limit "
                                    "(study.n_trials = N, or None for none)")
        if not waiting:
            waiting = True
            log.info("%s: n_trials=%s used; waiting for %d trial(s) of other processes, whose results may get a "
                     "paused trial promoted", study.name, limit, len(others))
        time.sleep(WAIT_SECONDS)


def _ask_for(study: "Study", config: Mapping[str, Any]) -> RunningTrial:
    """A new trial of the user's ``config``, started now: it spends one of the study's n_trials
    and gets the budget (and, under ASHA, the rung) of any new trial; the searcher learns from it
    as from its own. (``ask({...})`` was taken for ``wait`` and ran the searcher's choice.)"""
    if not isinstance(config, Mapping):
        raise ConfigError(f"ask: config must be a dict of parameter values, e.g. study.ask({{'lr': 0.01}}); got "
                          f"{config!r}" + (" (to not wait at the trial limit: study.ask(wait=False))"
                                           if isinstance(config, bool) else ""))
    config = study.space.validate(config, where="ask")
    study.scheduler.plan(study.n_trials)
    attrs = study.scheduler.start_attrs()
    trial = study.storage.create_trial(study.record.id, config, study._seed_for, TrialState.RUNNING,
                                       owner=study.owner, budget=study._budget(None, study.history()),
                                       limit=study.n_trials, system_attrs=attrs or None)
    if trial is None:
        raise TrialLimitReached(f"study {study.name!r} has used its n_trials={study.n_trials}; to go on, raise the "
                                "limit (study.n_trials = N, or None for none)")
    trial.reports = []
    study._cache[trial.id] = trial
    return RunningTrial(study.spec(trial), sink=study, managed=False)


def _as_told(err: InvalidResult) -> str:
    """A result's error in the words of tell, whose value no objective returned."""
    return str(err).replace("objective returned", "told").replace("objective must return", "tell takes")


def _still_running(study: "Study") -> str:
    """What the trials still running may bring: those below the full budget may be promoted."""
    running = [t for t in study.trials if t.state is TrialState.RUNNING]
    top = study.fidelity.max if study.fidelity is not None else None
    below = sum(1 for t in running if top is not None and t.budget is not None and t.budget < top * (1 - 1e-9))
    if below:
        return f"; {below} running trial(s) may be promoted once told"
    return f"; {len(running)} running trial(s) still to be told" if running else ""


def _start(study: "Study", limit: int | None):
    """A trial to run (resumed, queued or new) as ``study._start`` gives it, or None at the limit."""
    study.scheduler.plan(limit)
    recover_now_and_then(study)  # trials of processes that died go on from their checkpoints
    for _ in range(2):  # at the limit, once more after re-queueing trials whose process died
        try:
            started = study._start(allow_new=limit is None or study.counted_trials() < limit, limit=limit)
        except SearchExhausted:  # no new trial will come: the scheduler plans for those there are
            study.scheduler.plan(study.counted_trials())
            started = study._start(allow_new=False, limit=limit)
            if started is None:
                raise
        if started is not None or not study.recover_abandoned():
            return started
    return None


def enqueue(study: "Study", config: Mapping[str, Any], retry_of: Trial | None, once: bool) -> Trial:
    """Queue ``config`` for the next ask (see ``Study.enqueue``). Processes that start one study at
    once, each with the same baseline (``tl.tune(..., enqueue=[baseline])``), each find it not
    yet queued: ``once`` has the storage look and queue in one atomic step, so that it is queued
    by one of them. A retry is queued however many trials had its configuration: it repeats one."""
    config = study.space.validate(config, where="enqueue")
    limit = study.n_trials if retry_of is None else None
    if retry_of is not None:
        trial = study.storage.create_trial(study.record.id, config, lambda _number: retry_of.seed, TrialState.WAITING,
                                           system_attrs=retry_attrs(retry_of, study._cache), counted=False)
    elif once:
        trial, _ = study.storage.enqueue_once(study.record.id, config, study._seed_for, limit=limit)
    else:
        trial = study.storage.create_trial(study.record.id, config, study._seed_for, TrialState.WAITING, limit=limit)
    if trial is None:
        raise TrialLimitReached(f"enqueue: study {study.name!r} has used all its n_trials={limit}; raise "
                                "n_trials to queue more")
    study._cache.setdefault(trial.id, trial)  # one queued before may be there, as this process last saw it
    return trial


def detached(trial: Trial) -> Trial:
    """A copy of the mirror's record of a trial, for the caller to keep. Handed out itself,
    ``cfg = study.best.config; cfg["epochs"] = 200`` changed the study's own record in this
    process: ``study.best`` then showed 200, and searchers learnt from a configuration that was
    never run (the values are JSON, so copying the containers copies them)."""
    return dataclasses.replace(trial, config=_json_copy(trial.config), metrics=_json_copy(trial.metrics),
                               reports=list(trial.reports), user_attrs=_json_copy(trial.user_attrs),
                               system_attrs=_json_copy(trial.system_attrs))


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    return [_json_copy(item) for item in value] if isinstance(value, list) else value


def numbered(study: "Study", number: int) -> Trial:
    """The mirror's record of trial ``number`` (a flag is no number)."""
    found = [t for t in study.history().trials if t.number == number and not isinstance(number, bool)]
    if not found:
        raise ConfigError(f"study {study.name!r} has no trial number {number!r}")
    return found[0]


def resolve(study: "Study", trial: "RunningTrial | Trial | int") -> Trial:
    """The stored record of the trial told. Ids are unique within one database only, so a trial
    another study asked for (another file, another in-memory study) may carry an id of this one:
    its study, number and configuration must match too."""
    if isinstance(trial, int) and not isinstance(trial, bool):
        return numbered(study, trial)
    if not isinstance(trial, (RunningTrial, Trial)):
        raise ConfigError(f"expected a trial or a trial number; got {trial!r}")
    source = trial._spec.study if isinstance(trial, RunningTrial) else study.name
    record = study._trial(trial.id) if source == study.name else None
    if record is None or (record.number, record.config) != (trial.number, trial.config):
        raise ConfigError(f"trial {trial.number} (of study {source!r}) is not a trial of study {study.name!r}: "
                          "tell it to the study that asked for it")
    return record


def tell(study: "Study", trial: "RunningTrial | Trial | int | None", value: Any, state: TrialState | str,
         error: str | None, config: Mapping[str, Any] | None) -> Trial:
    state = told_state(state)
    ended = None if state is TrialState.COMPLETED else ended_metrics(value, study.record.metrics)
    if trial is None:
        trial = _outside_result(study, value, state, config)
    record = resolve(study, trial)
    if record.state.finished:
        return _told_again(study, record, value if ended is None else ended, state)
    if record.state is TrialState.PAUSED:
        if state is TrialState.COMPLETED and same_result(record, value, study.record.metrics):
            return record  # the value that paused it, told twice
        raise ConfigError(f"trial {record.number} is paused at budget {record.budget:g} (a rung); a later ask() "
                          "resumes it, and the trial that ask() returns is the one to tell")
    if record.state is not TrialState.RUNNING:
        raise ConfigError(f"trial {record.number} is {record.state.value}; only a trial handed out by ask() "
                          "and still running can be told")
    if isinstance(trial, RunningTrial) and trial.budget != record.budget:
        raise ConfigError(f"this handle is from an earlier run of trial {record.number} (budget {trial.budget:g}); "
                          f"it has been resumed since with budget {record.budget:g}: tell the trial that "
                          "ask() returned then")
    if state is not TrialState.COMPLETED:
        return study.finish(record.id, state, metrics=ended, error=error)
    try:
        metrics = normalize_result(value, study.record.metrics, record.reports)
    except InvalidResult as err:
        if not err.non_finite:
            raise ConfigError(f"tell: {_as_told(err)}") from None
        error = study.divergence(record) or _as_told(err)
        warn_caller(f"trial {record.number} failed: {error}")
        return study.finish(record.id, TrialState.FAILED, error=error)
    answer = _answer(study, record, metrics, trial.reports if isinstance(trial, RunningTrial) else [])
    ended = ENDS.get(answer, TrialState.COMPLETED)
    if ended is not TrialState.COMPLETED:  # judged where its scheduler answered, on what it reported there
        reported = record.reports
        last = reported[-1].metrics.get(study.metric) if reported else None
        told = float(metrics[study.metric])
        if last is not None and math.isfinite(last) and not math.isclose(last, told, rel_tol=1e-9):
            warn_caller(f"trial {record.number}: told {study.metric}={told:g}, but its scheduler "
                        f"answered {answer.value.upper()} at step {reported[-1].step:g}, where it reported "
                        f"{last:g}; it is recorded {ended.value} with that value")
        metrics = None
    return study.finish(record.id, ended, metrics=metrics)


def _answer(study: "Study", record: Trial, metrics: dict[str, Any], run_reports: list) -> Decision:
    """The scheduler's answer that ends this run: its last one to this Study; else, when the
    trial has not reported at its budget, its answer to the result reported there (said out loud
    when this run reported below it); else its answer to the last stored report, given again
    (as a claimer settles an interrupted trial)."""
    decision = study._decisions.get(record.id)
    if decision in (Decision.PAUSE, Decision.STOP):
        return decision
    if record.budget is not None and study.fidelity is not None and not record.reached_budget:
        warn_ended_short(record.number, run_reports, record.budget)
        return study.report(record.id, record.budget, {m: metrics[m] for m in study.record.metrics})
    if decision is None and record.reached_budget:
        return answer_again(study, record)
    return decision or Decision.CONTINUE


def _outside_result(study: "Study", value: Any, state: TrialState, config: Mapping[str, Any] | None) -> Trial:
    """A configuration evaluated elsewhere, recorded as a trial of its own."""
    if config is None:
        raise ConfigError("tell needs the trial from ask(), its number, or config= for an outside result")
    config = study.space.validate(config, where="tell")
    if state is TrialState.COMPLETED:
        check_result_shape(value, study.record.metrics)  # a malformed result must not leave a trial behind
    trial = study.storage.create_trial(study.record.id, config, study._seed_for, TrialState.RUNNING,
                                       owner=study.owner)
    study._cache[trial.id] = trial
    return trial


def _told_again(study: "Study", record: Trial, value: Any, state: TrialState) -> Trial:
    """A trial that has ended: the same result told twice is fine, and a late result of a trial
    given up on (its process seemed dead, or its run was cancelled) is kept; anything else is
    an error."""
    if record.state is state and same_result(record, value, study.record.metrics):
        return record
    if record.state is TrialState.FAILED and record.error and record.error.startswith(("abandoned", "cancelled")):
        keep_late_result(study, record, state, value if isinstance(value, Mapping) else {study.metric: value})
        return record
    raise ConfigError(f"trial {record.number} is already {record.state.value}"
                      + (f" with value {record.value}" if record.value is not None else ""))


def told_state(state: TrialState | str) -> TrialState:
    """The end a trial is told to have: only a finished state makes sense for tell."""
    try:
        state = TrialState(state)
    except ValueError:
        state = None
    if state is None or not state.finished:
        raise ConfigError("tell: state must be 'completed', 'pruned' or 'failed'")
    return state


def check_result_shape(value: Any, metrics: list[str]) -> None:
    """Refuse a result of the wrong shape (a NaN is a shape that fails the trial, not an error)."""
    try:
        normalize_result(value, metrics, [])
    except InvalidResult as err:
        if not err.non_finite:
            raise ConfigError(f"tell: {_as_told(err)}") from None


def ended_metrics(value: Any, metrics: list[str]) -> dict[str, Any] | None:
    """The metrics told with a pruned or failed trial, checked before anything is written: None
    (a pruned trial keeps its last reports), a number (the first metric's), or a dict as a result
    is read. A number was dropped and a dict taken as it came: text stood as the metric's value,
    and a value no JSON holds raised a TypeError after memory storage had ended the trial."""
    if value is None:
        return None
    try:
        return normalize_result(value, metrics, [], partial=True)
    except InvalidResult as err:
        raise ConfigError(f"tell: {_as_told(err)}") from None


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def same_result(trial: Trial, value: Any, metrics: list[str]) -> bool:
    """Whether ``value``, told again for a finished trial, is the result it already holds (as
    storage holds it, where a NaN equals a NaN; a trial cut short or failed may lack a metric)."""
    if value is None:
        return True
    if isinstance(value, Mapping):
        try:
            told = normalize_result(value, metrics, trial.reports, partial=trial.state is not TrialState.COMPLETED)
        except InvalidResult:
            return False
        return _json.loads(_json.dumps(told)) == _json.loads(_json.dumps(trial.metrics))
    return trial.value == _as_float(value)


def cancel_if_twin(study: "Study", trial: Trial, history) -> bool:
    """Cancel a trial just created whose configuration another process gave to a trial of its own
    at the same moment (both proposed from the same view of the study), and say whether it did.
    The later of the two gives way (its place in ``n_trials`` comes back) and its process proposes
    again, now seeing the other: processes sharing a study ran one configuration two and three
    times, and a shared grid more trials than it has points."""
    if study.searcher.by_number:  # a configuration drawn for the trial's own number: no twins
        return False
    known = max((t.id for t in history.trials), default=0)
    mine = config_key(trial.config)
    twin = next((t for t in study.storage.trials(study.record.id, after_id=known)
                 if t.number < trial.number and config_key(t.config) == mine), None)
    if twin is None:
        return False
    return study.storage.cancel_trial(trial.id, f"cancelled: trial {twin.number} of another process was given "
                                                "the same configuration at the same moment")

