"""Hyperband (Li et al. 2018): successive halving in brackets that trade many cheap tries for few
expensive ones, so that the choice of ``n`` and ``m`` stops being a guess.

With ``s_max + 1`` rungs, bracket ``s`` (from ``s_max`` down to 0) starts
``ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at ``max / eta**s``. Synchronous by
default: each bracket halves only when a rung is complete (the engine in ``brackets.py``).
``asynchronous=True`` is the ASHA version: brackets whose lowest rung rises, no waiting.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.errors import ConfigError, check_count
from tunelab.history import History
from tunelab.schedulers.asha import ASHAScheduler
from tunelab.schedulers.brackets import Bracket, BracketScheduler, make_bracket
from tunelab.trial import Decision, Trial


class HyperbandScheduler(BracketScheduler):
    name = "hyperband"

    def __init__(self, metric: str, mode: str, min_budget: float | None = None, max_budget: float | None = None,
                 eta: float = 3, asynchronous: bool = False, forecast: bool = False, max_paused: int | None = None):
        if max_paused is not None and not asynchronous:
            raise ConfigError(f"{self.name}: max_paused needs asynchronous=True (a synchronous bracket pauses at "
                              f"most its own trials, all of them resumed or pruned when its rung fills); got {max_paused!r}")
        check_count(f"{self.name}: max_paused", max_paused)  # here, or the error names the ASHA it is handed to
        self.asynchronous, self.max_paused = bool(asynchronous), max_paused
        self._async: ASHAScheduler | None = None
        super().__init__(metric, mode, min_budget, max_budget, eta, forecast)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "asynchronous": self.asynchronous, "max_paused": self.max_paused}

    def plan_brackets(self) -> list[Bracket]:
        s_max = len(self.levels) - 1
        return [make_bracket(int(math.ceil((s_max + 1) / (s + 1) * self.eta ** s - 1e-9)), self.levels[s_max - s:], self.eta)
                for s in range(s_max, -1, -1)]

    def _configure(self) -> None:
        super()._configure()
        if self.asynchronous:
            self._async = ASHAScheduler(self.metric, self.mode, self.min_budget, self.max_budget, self.eta,
                                        promotion=True, brackets=len(self.levels), forecast=self.forecast,
                                        max_paused=self.max_paused)
            self._async.name = self.name  # its warnings speak of the scheduler the user named

    # -- the asynchronous variant hands every decision to ASHA with several brackets -------------
    def plan(self, max_trials: int | None) -> None:
        super().plan(max_trials)
        if self._async is not None:
            self._async.plan(max_trials)

    def budget_for(self, trial: Trial | None, history: History) -> float | None:
        if self._async is not None:
            return self._async.budget_for(trial, history)
        return super().budget_for(trial, history)

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        if self._async is not None:
            return self._async.on_report(trial, step, metrics, history)
        return super().on_report(trial, step, metrics, history)

    def trial_to_resume(self, history: History) -> Trial | None:
        if self._async is not None:
            return self._async.trial_to_resume(history)
        return super().trial_to_resume(history)

    def start_attrs(self) -> dict[str, Any]:
        return self._async.start_attrs() if self._async is not None else super().start_attrs()

    def retired(self, history: History) -> list[Trial]:
        if self._async is not None:
            return self._async.retired(history)
        return super().retired(history)
