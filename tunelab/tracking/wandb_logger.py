"""Copy each trial to Weights & Biases as a run (offline by default: nothing leaves the machine
until ``wandb sync``). The runs of a study share a group named after it; a run's summary says
which trial, seed and state it was, so it leads back to the tunelab record."""

from __future__ import annotations

import os
from typing import Any

from tunelab.errors import ConfigError
from tunelab.tracking.callbacks import Callback, integer_steps
from tunelab.trial import Trial, TrialState


class WandbCallback(Callback):
    def __init__(self, project: str | None = None, directory: str | os.PathLike | None = None,
                 mode: str = "offline", **init_options: Any):
        try:
            import wandb
        except ImportError:
            raise ConfigError("the Weights & Biases callback needs wandb: pip install 'tunelab[wandb]'") from None
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"mode must be 'offline', 'online' or 'disabled'; got {mode!r}")
        self._wandb, self.project, self.mode, self.options = wandb, project, mode, init_options
        self.directory = None if directory is None else os.fspath(directory)

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        wandb = self._wandb
        run = wandb.init(project=self.project or study.name, group=study.name, name=f"trial-{trial.number}",
                         config=dict(trial.config), mode=self.mode, dir=self.directory, reinit="create_new",
                         tags=[trial.state.value], settings=wandb.Settings(silent=True, console="off"), **self.options)
        steps = integer_steps(trial.reports)  # W&B steps are integers that only grow
        counted = any(step != report.step for report, step in zip(trial.reports, steps))
        for report, step in zip(trial.reports, steps):
            run.log({**report.metrics, **({"step": report.step} if counted else {})}, step=step)
        # the result under its own keys: W&B also keeps the last logged value of each metric in the summary
        run.summary.update({f"result.{k}": v for k, v in trial.metrics.items() if isinstance(v, (int, float, str))})
        run.summary.update({"tunelab.study": study.name, "tunelab.trial": trial.number, "tunelab.seed": trial.seed,
                            "tunelab.state": trial.state.value})
        run.finish(exit_code=0 if trial.state in (TrialState.COMPLETED, TrialState.PRUNED) else 1)

    def close(self) -> None:
        """Stop W&B's background service: it writes the last records of the offline runs."""
        self._wandb.teardown()
