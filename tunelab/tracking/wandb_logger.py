"""Copy each trial to Weights & Biases as a run (offline by default: nothing leaves the machine
until ``wandb sync``). The runs of a study share a group named after it; a run's summary says
which trial, seed and state it was, so it leads back to the tunelab record.

A trial paused at a rung and resumed later goes on in the same run: its run id is fixed by the
study and the trial number, each stretch resumes it and adds the reports made since the last
one (offline, each stretch is a fragment of that run, which ``wandb sync`` joins in order)."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from tunelab.errors import ConfigError
from tunelab.tracking.callbacks import Callback, integer_steps, whole_steps
from tunelab.trial import Trial, TrialState


#: The wandb.init options each run gets from the callback (``project``, ``dir`` and ``mode`` are its
#: own arguments).
_SET_HERE = frozenset({"project", "dir", "mode", "group", "name", "id", "resume", "config", "reinit", "tags",
                       "settings"})


#: What W&B refuses in a project's name, and its longest (study names may hold ":" and be longer).
_NOT_IN_A_PROJECT = re.compile(r"[/\\#?%:]")
_MAX_PROJECT = 128


def wandb_project(study_name: str) -> str:
    """The W&B project of a study's runs when none is given: its name as W&B takes it (a study
    named ``resnet:lr`` had every trial refused, "Invalid project name"). The runs' group keeps
    the study's name as it is."""
    return _NOT_IN_A_PROJECT.sub("_", study_name)[:_MAX_PROJECT]


class WandbCallback(Callback):
    def __init__(self, project: str | None = None, directory: str | os.PathLike | None = None,
                 mode: str = "offline", **init_options: Any):
        try:
            import wandb
        except ImportError:
            raise ConfigError("the Weights & Biases callback needs wandb: pip install 'tunelab[wandb]'") from None
        if project is not None and (not isinstance(project, str) or not project or len(project) > _MAX_PROJECT
                                    or _NOT_IN_A_PROJECT.search(project)):
            raise ConfigError(f"project must be a W&B project name of 1-{_MAX_PROJECT} characters without / \\ # ? % :; "
                              f"got {project!r}")
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"mode must be 'offline', 'online' or 'disabled'; got {mode!r}")
        taken = sorted(set(init_options) & _SET_HERE)
        if taken:  # wandb.init would refuse them twice over, at every trial, and log nothing
            raise ConfigError(f"WandbCallback sets {', '.join(taken)} of each run itself (one run per trial, grouped "
                              f"by study); other wandb.init options may be given, e.g. entity='team'")
        self._wandb, self.project, self.mode, self.options = wandb, project, mode, init_options
        self.directory = None if directory is None else os.fspath(directory)
        self._logged: dict[str, int] = {}  # run id -> how many of its trial's reports it holds

    @staticmethod
    def run_id(study: Any, trial: Trial) -> str:
        """The trial's run id: one per trial of one study (another study of the same name, made
        again after a delete, has runs of its own)."""
        key = f"{study.name}/{study.record.created_at!r}/{trial.number}"
        return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        wandb = self._wandb
        run_id = self.run_id(study, trial)
        run = wandb.init(project=self.project or wandb_project(study.name), group=study.name, name=f"trial-{trial.number}",
                         id=run_id, resume="allow", config=dict(trial.config), mode=self.mode, dir=self.directory,
                         reinit="create_new", tags=[trial.state.value],
                         settings=wandb.Settings(silent=True, console="off"), **self.options)
        steps = integer_steps(trial.reports)  # W&B steps are integers that only grow
        counted = not whole_steps(trial.reports)
        logged = self._logged.get(run_id, 0)
        for report, step in list(zip(trial.reports, steps))[logged:]:
            run.log({**report.metrics, **({"step": report.step} if counted else {})}, step=step)
        self._logged[run_id] = len(trial.reports)
        # the result under its own keys: W&B also keeps the last logged value of each metric in the summary
        run.summary.update({f"result.{k}": v for k, v in trial.metrics.items() if isinstance(v, (int, float, str))})
        run.summary.update({"tunelab.study": study.name, "tunelab.trial": trial.number, "tunelab.seed": trial.seed,
                            "tunelab.state": trial.state.value})
        # a paused trial did not fail: it waits at a rung, and its run goes on when it is resumed
        run.finish(exit_code=1 if trial.state is TrialState.FAILED else 0)

    def close(self) -> None:
        """Stop W&B's background service: it writes the last records of the offline runs."""
        self._wandb.teardown()
