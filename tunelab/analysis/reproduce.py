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
from tunelab.study import WORKER
from tunelab.tracking.environment import code_path_of, compare_with_study, diff_environments, environment_summary
from tunelab.trial import TrialState


@dataclass
class Reproduction:
    number: int
    metric: str
    recorded: float | None
    reproduced: Rerun
    environment_changes: list[str]

    @property
    def value(self) -> float | None:
        return self.reproduced.metrics.get(self.metric) if self.reproduced.error is None else None

    @property
    def difference(self) -> float | None:
        if self.value is None or self.recorded is None:
            return None
        return self.value - self.recorded

    @property
    def exact(self) -> bool:
        return self.difference == 0.0

    def report(self) -> str:
        lines = [f"trial {self.number}: seed {self.reproduced.seed}, config {self.reproduced.config}"]
        if self.environment_changes:
            lines.append("environment differences (recorded -> now):")
            lines += [f"  {line}" for line in self.environment_changes]
        else:
            lines.append("environment: same fingerprint as recorded")
        if self.reproduced.error is not None:
            lines.append(f"the re-run FAILED: {self.reproduced.error}")
        elif self.recorded is None:
            lines.append(f"{self.metric} now {self.value:.10g} (the recorded trial has no value at its budget)")
        else:
            rel = abs(self.difference) / abs(self.recorded) if self.recorded else math.inf
            verdict = "reproduced exactly" if self.exact else f"differs by {self.difference:+.6g} ({rel:.3%})"
            lines.append(f"{self.metric}: recorded {self.recorded:.10g}, now {self.value:.10g}: {verdict}")
        return "\n".join(lines)


def reproduce(study: Any, number: int, *, objective: Any = None, folder: Any = None) -> Reproduction:
    """Re-run trial ``number`` of ``study`` with its recorded config and seed."""
    trial = study.get_trial(number)
    if trial.state is TrialState.WAITING:
        raise ConfigError(f"trial {number} has not run yet")
    folder = folder if folder is not None else study.trial_dir(number) / "reproduce"
    objective = objective or study_objective(study.record.settings, folder)
    recorded_env = (trial.system_attrs.get(WORKER) or {}).get("environment") or study.environment
    _, current = compare_with_study(environment_summary(recorded_env), code_path_of(objective))
    changes = diff_environments(recorded_env, current)
    result = rerun(objective, trial.config, trial.seed, study.metrics, study=study.name, number=number,
                   artifact_dir=folder, budget=trial.budget)  # as far as it ran (a rung, for a pruned one)
    return Reproduction(number, study.metric, _recorded(trial), result, changes)


def _recorded(trial: Any) -> float | None:
    """The value to compare the re-run with: a completed trial's, or the value at its budget of a
    trial paused or pruned there (a rung). One stopped before its budget has none that the
    re-run, which runs to the budget, could reproduce."""
    if trial.state is TrialState.COMPLETED:
        return trial.value
    return trial.value if trial.state in (TrialState.PAUSED, TrialState.PRUNED) and trial.reached_budget else None
