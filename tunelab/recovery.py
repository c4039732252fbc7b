"""Finding trials whose process died, and queueing them again: nothing finished is lost, and
nothing runs twice (rule 6 of DESIGN.md: storage is the state, so any tuner can do this)."""

from __future__ import annotations

import socket
import time
import warnings
from typing import TYPE_CHECKING, Any, Mapping

from tunelab import _json
from tunelab.storage.base import RETRY_OF, owner_is_dead
from tunelab.trial import Trial, TrialState

if TYPE_CHECKING:
    from tunelab.study import Study

ATTEMPT = "attempt"
LATE_RESULT = "late_result"


def recover_abandoned(study: "Study", stale_after: float = 120.0, max_retries: int = 1) -> list[Trial]:
    """Fail the running trials whose process is gone and queue them again (once by default).

    A trial run by a dead process on this machine is caught at once (its pid is gone); one
    from another machine when its heartbeat is older than ``stale_after`` seconds.
    Failing and re-queueing is one atomic step in storage, so two tuners recovering the same
    study at once never queue a trial twice.
    """
    requeued = []
    now = time.time()
    stale = [(trial_id, owner) for trial_id, owner, heartbeat in study.storage.running_trials(study.record.id)
             if owner != study.owner and (owner_is_dead(owner) or (
                 not _same_host(owner) and heartbeat is not None and now - heartbeat > stale_after))]
    if not stale:
        return []
    study._sync()
    cache = study._cache
    for trial_id, owner in stale:
        trial = cache[trial_id]
        attrs = retry_attrs(trial, cache) if _attempts(trial, cache) <= max_retries else None
        _, retry = study.storage.abandon_trial(
            trial_id, f"abandoned: the process running it ({owner}) is gone", attrs)
        if retry is not None:
            cache[retry.id] = retry
            requeued.append(retry)
    study._sync()
    return requeued


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
