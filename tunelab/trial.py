"""Trials: the stored record of one try, and the live handle an objective talks to.

:class:`Trial` is a snapshot read from storage (what analysis, the CLI and searchers see).
:class:`RunningTrial` is what ``objective(config, trial)`` receives: it knows its seed and
budget, and sends each ``report`` to the tuner (in this process or across a pipe) through a
*sink*, getting back the scheduler's decision. Decisions are only ever made by the tuner.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from tunelab import _json, checkpoints
from tunelab.errors import ConfigError, TrialPaused, TrialPruned, warn_caller
from tunelab.interrupts import raise_if_stopped


class TrialState(str, Enum):
    WAITING = "waiting"  # enqueued or re-queued: will be claimed by the next ask
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a rung by a scheduler; may be resumed
    COMPLETED = "completed"
    PRUNED = "pruned"  # stopped early by a scheduler; its reports stay on record
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED)

    def __str__(self) -> str:
        return self.value


class Decision(str, Enum):
    """A scheduler's answer to a report."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Report:
    step: float
    metrics: dict[str, float]
    time: float


@dataclass
class Trial:
    """One try of a configuration, as recorded."""

    id: int
    number: int
    config: dict[str, Any]
    seed: int
    state: TrialState
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    budget: float | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    traceback: str | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    #: Seconds of the running stretches that ended, and when the one under way began (None when
    #: the trial is not running): a trial paused at a rung holds no worker while it waits.
    held: float = 0.0
    running_since: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the trial has run (holding a worker), over all its stretches: a paused and
        resumed trial's time in the queue is not in it."""
        if self.started_at is None:
            return None
        return self.held + (max(time.time() - self.running_since, 0.0) if self.running_since is not None else 0.0)

    def stop_running(self, at: float) -> None:
        """End the running stretch under way at ``at`` (a pause, the end): its seconds join ``held``."""
        if self.running_since is not None:
            self.held, self.running_since = self.held + (at - self.running_since), None

    @property
    def last_step(self) -> float | None:
        return self.reports[-1].step if self.reports else None

    @property
    def failed_itself(self) -> bool:
        """Failed by its own doing: not a trial its tuner cancelled (a budget reached, a twin of
        another process's trial), which says nothing about its configuration."""
        return self.state is TrialState.FAILED and not self.system_attrs.get("cancelled")  # storage.base.CANCELLED

    @property
    def shown_state(self) -> str:
        """The state as tables and exports show it: a trial its tuner cancelled is stored as
        failed, and shown as "cancelled" (what the counts by state say too)."""
        return self.state.value if self.failed_itself or self.state is not TrialState.FAILED else "cancelled"

    @property
    def reached_budget(self) -> bool:
        """Whether its last report is at its budget (a rung, or the full run) or past it."""
        return bool(self.reports) and self.budget is not None and self.reports[-1].step >= self.budget * (1 - 1e-9)

    def curve(self, metric: str) -> list[tuple[float, float]]:
        """(step, value) pairs of one reported metric: a learning curve."""
        return [(r.step, r.metrics[metric]) for r in self.reports if metric in r.metrics]

    def __repr__(self) -> str:
        value = "" if self.value is None else f", value={self.value:.6g}"
        return f"Trial(number={self.number}, state={self.state.value}{value}, config={self.config})"


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run a trial: plain data, cheap to send to another process."""

    id: int
    number: int
    config: dict[str, Any]
    seed: int
    study: str
    budget: float | None = None
    timeout: float | None = None  # seconds; enforced at each report when the executor cannot kill
    artifact_dir: str | None = None  # this trial's folder for logs and artefacts
    environment: dict[str, Any] | None = None  # the study's fingerprint and the packages it covers
    checkpoint_dir: str | None = None  # this trial's own directory for checkpoints (see tunelab.checkpoints)
    resumed_from: float | None = None  # a resumed trial's last step before it paused (a resumable fidelity)
    reported: dict[str, float] | None = None  # the last value of each metric its earlier runs reported
    continued: bool = False  # interrupted before, it goes on from its checkpoint (see tunelab.recovery)
    last_step: float | None = None  # the last step its earlier runs reported
    judged_on: str | None = None  # the metric its scheduler judges every report on (None: reports are only kept)


class ReportSink:
    """Where a RunningTrial sends what it learns; the tuner (or ask/tell study) implements it."""

    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        return Decision.CONTINUE

    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        pass

    def heartbeat(self, trial_id: int) -> None:
        """The trial is still running (said from another thread while its objective runs)."""

    def started(self, trial_id: int) -> None:
        """The trial's objective begins now, some time after it was handed to an executor (a
        cluster task that waited for a worker): its duration and cost count from here."""


class TrialTimeout(Exception):
    """The trial ran past its ``trial_timeout`` (raised at a report when the run cannot be killed)."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number; got {value!r}") from None


class RunningTrial:
    """The handle passed to ``objective(config, trial)``.

    ``managed`` is True when the tuner runs the objective: then a STOP decision raises
    :class:`TrialPruned` (and PAUSE raises :class:`TrialPaused`) inside ``report`` so the
    objective unwinds without extra code. In ask/tell use ``report`` just returns the decision.
    """

    def __init__(self, spec: TrialSpec, sink: ReportSink, managed: bool = False):
        self._spec, self._sink, self._managed = spec, sink, managed
        self._decision, self._warned = Decision.CONTINUE, False
        self.warnings: list[str] = []  # what it warned about, for a tuner in another process to say again
        self._told: str | None = None  # how study.tell left the trial (ask/tell): this run is over
        self._started = time.monotonic()
        self.reports: list[Report] = []
        #: why the trial ran out of time, once a report raised TrialTimeout: the run failed then,
        #: also if the objective caught the exception (``except Exception:``) and went on
        self.timed_out: str | None = None

    id = property(lambda self: self._spec.id)
    number = property(lambda self: self._spec.number)
    config = property(lambda self: dict(self._spec.config))
    seed = property(lambda self: self._spec.seed)

    @property
    def budget(self) -> int | float | None:
        """The fidelity level this run must reach (None: full); an ``int`` when it is a whole
        number, so that ``range(trial.budget)`` counts epochs."""
        budget = self._spec.budget
        return int(budget) if isinstance(budget, float) and budget.is_integer() else budget

    @property
    def judged_on(self) -> str | None:
        """The metric the study's scheduler judges every report on, which each report must then
        hold (None: reports are only kept, and may hold any metrics)."""
        return self._spec.judged_on

    @property
    def last_step(self) -> float | None:
        """The last step this trial reported, in this run or an earlier one (None: none yet)."""
        return self.reports[-1].step if self.reports else self._spec.last_step
    study_name = property(lambda self: self._spec.study)

    def report(self, step: float, **metrics: float) -> Decision:
        """Record intermediate metrics at ``step`` (an epoch, a number of samples...)."""
        self._check_open("report")
        raise_if_stopped()  # a stop lost on its way (in a finalizer) ends an objective at its next report
        step = _number(step, "trial.report: step")
        if not math.isfinite(step) or step < 0:
            raise ConfigError(f"trial.report: step must be a finite number >= 0 (an epoch, a share of the "
                              f"data...); got {step!r}")
        if not metrics:
            raise ConfigError("trial.report needs at least one metric, e.g. trial.report(epoch, loss=0.3)")
        clean = {str(k): _number(v, f"trial.report: metric {k!r}") for k, v in metrics.items()}
        if self._decision is not Decision.CONTINUE:  # the answer was ignored: this run is over, nothing more is kept
            if self._managed:  # the objective caught what report() raised: raised again, to end the run
                self._end_run(step)
            if not self._warned:
                self._warn(f"reports step {step:g} after the scheduler answered {self._decision.value.upper()}; "
                           "stop training it and call study.tell(trial, value) (report() returns the answer, "
                           "trial.should_stop() says it again)")
            return self._decision
        judged = self._spec.judged_on
        if judged is not None and judged not in clean:
            raise ConfigError(f"trial.report: the study's scheduler judges each report on {judged!r}; got only "
                              f"{sorted(clean)} (report {judged} at every step; other metrics may come with it)")
        budget = self._spec.budget
        if budget is not None and step > budget * (1 + 1e-9) + 1e-12:
            # a scheduler places rungs by step: a report past the budget it gave would pause or
            # prune the trial at a rung it was never run for
            raise ConfigError(f"trial.report: step {step:g} is past this run's budget {budget:g}; report steps in "
                              "the fidelity's units (an epoch, a share of the data...) and stop at trial.budget")
        resumed = self._spec.resumed_from
        if resumed is not None and step < resumed and not self._warned:
            self._warn(f"reports step {step:g} but had reached step {resumed:g} before it was paused: a resumed "
                       "trial goes on from its checkpoint (trial.load_checkpoint()) instead of starting over")
        if self.reports and step <= self.reports[-1].step:
            if not self._warned:
                self._warn(f"reports step {step:g} after step {self.reports[-1].step:g}: steps must increase, "
                           "so the report is ignored (report each step once, with all its metrics)")
            return self._decision
        self.reports.append(Report(step, clean, time.time()))
        if self.past_timeout():
            raise TrialTimeout(self.timed_out)
        self._decision = Decision(self._sink.report(self._spec.id, step, clean))
        if self._managed:
            self._end_run(step)
        return self._decision

    def _end_run(self, step: float) -> None:
        """Managed: unwind the objective when the scheduler said STOP or PAUSE."""
        if self._decision is Decision.STOP:
            raise TrialPruned(f"stopped by the scheduler at step {step:g}")
        if self._decision is Decision.PAUSE:
            raise TrialPaused(f"paused by the scheduler at step {step:g}")

    def past_timeout(self) -> str | None:
        """Why the run is out of time (its ``trial_timeout`` passed), or None: a trial run in the
        tuner's process is stopped at a report, and one that returns late fails all the same,
        as it does where a worker process is killed at its timeout."""
        timeout = self._spec.timeout
        if self.timed_out is None and timeout is not None and time.monotonic() - self._started > timeout:
            self.timed_out = f"trial ran past trial_timeout={timeout:g}s"
        return self.timed_out

    def artifact_path(self, name: str | os.PathLike) -> Path:
        """A path in this trial's folder for a file to keep (a model, a plot): ``name`` is relative
        (text or a ``pathlib.Path``), its folders are created, and the file is listed with the
        trial's record."""
        if self._spec.artifact_dir is None:
            raise ConfigError("this trial has no artefact folder (it was not started by a study)")
        from tunelab.tracking.artifacts import safe_child

        path = safe_child(self._spec.artifact_dir, os.fspath(name) if isinstance(name, os.PathLike) else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _warn(self, what: str) -> None:
        """One warning per trial about how the objective drives it (a misuse that costs compute)."""
        self._warned = True
        self.warnings.append(f"trial {self.number} {what}")
        warn_caller(self.warnings[-1])

    def should_stop(self) -> bool:
        """True when the last report was answered with STOP or PAUSE."""
        return self._decision is not Decision.CONTINUE

    @property
    def decision(self) -> Decision:
        """The scheduler's answer to the last report (CONTINUE before any report)."""
        return self._decision

    # -- checkpoints: how a paused trial continues where it stopped ------------------------------
    @property
    def checkpoint_dir(self) -> str:
        """This trial's own directory (created on first use): write any files here, such as
        ``torch.save(model.state_dict(), os.path.join(trial.checkpoint_dir, "model.pt"))``."""
        if self._spec.checkpoint_dir is None:
            raise ConfigError("this trial has no checkpoint directory (it was not started by a study)")
        os.makedirs(self._spec.checkpoint_dir, exist_ok=True)
        return self._spec.checkpoint_dir

    def save_checkpoint(self, state: Any) -> str:
        """Keep ``state`` (JSON-able values with string keys, or bytes; tuples and numpy arrays load
        as lists) so that a resumed run can continue; call it
        *before* ``report`` at the end of an epoch, since a pause unwinds from ``report``."""
        self._check_open("save_checkpoint")
        return checkpoints.save(self.checkpoint_dir, state, self.last_step)

    def _check_open(self, what: str) -> None:
        """A handle whose run was told is closed: a report would decide nothing, and a checkpoint
        would overwrite the one a resumed run of the trial goes on from."""
        if self._told is not None:
            again = "; a later ask() resumes it with a handle of its own" if self._told == "paused" else ""
            raise ConfigError(f"trial.{what}: trial {self.number} was told already ({self._told}), so this "
                              f"handle's run is over{again}")

    def load_checkpoint(self) -> Any:
        """The state saved by the last run of this trial, or None on a fresh start."""
        if self._spec.checkpoint_dir is None:
            return None
        return checkpoints.load(self._spec.checkpoint_dir)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON value to the trial's record (e.g. the number of parameters of the model)."""
        if not isinstance(key, str):
            raise ConfigError(f"set_user_attr: key must be a str; got {key!r}")
        try:  # checked here, in the trial's own process: a value no JSON holds fails this trial only
            value = _json.to_jsonable(value)
        except TypeError as err:
            raise ConfigError(f"set_user_attr({key!r}): {err}; attributes are stored as JSON") from None
        self._sink.set_user_attr(self._spec.id, key, value)

    def __repr__(self) -> str:
        return f"RunningTrial(number={self.number}, config={self._spec.config})"


#: How the error of a trial whose metric went NaN or infinite ends: the configuration diverged
#: (a learning rate too large), which says nothing against the objective (see tunelab.tuner).
DIVERGED = "(the run diverged)"


def diverged(error: str | None) -> bool:
    return bool(error) and error.endswith(DIVERGED)


class InvalidResult(ValueError):
    """The objective returned something that is not a usable result.

    ``non_finite`` tells a NaN or infinite metric (a diverged run: the trial failed) from a result
    of the wrong shape (a programming error the caller should hear about).
    """

    def __init__(self, message: str, non_finite: bool = False):
        super().__init__(message)
        self.non_finite = non_finite


def warn_ended_short(number: int, reports: list[Report], budget: float) -> None:
    """A run that reported below its budget, then ended with a result although the scheduler let
    it go on: the result is recorded as its report at the budget (the scheduler must decide on
    it, and a value below a rung must not pass for a full run), so it is said out loud."""
    if reports and reports[-1].step < budget * (1 - 1e-9):
        warn_caller(f"trial {number} ended at step {reports[-1].step:g} of its budget {budget:g} although the "
                    f"scheduler let it go on; its result is recorded as its report at step {budget:g}: train "
                    "to trial.budget, or end when trial.should_stop()")
