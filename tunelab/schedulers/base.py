"""The scheduler protocol: *how much to spend on each try*.

A scheduler hears every report of every trial and answers CONTINUE, STOP (prune) or PAUSE
(stop at a rung, maybe resume later). It chooses the budget (fidelity level) a new or resumed
trial must reach and may pick a paused trial to resume when a worker frees up. Like searchers,
it reads the study's history instead of keeping private state, so it composes with any searcher
and survives a restart.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tunelab.errors import ConfigError, SetupWarning, warn_caller
from tunelab.fidelity import Fidelity
from tunelab.history import History
from tunelab.trial import Decision, Trial


class Scheduler:
    """The default behaviour is FIFO's: run every trial to the end."""

    name: ClassVar[str] = "fifo"
    #: The searcher used when the user names none: model-based schedulers (BOHB) pick a model.
    searcher: ClassVar[str] = "auto"
    #: Whether reports decide anything (a report without the study's metric is then worth a warning).
    judges_reports: ClassVar[bool] = True
    #: Whether it only ever stops runs on their way to the full budget (a stopping rule): with a
    #: fresh-run fidelity, each run reports once at its level, so such a rule stops nothing.
    stops_only: ClassVar[bool] = False

    def __init__(self, metric: str, mode: str):
        if mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max'; got {mode!r}")
        self.metric, self.mode = metric, mode
        self.fidelity: Fidelity | None = None
        self.max_trials: int | None = None

    def bind(self, fidelity: Fidelity | None) -> None:
        """Learn the study's fidelity (its range and whether runs resume from checkpoints)."""
        self.fidelity = fidelity
        if fidelity is not None and not fidelity.resumable and self.stops_only:
            warn_caller(f"scheduler {self.name!r} stops a run between its reports: a run of the fresh-run fidelity "
                        f"{fidelity.name!r} that reports only once, at its full level (a subsample, a model size), "
                        "is never stopped; sh, asha (promotion), hyperband and bohb choose the level each run "
                        "gets instead", SetupWarning)

    def plan(self, max_trials: int | None) -> None:
        """Hear how many trials the study may have in all (None: no limit), so that a rung can be
        closed when no more trials will come and dead checkpoints can be recognised as such."""
        self.max_trials = max_trials

    def budget_for(self, trial: Trial | None, history: History) -> float | None:
        """The fidelity level a resumed ``trial`` (or a new one, for None) should reach;
        None lets the objective run its own full course."""
        return None

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        """Answer one report; ``trial.reports`` already holds it."""
        return Decision.CONTINUE

    def on_result(self, trial: Trial, history: History) -> None:
        """Hear that a trial finished (completed, pruned, failed) or paused."""

    def trial_to_resume(self, history: History) -> Trial | None:
        """A paused trial to run further before starting a new one, if any."""
        return None

    def retired(self, history: History) -> list[Trial]:
        """Paused trials that will never be resumed: the study prunes them and deletes their
        checkpoints, so the disk holds only what may still be needed."""
        return []

    def start_attrs(self) -> dict[str, Any]:
        """System attributes kept with a trial when it starts: what the scheduler will need to
        know later about the plan it started under (storage is the state, not the scheduler)."""
        return {}

    def trusted_budget(self, history: History) -> float:
        """The lowest budget whose verdicts the scheduler stands by. A searcher that learns from
        how far runs were let go (``kde``) ignores verdicts taken below it: a rung found to
        mislead has stopped the wrong runs, and learning from that would mislead the model too."""
        return 0.0

    def options(self) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.options()}
