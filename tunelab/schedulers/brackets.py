"""Synchronous brackets of successive halving: the shared engine of ``sh``, ``hyperband`` and ``bohb``.

A bracket is ``n`` configurations started at a budget ``r``; when every one of them has finished
that rung, the best ``n/eta`` go on at ``r*eta``, the others are pruned, and so on up to the full
budget. Trials join brackets in the order they were created (bracket 0 takes the first ``n_0``
trials, bracket 1 the next ``n_1``, ...), so a bracket's members, its rungs and its promotions
are all read back from storage. A retry (the re-run of a trial whose process died, or that a stop
cancelled without a checkpoint) takes the place of the trial it repeats, in its bracket: by its
own number it fell into a later bracket, where it could be alone and go to the full budget
unchallenged. While a bracket waits for the last trials of a rung, free workers
start the next bracket's trials rather than sit idle (as HpBandSter does); with a trial limit
known, a bracket that cannot be filled closes its rungs with the trials it has.
"""

from __future__ import annotations

from abc import abstractmethod

import math
from dataclasses import dataclass

from tunelab.history import History
from tunelab.schedulers.rungs import FidelityScheduler, at_level
from tunelab.trial import Decision, Trial, TrialState


@dataclass(frozen=True)
class Bracket:
    n: int  # configurations started
    levels: tuple[float, ...]  # the budgets of its rungs, ascending, the last one the maximum
    sizes: tuple[int, ...]  # trials planned at each rung: floor(n / eta**i), at least one


def make_bracket(n: int, levels: list[float], eta: float) -> Bracket:
    sizes = tuple(max(int(math.floor(n / eta ** i + 1e-9)), 1) for i in range(len(levels)))
    return Bracket(n, tuple(levels), sizes)


class BracketScheduler(FidelityScheduler):
    """Subclasses say which brackets to run, in order (the list is cycled)."""

    brackets: list[Bracket]

    def _configure(self) -> None:
        self.brackets = self.plan_brackets()

    @abstractmethod
    def plan_brackets(self) -> list[Bracket]:
        ...

    # -- which bracket a trial belongs to ---------------------------------------------------------
    def _assign(self, index: int) -> tuple[int, Bracket]:
        """(bracket number, bracket) of the trial created ``index``-th."""
        cycle = sum(b.n for b in self.brackets)
        number, start = len(self.brackets) * (index // cycle), cycle * (index // cycle)
        for bracket in self.brackets:
            if index < start + bracket.n:
                return number, bracket
            number, start = number + 1, start + bracket.n
        raise AssertionError("unreachable: the cycle covers every index")

    def _groups(self, history: History) -> list[tuple[Bracket, list[Trial]]]:
        """Each bracket with its members, computed once per decision. A trial repeated by a
        retry is no member: its retry stands in its place."""
        cached = getattr(self, "_cached", None)
        if cached is not None and cached[0] is history:
            return cached[1]
        places, _ = self._places(history)
        repeated = self._repeated(history)
        groups: dict[int, tuple[Bracket, list[Trial]]] = {}
        for trial in history.trials:
            if trial.number not in repeated:
                number, bracket = self._assign(places[trial.id])
                groups.setdefault(number, (bracket, []))[1].append(trial)
        out = [groups[k] for k in sorted(groups)]
        self._cached = (history, out)
        return out

    def _bracket_of(self, trial: Trial, history: History) -> Bracket:
        return self._assign(self._places(history)[0].get(trial.id, trial.number))[1]

    # -- rung bookkeeping -------------------------------------------------------------------------
    def _entrants(self, members: list[Trial], level: float) -> list[Trial]:
        """The trials that run at the rung of ``level`` (promoted to it, or started there)."""
        return [t for t in members if t.budget is not None and t.budget >= level * (1 - 1e-9)]

    def _winners(self, bracket: Bracket, members: list[Trial], scores: dict[int, float], rung: int) -> list[Trial]:
        """The trials of a closed ``rung`` that go on to the next one, best first: the planned
        number, fewer if the rung had fewer trials (a bracket cut short by the trial limit). A
        trial that ended at the rung (it failed after reporting there, or it was pruned when an
        earlier run's trial limit closed the bracket, which a larger limit has reopened) cannot
        go on, and one that failed after it went on (it crashed or diverged on the way up) tells
        the rung above nothing: the next best goes instead, as in ASHA."""
        entrants = members if rung == 0 else self._entrants(members, bracket.levels[rung])
        quota = min(bracket.sizes[rung + 1], max(int(math.floor(len(entrants) / self.eta + 1e-9)), 1))
        following = bracket.levels[rung + 1] * (1 - 1e-9)
        ranked = sorted((t for t in entrants if math.isfinite(scores.get(t.id, math.inf))
                         and not (t.state.finished and (t.budget or 0) < following)
                         and t.state is not TrialState.FAILED),
                        key=lambda t: (scores[t.id], t.number))
        return ranked[:quota]

    def _decided(self, history: History):
        """(bracket, members, rung, winners, table) for every closed rung below the top, lowest first,
        in the brackets that still hold a paused trial (the others have nothing left to decide)."""
        total = self._places(history)[1]  # retries take their original's place, as they spend no trial
        for bracket, members in self._groups(history):
            if not any(t.state is TrialState.PAUSED for t in members):
                continue
            full = len(members) >= bracket.n or (self.max_trials is not None and total >= self.max_trials)
            table = self.table(members, list(bracket.levels))
            if not full or not all(t.id in table[0] or t.state.finished for t in members):
                continue
            for rung in range(len(bracket.levels) - 1):
                winners = self._winners(bracket, members, table[rung], rung)
                yield bracket, members, rung, winners, table
                level = bracket.levels[rung + 1]
                promoted = all(t.budget is not None and t.budget >= level * (1 - 1e-9) for t in winners)
                if not promoted or not all(t.id in table[rung + 1] or t.state.finished
                                           for t in self._entrants(members, level)):
                    break

    # -- the protocol ---------------------------------------------------------------------------
    def budget_for(self, trial: Trial | None, history: History) -> float | None:
        if trial is None:
            return self._assign(self._next_place(history))[1].levels[0]
        levels = self._bracket_of(trial, history).levels
        return next((lv for lv in levels if lv > (trial.budget or 0) * (1 + 1e-9)), levels[-1])

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        return Decision.PAUSE if self.pause_at_budget(trial, step) else Decision.CONTINUE

    def trial_to_resume(self, history: History) -> Trial | None:
        for bracket, members in self._groups(history):
            for trial in members:
                # Started below its bracket's first rung (another process created the trial whose
                # budget it was given): its rung waits for it there, so bring it up first.
                if trial.state is TrialState.PAUSED and (trial.budget or 0) < bracket.levels[0] * (1 - 1e-9):
                    return trial
        for bracket, _, rung, winners, _ in self._decided(history):
            for trial in winners:
                if trial.state is TrialState.PAUSED and at_level(trial.budget, bracket.levels[rung]):
                    return trial
        return None

    def retired(self, history: History) -> list[Trial]:
        """The paused trials of closed rungs that do not go on; but for each winner not yet
        reported at the rung above, the best of the others stays as a standby: if that run
        fails on its way up, the standby goes in its place (``_winners``)."""
        out = []
        for bracket, members, rung, winners, table in self._decided(history):
            chosen = {t.id for t in winners}
            flying = sum(1 for t in winners if t.id not in table[rung + 1] and not t.state.finished)
            others = sorted((t for t in members if t.state is TrialState.PAUSED
                             and at_level(t.budget, bracket.levels[rung]) and t.id not in chosen),
                            key=lambda t: (table[rung].get(t.id, math.inf), t.number))
            out += others[flying:]
        return out
