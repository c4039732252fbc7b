"""Asynchronous successive halving (ASHA, Li et al. 2020): no worker ever waits for a rung to fill.

Rungs sit at ``max / eta**k``. A trial is judged against the trials that reached the same rung
*so far*, so the decision is available at once, and it is right in the limit: of every ``eta``
trials at a rung about one goes on. Two styles:

* **stopping** (as in Ray Tune and Optuna): every trial is started for the full budget and
  stopped at a rung where it is not in the top ``1/eta`` of what that rung has seen;
* **promotion** (the paper's): a trial runs to the lowest rung and pauses; whenever a worker
  frees up, the best paused trial that is in the top ``1/eta`` of its rung, with the rung's
  quota ``floor(n/eta)`` not yet used, is resumed from its checkpoint at the next rung, the top
  rung first. Only when none qualifies does a new trial start. With the study's trial limit known
  (``plan``), a paused trial that can no longer get into its rung's quota is retired and its
  checkpoint deleted.

``brackets > 1`` is asynchronous Hyperband: trials are spread over brackets whose lowest rung is
higher and higher, hedging against a first rung that misleads.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.errors import ConfigError
from tunelab.history import History
from tunelab.schedulers.rungs import FidelityScheduler, at_level, rank, reached
from tunelab.trial import Decision, Trial, TrialState


class ASHAScheduler(FidelityScheduler):
    name = "asha"

    def __init__(self, metric: str, mode: str, min_budget: float | None = None, max_budget: float | None = None,
                 eta: float = 3, promotion: bool = True, brackets: int = 1):
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise ConfigError(f"{self.name}: brackets must be a positive integer; got {brackets!r}")
        self.promotion, self.n_brackets = bool(promotion), brackets
        super().__init__(metric, mode, min_budget, max_budget, eta)

    def _configure(self) -> None:
        self.n_brackets = min(self.n_brackets, len(self.levels))

    def options(self) -> dict[str, Any]:
        return {**super().options(), "promotion": self.promotion, "brackets": self.n_brackets}

    # -- brackets: which rungs a trial is judged at -----------------------------------------------
    def bracket_of(self, trial: Trial) -> int:
        """Trials take brackets in turn by number, a fact storage keeps (rule 6)."""
        return trial.number % self.n_brackets

    def members(self, history: History, bracket: int) -> list[Trial]:
        return [t for t in history.trials if t.reports and self.bracket_of(t) == bracket]

    # -- the protocol ---------------------------------------------------------------------------
    def budget_for(self, trial: Trial | None, history: History) -> float | None:
        if trial is not None:
            return self.next_level(trial.budget)
        if not self.promotion:
            return self.max_budget
        return self.levels[self.next_index(history) % self.n_brackets]

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        if self.promotion:
            return Decision.PAUSE if self.pause_at_budget(trial, step) else Decision.CONTINUE
        previous = trial.reports[-2].step if len(trial.reports) > 1 else -math.inf
        bracket = self.bracket_of(trial)
        for level in self.levels[bracket:-1]:
            if previous < level * (1 - 1e-9) <= step:
                scores = self.rung_scores(self.members(history, bracket), level)
                if rank(scores, trial.id) >= math.ceil(len(scores) / self.eta):
                    return Decision.STOP
        return Decision.CONTINUE

    def trial_to_resume(self, history: History) -> Trial | None:
        if not self.promotion:
            return None
        for trial in history.trials:
            # Started below its bracket's lowest rung (another process took its number first):
            # bring it up to where its bracket begins.
            if trial.state is TrialState.PAUSED and (trial.budget or 0) < self.levels[self.bracket_of(trial)] * (1 - 1e-9):
                return trial
        for k in range(len(self.levels) - 2, -1, -1):
            for bracket in range(min(k + 1, self.n_brackets)):
                trial = self._promotable(history, bracket, k)
                if trial is not None:
                    return trial
        return None

    def _promotable(self, history: History, bracket: int, k: int) -> Trial | None:
        level = self.levels[k]
        members = [t for t in self.members(history, bracket) if reached(t, level)]
        quota = len(members) // int(self.eta) if float(self.eta).is_integer() else int(len(members) / self.eta)
        promoted = sum(1 for t in members if t.budget is not None and t.budget > level * (1 + 1e-9))
        if promoted >= quota:
            return None
        scores = self.rung_scores(members, level)
        ranked = sorted(members, key=lambda t: (scores[t.id], t.number))[:quota]
        return next((t for t in ranked if t.state is TrialState.PAUSED and at_level(t.budget, level)), None)

    def retired(self, history: History) -> list[Trial]:
        """Paused trials ranked too low to ever fit in their rung's quota, given the trial limit."""
        if not self.promotion or self.max_trials is None:
            return []
        out = []
        per_bracket = math.ceil(self.max_trials / self.n_brackets)
        for trial in history.trials:
            if trial.state is not TrialState.PAUSED or trial.budget is None:
                continue
            bracket = self.bracket_of(trial)
            k = next((i for i, level in enumerate(self.levels) if at_level(trial.budget, level)), None)
            if k is None:
                continue
            most_at_rung = per_bracket / self.eta ** (k - bracket)
            members = [t for t in self.members(history, bracket) if reached(t, self.levels[k])]
            if rank(self.rung_scores(members, self.levels[k]), trial.id) >= math.floor(most_at_rung / self.eta + 1e-9):
                out.append(trial)
        return out
