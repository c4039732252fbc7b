"""The storage protocol: the single source of truth for studies, trials and reports.

Storage knows nothing of searchers or schedulers (rule 1). It keeps records and guarantees the
few atomic steps that let several processes share a study: numbering a new trial, queueing a
configuration once, claiming a waiting trial, resuming a paused one, and finishing a trial
exactly once.
"""

from __future__ import annotations

import os
import re
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from tunelab.trial import Report, Trial, TrialState

#: system_attrs keys that storage itself understands: a retry names the trial it repeats, and a
#: cancelled trial gave its budget back. "cancelled" is also the key under which counts of trials
#: by state give the cancelled ones apart from those that failed by their own doing.
RETRY_OF, CANCELLED = "retry_of", "cancelled"

SeedFor = Callable[[int], int]
#: A configuration, or a function of the trial number that gives one (drawn inside the
#: transaction that numbers the trial, so that processes sharing a study never draw alike).
ConfigFor = dict[str, Any] | Callable[[int], dict[str, Any]]


def config_for(config: ConfigFor, number: int) -> dict[str, Any]:
    return config(number) if callable(config) else config


def cancelled_as_failed(counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed by TrialState values alone, a cancelled trial counted as the failed trial it
    is stored as: for callers that read every key as a TrialState."""
    merged = {state: n for state, n in counts.items() if state != CANCELLED}
    if counts.get(CANCELLED):
        merged[TrialState.FAILED.value] = merged.get(TrialState.FAILED.value, 0) + counts[CANCELLED]
    return merged


@dataclass
class StudyRecord:
    id: int
    name: str
    space: dict[str, Any]
    metrics: list[str]
    modes: list[str]
    seed: int
    created_at: float
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudySummary:
    name: str
    created_at: float
    metrics: list[str]
    modes: list[str]
    counts: dict[str, int]
    best_value: float | None

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


def process_owner() -> str:
    """Who runs a trial: host, pid and process start time (so a reused pid is not mistaken);
    made once per process (a forked child makes its own)."""
    global _OWNER
    if _OWNER is None or _OWNER[0] != os.getpid():
        _OWNER = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{_process_start_ticks(os.getpid())}")
    return _OWNER[1]


_OWNER: tuple[int, str] | None = None


def _process_start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


def owner_is_dead(owner: str | None) -> bool:
    """True only when ``owner`` ran on this host and that process is certainly gone."""
    if not owner or owner.count(":") < 2:
        return False
    host, pid_text, ticks = owner.rsplit(":", 2)
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return ticks not in ("?", _process_start_ticks(pid)) or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process that its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class Storage(ABC):
    """Persistent (or in-memory) records of studies. Every method is safe to call from one thread
    per storage object; several processes may open the same database URL."""

    url: str

    # -- studies -------------------------------------------------------------------------------
    @abstractmethod
    def create_study(self, record: StudyRecord) -> StudyRecord:
        """Store a new study (its id is assigned here); raises StudyExists for a taken name."""

    @abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """The study of that name; raises StudyNotFound."""

    @abstractmethod
    def list_studies(self) -> list[StudySummary]: ...

    @abstractmethod
    def delete_study(self, name: str) -> None: ...

    @abstractmethod
    def update_study(self, study_id: int, *, settings: dict | None = None, user_attrs: dict | None = None) -> None:
        """Merge keys into a study's settings or user attributes."""

    # -- trials --------------------------------------------------------------------------------
    @abstractmethod
    def create_trial(
        self,
        study_id: int,
        config: ConfigFor,
        seed_for: SeedFor,
        state: TrialState = TrialState.RUNNING,
        owner: str | None = None,
        budget: float | None = None,
        system_attrs: dict[str, Any] | None = None,
        *,
        limit: int | None = None,
        counted: bool = True,
    ) -> Trial | None:
        """Number a new trial atomically, derive its seed from the number, and store it.

        A ``counted`` trial spends one unit of the study's trial budget; with ``limit``, the trial
        is created only while fewer than ``limit`` counted trials exist (else None is returned), in
        the same atomic step, so that any number of workers together never exceed n_trials."""

    @abstractmethod
    def counted_trials(self, study_id: int) -> int:
        """How many trials spend the study's budget (all but cancelled ones and re-queued ones)."""

    @abstractmethod
    def cancel_trial(self, trial_id: int, error: str) -> bool:
        """Fail an unfinished trial as cancelled and give its budget back; False if it had ended."""

    @abstractmethod
    def abandon_trial(self, trial_id: int, error: str, retry_attrs: dict[str, Any] | None,
                      owner: str | None = None, ran_until: float | None = None) -> tuple[bool, Trial | None]:
        """Fail a running trial whose process is gone and, with ``retry_attrs``, queue a waiting
        copy (same config and seed, not counted again) in the same atomic step. Returns whether
        this call failed it and the retry: two processes recovering at once never both re-queue.
        With ``owner``, only while that process still holds it (not once another resumed it).
        ``ran_until``: when its running stretch ended (its process's last sign of life; default
        now), so that the time its process lay dead is not counted as time it ran."""

    @abstractmethod
    def requeue_trial(self, trial_id: int, attrs: dict[str, Any], owner: str | None = None,
                      ran_until: float | None = None) -> bool:
        """Put a running trial back in the queue as it is (its number, config, budget, reports and
        checkpoint; still counted), with ``attrs`` merged into its system attributes: a trial
        interrupted by its process's death or by its tuner's stop goes on from its checkpoint
        when claimed next, at the budget it was running to. False if it was not running (by
        ``owner``, when given: a process with a stale view must not requeue it from its new owner).
        ``ran_until`` as for :meth:`abandon_trial`."""

    @abstractmethod
    def top_trials(self, study_id: int, k: int, descending: bool) -> list[Trial]:
        """The ``k`` completed trials with the lowest (or highest) value, best first (an index
        scan, for studies too large to load)."""

    @abstractmethod
    def last_trials(self, study_id: int, k: int) -> list[Trial]:
        """The ``k`` most recent trials by number, oldest of them first."""

    @abstractmethod
    def count_states(self, study_id: int) -> dict[str, int]:
        """How many trials are in each state (states with none left out), the cancelled ones under
        "cancelled" apart from "failed" (see ``Trial.shown_state``): what `tunelab show` prints,
        answered by the storage without reading the trials' rows."""

    @abstractmethod
    def enqueue_once(self, study_id: int, config: dict[str, Any], seed_for: SeedFor, *,
                     limit: int | None = None) -> tuple[Trial | None, bool]:
        """Queue ``config`` as a waiting (counted) trial unless a trial of the study already has it,
        whatever its state: the look and the insert are one atomic step, so that processes that
        start one study at once with the same baseline queue it once. Returns (the new trial,
        True), (the trial that has it, False), or (None, False) when ``limit`` counted trials
        exist (as :meth:`create_trial`)."""

    @abstractmethod
    def held_seconds(self, study_id: int, now: float) -> float:
        """Seconds the study's trials have held their resources (a running trial until ``now``),
        summed by the storage: what a study's cost needs, without loading its trials."""

    @abstractmethod
    def claim_waiting(self, study_id: int, owner: str, budget: float | None = None) -> Trial | None:
        """Atomically move the oldest waiting trial to running; None when there is none."""

    @abstractmethod
    def resume_trial(self, trial_id: int, owner: str, budget: float | None) -> bool:
        """Atomically move a paused trial back to running; False if someone else did first."""

    @abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        value: float | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
        at: float | None = None,
        paused_only: bool = False,
    ) -> bool:
        """Close a running trial (completed, pruned, failed) or pause it; False if it was
        already finished, so that a result is recorded exactly once. ``paused_only``: only a
        trial still paused (a scheduler retiring it must not end one that another process has
        just resumed)."""

    @abstractmethod
    def add_report(self, study_id: int, trial_id: int, step: float, metrics: dict[str, float], at: float) -> int:
        """Append an intermediate report; returns its id."""

    @abstractmethod
    def set_trial_attr(self, trial_id: int, key: str, value: Any, *, system: bool = False) -> None: ...

    @abstractmethod
    def heartbeat(self, trial_ids: Iterable[int], at: float | None = None) -> None:
        """Mark trials as alive (a tuner does this for the trials it runs)."""

    @abstractmethod
    def start_clock(self, trial_id: int, at: float) -> None:
        """The running trial's objective began at ``at``, later than it was marked running: a
        cluster task waits in a queue, or for a worker to start, and that time is no trial's
        (its duration and cost count from here; on its first stretch, so does ``started_at``)."""

    @abstractmethod
    def trials(self, study_id: int, *, after_id: int = 0, ids: Iterable[int] = ()) -> list[Trial]:
        """Trials with id > after_id, plus those in ids; without their reports."""

    @abstractmethod
    def reports(self, study_id: int, *, after_id: int = 0) -> list[tuple[int, int, Report]]:
        """(report id, trial id, report) with report id > after_id, in order."""

    @abstractmethod
    def furthest_steps(self, trial_ids: Iterable[int]) -> dict[int, float]:
        """The largest step each of these trials reported (those that reported), read through an
        index: how far trials loaded without their reports got."""

    @abstractmethod
    def paused_trials(self, study_id: int) -> list[tuple[int, float | None]]:
        """(trial id, budget) of every paused trial: what a study's mirror compares with its own
        to find the paused trials that others resumed or finished, without reading them all."""

    @abstractmethod
    def running_trials(self, study_id: int) -> list[tuple[int, str | None, float | None]]:
        """(trial id, owner, last heartbeat) of every running trial: for finding abandoned ones."""

    def close(self) -> None:
        """Release connections (a no-op where there are none)."""

    def __repr__(self) -> str:  # printed, logged, in tracebacks: never with the database password
        return f"{type(self).__name__}({hide_password(self.url)!r})"


_CREDENTIALS = re.compile(r"^([\w+.\-]+://[^:/@?#]*:)(.*)@")  # scheme://user: ... up to the last '@'
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd)=)[^&#]*")


def hide_password(url: str) -> str:
    """``url`` as messages show it: a database password never lands in a log or a terminal.

    Users write passwords unescaped: one with a '/' or an '@' in it, or after an empty user name,
    still opens the database (the driver reads it up to an '@'), so it is hidden up to the last '@'
    (too much shown is a leak; too much hidden only a longer look at the URL). A ``?password=``
    option, which the PostgreSQL drivers also take, is hidden too."""
    text = _QUERY_PASSWORD.sub(r"\1***", str(url))
    found = _CREDENTIALS.match(text)
    if found is None or not _has_password(text):
        return text
    return f"{found.group(1)}***@{text[found.end():]}"


def _has_password(url: str) -> bool:
    """Whether the URL names a password before its host (not a host:port followed by an '@' in
    its path or query); a URL too broken to parse is taken to name one."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password is not None
    except Exception:  # noqa: BLE001 - any parse failure: hide rather than show
        return True


def now() -> float:
    return time.time()
