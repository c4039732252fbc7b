"""Re-run one recorded trial and say what differs: the environment, then the metric.

A trial's record holds everything needed to repeat it: the objective's import path, the config
and the seed. What the record cannot hold is the machine; so the current environment is captured
and compared with the study's (or the trial's own, when its worker's differed), and the user sees
which upgrade or code edit may explain a different result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tunelab.analysis.rerun import Rerun, rerun, study_objective
from tunelab.errors import ConfigError
from tunelab.schedulers.rungs import at_level
from tunelab.study import WORKER
from tunelab.tracking.environment import OBJECTIVE_FILE_LABEL, code_path_of, compare_with_study, \
    diff_environments, environment_summary
from tunelab.trial import TrialState


@dataclass
class Reproduction:
    number: int
    metric: str
    recorded: float | None
    reproduced: Rerun
    environment_changes: list[str]
    #: the step the recorded value is at, for a trial a stopping rule ended before its budget: the
    #: re-run's report there is compared (None: its result at the budget)
    step: float | None = None
    #: the error of a trial that failed by its own doing: a re-run that fails alike reproduces it
    recorded_error: str | None = None

    @property
    def value(self) -> float | None:
        if self.step is not None:  # the re-run's report at that step, even if it failed later
            return next((r.metrics.get(self.metric) for r in self.reproduced.reports if at_level(r.step, self.step)),
                        None)
        return self.reproduced.metrics.get(self.metric) if self.reproduced.error is None else None

    @property
    def difference(self) -> float | None:
        if self.value is None or self.recorded is None:
            return None
        return self.value - self.recorded

    @property
    def exact(self) -> bool:
        return self.difference == 0.0 or self.failed_alike

    @property
    def failed_alike(self) -> bool:
        return self.recorded_error is not None and self.reproduced.error == self.recorded_error

    def report(self) -> str:
        lines = [f"trial {self.number}: seed {self.reproduced.seed}, config {self.reproduced.config}"]
        if self.environment_changes:
            lines.append("environment differences (recorded -> now):")
            lines += [f"  {line}" for line in self.environment_changes]
        else:
            lines.append("environment: same fingerprint as recorded")
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self) -> str:
        at = "" if self.step is None else f" at step {self.step:g}, where a stopping rule ended it"
        if self.recorded_error is not None:
            if self.failed_alike:
                return f"the recorded trial failed, and the re-run failed the same way: {self.recorded_error}"
            now = f"failed otherwise: {self.reproduced.error}" if self.reproduced.error is not None else \
                f"completed, {self.metric} {self.reproduced.metrics.get(self.metric)!r}"
            return f"the recorded trial failed ({self.recorded_error}); the re-run {now}"
        if self.value is None:
            if self.reproduced.error is not None:
                return f"the re-run FAILED: {self.reproduced.error}"
            return f"the re-run reported no {self.metric}{at} (the recorded trial has one)" if self.step is not None \
                else f"{self.metric} now {self.value!r} (the recorded trial has no value at its budget)"
        if self.recorded is None:
            return f"{self.metric} now {self.value:.10g} (the recorded trial has no value at its budget)"
        rel = abs(self.difference) / abs(self.recorded) if self.recorded else math.inf
        verdict = "reproduced exactly" if self.difference == 0.0 else f"differs by {self.difference:+.6g} ({rel:.3%})"
        return f"{self.metric}{at}: recorded {self.recorded:.10g}, now {self.value:.10g}: {verdict}"


def reproduce(study: Any, number: int, *, objective: Any = None, folder: Any = None) -> Reproduction:
    """Re-run trial ``number`` of ``study`` with its recorded config and seed."""
    trial = study.get_trial(number)
    if trial.state is TrialState.WAITING:
        raise ConfigError(f"trial {number} has not run yet")
    folder = folder if folder is not None else study.trial_dir(number) / "reproduce"
    objective = objective or study_objective(study.record.settings, folder)
    changes = environment_changes(study, trial, objective)
    result = rerun(objective, trial.config, trial.seed, study.metrics, study=study.name, number=number,
                   artifact_dir=folder, budget=trial.budget)  # as far as it ran (a rung, for a pruned one)
    value, step = _recorded(trial, study.metric)
    error = trial.error if trial.failed_itself else None
    return Reproduction(number, study.metric, value, result, changes, step, error)


def environment_changes(study: Any, trial: Any, objective: Any) -> list[str]:
    """How this process's environment differs from the one ``trial`` ran in (its worker's when
    that differed from the study's), line by line: what ``reproduce`` prints, and what the other
    re-running commands look into for an edited objective file."""
    recorded_env = (trial.system_attrs.get(WORKER) or {}).get("environment") or study.environment
    _, current = compare_with_study(environment_summary(recorded_env), code_path_of(objective))
    return diff_environments(recorded_env, current)


@dataclass
class ObjectiveFileChange:
    """The objective's file (the script, for a ``tunelab run`` study) was edited since the trial
    ran: a re-run runs the code as it is now, so a different value may owe nothing to the seed."""

    file: str
    line: str  # diff_environments' line, recorded -> now

    def warning(self) -> str:
        return (f"warning: the objective's file {self.file} changed since the study ran ({self.line}); the "
                "re-runs run it as it is now, so their values may differ from the recorded trial's for that "
                "reason alone")


def objective_file_change(study: Any, trial: Any, objective: Any) -> ObjectiveFileChange | None:
    """The edit to the objective's file since ``trial`` ran, if any (None also where the study
    recorded no hash of it: an ask/tell study, or one older than the hashing)."""
    for line in environment_changes(study, trial, objective):
        if line.startswith(OBJECTIVE_FILE_LABEL + ":"):
            return ObjectiveFileChange(code_path_of(objective), line)
    return None


def _recorded(trial: Any, metric: str) -> tuple[float | None, float | None]:
    """(value, step) to compare the re-run with: a completed trial's value, or the value at its
    budget of a trial paused or pruned there (a rung), at no particular step; or, for a trial a
    stopping rule ended before its budget, its last report and the step of it (the re-run runs to
    the budget and reports on the way)."""
    if trial.state is TrialState.COMPLETED:
        return trial.value, None
    if trial.state in (TrialState.PAUSED, TrialState.PRUNED) and trial.reached_budget:
        return trial.value, None
    if trial.state is TrialState.PRUNED and trial.reports and metric in trial.reports[-1].metrics:
        return trial.reports[-1].metrics[metric], trial.reports[-1].step
    return None, None
