"""Run a recorded objective again: found by its import path, given a config and a seed.

Sensitivity, seed checks and ``reproduce`` all re-run an objective outside the tuner. They go
through the executors' own :func:`run_objective`, so a re-run fails, reports and normalises its
result exactly as the original trial did.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from tunelab.errors import ConfigError
from tunelab.executors.base import Outcome, accepts_trial, run_objective
from tunelab.reloading import loading_script
from tunelab.tracking.objective import import_recorded
from tunelab.trial import Decision, ReportSink, Report, TrialSpec, TrialState


#: Why a study has no objective on record. Its settings keep None both for a study made without
#: one (tl.create_study, ask/tell) and for an objective tunelab.api.objective_path could not name:
#: a callable object or a functools.partial has no __qualname__ to import it by. Nothing recorded
#: tells the two apart, so the message covers both, and says what to do about the second.
NO_OBJECTIVE = ("this study has no objective on record: either it was made without one (tl.create_study, "
                "ask/tell), or the objective given to tl.tune could not be recorded, since a callable object "
                "(an instance of a class with __call__) or a functools.partial has no name to import it by. To "
                "re-run its trials, tune with a function defined at the top level of a module or script that "
                "calls it, e.g. def objective(config): return MyObjective(...)(config)")


def load_objective(path: str | None, file: str | None = None) -> Callable:
    """Import ``'module:qualname'``; ``file`` (the recorded source file) tells where its package
    root is when the module is not importable from here."""
    if not path:
        raise ConfigError(NO_OBJECTIVE)
    if ":" not in path:
        raise ConfigError(f"this study's objective is on record as {path!r}, not as 'module:function'; it "
                          "cannot be found again")
    module_name, qualname = path.split(":", 1)
    if module_name == "tunelab.sklearn":
        raise ConfigError("this study's trials are TuneSearchCV's cross-validations, which live only inside its "
                          "fit: re-run one by fitting the estimator with the trial's config (tunelab show lists it)")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ConfigError(f"objective {path!r} was defined inside a function or as a lambda, so it cannot be "
                          "found again; define it at the top level of a module or of the script")
    if module_name == "__main__":
        target: Any = _load_script(file, path)
    else:
        target = import_recorded(module_name, file)
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"module {module_name!r} has no {qualname!r} (was it renamed?)")
    if not callable(target):
        raise ConfigError(f"{path!r} is not a function")
    return target


def _load_script(file: str | None, path: str) -> Any:
    """The script an objective was defined in (``python train.py`` tuned it: ``__main__``),
    loaded again under a name of its own, so that its ``if __name__ == "__main__":`` part does
    not run; a study it makes at its top level is refused (``tunelab.api.loading_script``)."""
    if not file or not os.path.isfile(file):
        where = f"in {file}, which is no longer there (moved or renamed?)" if file else "in a script not on record"
        raise ConfigError(f"objective {path!r} was defined {where}; it is needed to run the objective again")
    name = "tunelab_script_" + "".join(c if c.isalnum() else "_" for c in Path(file).stem)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == file:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"objective {path!r}: {file} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickling and dataclasses look a module up by its name
    folder = str(Path(file).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the script's own imports of modules beside it
    try:
        with loading_script(file):
            spec.loader.exec_module(module)
    except ConfigError:
        sys.modules.pop(name, None)
        raise
    except (Exception, SystemExit) as err:  # noqa: BLE001 - a script that exits or fails at load: say why
        sys.modules.pop(name, None)
        raise ConfigError(f"loading {file} again to re-run its objective failed: {type(err).__name__}: {err}") \
            from None
    return module


def study_objective(settings: Mapping[str, Any], folder: str | os.PathLike) -> Callable:
    """The objective a study ran: a ``tunelab run`` study's command, rebuilt from its study file
    (its runs get folders under ``folder``, never the original trials'), or a function found by
    its import path."""
    if settings.get("study_file"):
        from tunelab.script.command import CommandObjective
        from tunelab.script.studyfile import load_study_file

        path = settings["study_file"]
        if not Path(path).is_file():
            raise ConfigError(f"the study file {path!r} of this study is gone; it is needed to run its command again")
        study_file = load_study_file(path, settings.get("study_file_overrides") or ())
        ran = settings.get("objective", "")
        if ran.startswith("command: ") and ran != f"command: {study_file.command}":
            raise ConfigError(f"the study ran `{ran[len('command: '):]}`, and its study file {path} (with the same "
                              f"--set overrides) now says `{study_file.command}`: put the command back to run "
                              "the study's trials again")
        return CommandObjective.from_study_file(study_file, Path(folder))
    return load_objective(settings.get("objective"), settings.get("objective_file"))


class _Recorder(ReportSink):
    """Keeps the reports of a re-run (nothing decides to stop it: it runs in full)."""

    def __init__(self) -> None:
        self.reports: list[Report] = []

    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        self.reports.append(Report(step, dict(metrics), 0.0))
        return Decision.CONTINUE


@dataclass
class Rerun:
    """What one re-run gave: its metrics, the raw result, its reports, or its error."""

    config: dict[str, Any]
    seed: int
    state: TrialState
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: Any = None
    reports: list[Report] = field(default_factory=list)
    error: str | None = None

    def value(self, metric: str) -> float:
        if self.state is not TrialState.COMPLETED:
            raise ConfigError(f"the run with seed {self.seed} failed: {self.error}")
        return float(self.metrics[metric])


class _Keep:
    """Wraps the objective to keep its raw return value (predictions for an ensemble)."""

    def __init__(self, objective: Callable):
        self.objective, self.raw = objective, None
        self._with_trial = accepts_trial(objective)

    def __call__(self, config: dict[str, Any], trial: Any) -> Any:
        self.raw = self.objective(config, trial) if self._with_trial else self.objective(config)
        return self.raw


def rerun(objective: Callable, config: Mapping[str, Any], seed: int, metrics: list[str], *,
          study: str = "rerun", number: int = 0, artifact_dir: str | os.PathLike | None = None,
          budget: float | None = None) -> Rerun:
    """Run ``objective`` once on ``config`` with ``seed``, to ``budget`` (``trial.budget``: the
    fidelity level a multi-fidelity objective trains to); never raises for a failing objective."""
    keep, sink = _Keep(objective), _Recorder()
    with tempfile.TemporaryDirectory(prefix="tunelab-rerun-") as scratch:  # checkpoints: saved, never resumed
        spec = TrialSpec(id=0, number=number, config=dict(config), seed=int(seed), study=study, budget=budget,
                         artifact_dir=None if artifact_dir is None else str(artifact_dir), checkpoint_dir=scratch)
        outcome: Outcome = run_objective(keep, spec, sink, list(metrics))
    return Rerun(dict(config), int(seed), outcome.state, dict(outcome.metrics or {}), keep.raw, sink.reports,
                 outcome.error)


def check_named_metric(result: "Rerun", named: bool) -> None:
    """A run whose objective returned a dict while no metric was named: say which to name,
    before the other runs repeat the same failure."""
    if not named and result.error and "the study's metric is" in result.error:
        raise ConfigError(f"the objective returned a dict: name the metric to read, e.g. metric='loss' "
                          f"({result.error})")
