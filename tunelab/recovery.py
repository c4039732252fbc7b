"""Finding trials whose process died, and queueing them again: nothing finished is lost, and
nothing runs twice (rule 6 of DESIGN.md: storage is the state, so any tuner can do this).

A trial that saved a checkpoint is not started over: whether its process died or its tuner
stopped it (a timeout, Ctrl-C), it goes back in the queue as it is, and the next start claims it
first and runs it on to its budget from the checkpoint (``continue_later``). Hours of training
and a trial's place in the rungs are not lost to a killed worker or an interrupted run."""

from __future__ import annotations

import logging
import socket
import time
import warnings
from typing import TYPE_CHECKING, Any, Mapping

from tunelab import _json, checkpoints
from tunelab.storage.base import RETRY_OF, owner_is_dead
from tunelab.trial import Decision, Trial, TrialState

if TYPE_CHECKING:
    from tunelab.study import Study

#: How often a running tuner, or a study's ask(), looks for trials abandoned by dead processes
#: (a cheap indexed read).
RECOVER_SECONDS = 2.0
ATTEMPT = "attempt"
LATE_RESULT = "late_result"
INTERRUPTED = "interrupted"


def recover_abandoned(study: "Study", stale_after: float = 120.0, max_retries: int = 1) -> list[Trial]:
    """Queue again the running trials whose process is gone (once by default): the same trial, to
    go on from its checkpoint, when it saved one and its process on this machine is dead; else
    it fails and a copy (same configuration and seed) starts over.

    A trial run by a dead process on this machine is caught at once (its pid is gone); one
    from another machine when its heartbeat is older than ``stale_after`` seconds.
    Failing and re-queueing is one atomic step in storage, and both steps take the trial only
    from the process that held it, so two tuners recovering the same study at once never queue
    a trial twice.
    """
    requeued = []
    now = time.time()
    stale = [(trial_id, owner, heartbeat) for trial_id, owner, heartbeat in
             study.storage.running_trials(study.record.id) if owner != study.owner and (owner_is_dead(owner) or (
                 not _same_host(owner) and heartbeat is not None and now - heartbeat > stale_after))]
    if not stale:
        return []
    study._sync()
    cache = study._cache
    for trial_id, owner, heartbeat in stale:
        trial = cache[trial_id]
        again, why = _attempts(trial, cache) <= max_retries, f"the process running it ({owner}) is gone"
        # It ran until its process's last sign of life, not until now: a tuner restarted hours
        # after a crash must not bill those hours to the trial.
        ran_until = min(max(heartbeat or 0.0, trial.running_since or 0.0,
                            trial.reports[-1].time if trial.reports else 0.0), now)
        # Only a process known dead (on this machine) leaves its checkpoint alone for good: one
        # whose heartbeat went stale may still be running and writing it, so its retry starts over.
        if owner_is_dead(owner) and continue_later(study, trial, why, owner, max_retries, ran_until):
            requeued.append(study._cache[trial_id])
            continue
        abandoned, retry = study.storage.abandon_trial(trial_id, f"abandoned: {why}",
                                                       retry_attrs(trial, cache) if again else None, owner, ran_until)
        if abandoned:
            checkpoints.delete(study.checkpoint_dir(trial))
        if retry is not None:
            cache[retry.id] = retry
            requeued.append(retry)
    study._sync()
    return requeued


def recover_now_and_then(study: "Study") -> list[Trial]:
    """``recover_abandoned`` at most every RECOVER_SECONDS for this study object: what ``ask``
    does, so that an ask/tell loop shared by several processes takes over, from its checkpoint,
    a trial whose process died, as tuners and workers do."""
    now = time.monotonic()
    if now - study._recovered_at < RECOVER_SECONDS:
        return []
    study._recovered_at = now
    return recover_abandoned(study)


def stop_trial(study: "Study", trial_id: int, reason: str) -> Trial:
    """A trial its tuner stopped for reasons of its own (a timeout, Ctrl-C, another budget): one
    that saved a checkpoint waits to go on from it (``continue_later``); another fails as
    cancelled, and a copy of it (same configuration and seed, in its place in ``n_trials``) waits
    to run first when the study is run again, as a killed one's retry does: an interrupted
    configuration, an enqueued baseline say, is not lost to the stop."""
    trial = study._trial(trial_id)
    if not _settle_at_budget(study, trial) and not continue_later(study, trial, f"stopped: {reason}"):
        if study.storage.cancel_trial(trial_id, f"cancelled: {reason}"):
            attrs = {RETRY_OF: trial.number, ATTEMPT: _attempts(trial, study._cache)}  # a stop is no attempt
            study.storage.create_trial(study.record.id, trial.config, lambda _number: trial.seed,
                                       TrialState.WAITING, system_attrs=attrs)
        study._sync()
    return study._cache[trial_id]


def claim_queued(study: "Study", budget: float | None) -> Trial | None:
    """Claim the oldest waiting trial to run (``budget``: a new one's). An interrupted one goes on
    from its checkpoint (``study._continuing``), unless it had reported at its budget before its
    process died: then only the answer to that report was lost, and it is settled here instead of
    run again (the claim made this process its owner, so no other settles or runs it meanwhile)."""
    while True:
        trial = study.storage.claim_waiting(study.record.id, study.owner, budget)
        if trial is None or INTERRUPTED not in trial.system_attrs:
            return trial
        study._sync()
        if not _settle_at_budget(study, study._cache[trial.id]):
            study._continuing.add(trial.id)
            return trial


def continue_later(study: "Study", trial: Trial, reason: str, owner: str | None = None, max_retries: int = 1,
                   ran_until: float | None = None) -> bool:
    """Queue ``trial``, interrupted while running, to go on from its checkpoint: the same trial,
    at the budget it was running to, claimed before any other (``Storage.requeue_trial``). Each
    interruption is recorded (``system_attrs["interrupted"]``: why, when, the last step reported).
    ``owner``: the process that held it when it died, which counts the death against
    ``max_retries`` (a death may repeat; a tuner's stop is not the trial's doing). False,
    changing nothing, when the trial saved no checkpoint, is out of retries, or is no longer
    running (held by ``owner``). ``ran_until``: when it stopped running (default now)."""
    attempts = _attempts(trial, study._cache)
    # Onto a state its stored reports cover. A trial that reports nothing (no fidelity, none yet)
    # may checkpoint without reporting: its checkpoint is all it has.
    if (owner is None or attempts <= max_retries) and (trial.reports or study.fidelity is not None):
        checkpoints.roll_back(study.checkpoint_dir(trial), trial.last_step)
    if (owner is not None and attempts > max_retries) or not checkpoints.exists(study.checkpoint_dir(trial)):
        return False
    record = {"reason": reason, "at": time.time(), "step": trial.last_step}
    attrs: dict[str, Any] = {INTERRUPTED: [*trial.system_attrs.get(INTERRUPTED, []), record]}
    if owner is not None:
        attrs[ATTEMPT] = attempts + 1
    if not study.storage.requeue_trial(trial.id, attrs, owner, ran_until):
        return False
    study._sync()
    return True


def _attempts(trial: Trial, cache: Mapping[int, Trial]) -> int:
    """How many times this configuration has been tried (its attempt number, or by following
    retry_of links for trials recorded before attempts were numbered)."""
    if ATTEMPT in trial.system_attrs:
        return int(trial.system_attrs[ATTEMPT])
    by_number = {t.number: t for t in cache.values()} if RETRY_OF in trial.system_attrs else {}
    count, current = 1, trial
    while RETRY_OF in current.system_attrs and current.system_attrs[RETRY_OF] in by_number:
        count, current = count + 1, by_number[current.system_attrs[RETRY_OF]]
    return count


def retry_dead(study: "Study", trial: Trial, max_retries: int) -> Trial | None:
    """A trial failed because its worker process died (killed, out of memory, ``os._exit``) and
    that saved no checkpoint: a copy (same configuration and seed, not counted again) waits to
    run, unless it has had ``max_retries`` re-runs already."""
    if _attempts(trial, study._cache) > max_retries:
        return None
    retry = study.enqueue(trial.config, retry_of=trial)
    logging.getLogger("tunelab").warning("trial %d: %s; queued again as trial %d", trial.number, trial.error,
                                         retry.number)
    return retry


def retry_attrs(trial: Trial, cache: Mapping[int, Trial]) -> dict[str, Any]:
    return {RETRY_OF: trial.number, ATTEMPT: _attempts(trial, cache) + 1}


def _same_host(owner: str | None) -> bool:
    return bool(owner) and owner.rsplit(":", 2)[0] == socket.gethostname()


def keep_late_result(study: "Study", trial: Trial, state: TrialState, metrics: Mapping[str, Any]) -> bool:
    """A result that arrives after its trial was failed (abandoned, cancelled, timed out) is
    kept in the trial's system attributes instead of being dropped; the trial stays failed."""
    if trial.state is not TrialState.FAILED or state not in (TrialState.COMPLETED, TrialState.PRUNED):
        return False
    late = {"state": state.value, "metrics": _json.loads(_json.dumps(dict(metrics))), "at": time.time()}
    study.storage.set_trial_attr(trial.id, LATE_RESULT, late, system=True)
    trial.system_attrs[LATE_RESULT] = late
    warnings.warn(f"trial {trial.number} was already failed ({trial.error}); its late result is kept in "
                  f"system_attrs[{LATE_RESULT!r}]", stacklevel=3)
    return True


def _settle_at_budget(study: "Study", trial: Trial) -> bool:
    """A trial interrupted after it had reported at its budget lost only the answer to that
    report: it is settled as the scheduler answers it now (a rung pauses it, a stopping rule
    prunes it, a full run completes with its last values), not run again. Only its owner does
    this: its tuner when it stops it, else the process that claims it once requeued."""
    if not trial.reached_budget:
        return False
    state = ENDS.get(answer_again(study, trial), TrialState.COMPLETED)
    values = {k: v for report in trial.reports for k, v in report.metrics.items()}  # the last of each
    return study.finish(trial.id, state, metrics=values).state is state


#: How a run ends on the scheduler's last answer (anything else: it completed).
ENDS = {Decision.PAUSE: TrialState.PAUSED, Decision.STOP: TrialState.PRUNED}


def answer_again(study: "Study", trial: Trial) -> Decision:
    """The scheduler's answer to a trial's last stored report, given again: the first answer was
    lost with its process, or heard by another Study object. A STOP at the full budget is none."""
    last = trial.reports[-1]
    decision = Decision(study.scheduler.on_report(trial, last.step, last.metrics, study.history()))
    at_max = study.fidelity is None or last.step >= study.fidelity.max * (1 - 1e-9)
    return Decision.CONTINUE if decision is Decision.STOP and at_max else decision
