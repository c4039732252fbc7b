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
  (``plan``), a paused trial that can no longer be promoted is retired and its checkpoint
  deleted, a ladder too tall for the limit loses its lowest rungs (``_trim``), and a rung that
  no more trials can reach promotes its best even when it holds fewer than ``eta`` (failed
  trials never reach a rung), so a study that ends has a full run whenever a trial got to the
  lowest rung. Without a limit no paused trial is provably dead; at most ``max_paused`` keep
  their checkpoints (MAX_PAUSED by default), the lowest rung first and within a rung the lowest
  standing.

``max_rungs`` keeps only the top rungs of the ladder (``max_rungs=4``: 3, 9, 27 and 81 of 81
epochs), so that no decision rests on a sliver of the budget. ``brackets > 1`` is asynchronous
Hyperband: trials are spread over brackets whose lowest rung is higher and higher, hedging
against a first rung that misleads.

``adaptive=True`` checks instead of hedging: once enough of a rung's best trials have gone on to
the next rung, it compares their order there with their order at the rung (``rung_agreement``).
Where the order does not hold, the rung misleads: new trials start above it (and, entering
the rungs above as if promoted, they use up its promotion quota, so it promotes no more). The check is made again as evidence comes in (trials that start higher still report on
their way past the lower rungs when the fidelity resumes), so a rung wrongly distrusted early is
trusted again. Where cheap rungs tell the truth this costs nothing; where curves cross it turns
into a search at the budgets that rank runs correctly, instead of a search that keeps pruning
the runs that would have ended best. Once every rung below the top misleads, the trials paused
at the rung just below it are finished, best first, before new trials start (on
``sgd-breast-cancer``, whose best runs start slowest, this took the default's median compute to
target from 17.5 s to 12.2 s over seeds 0-39 and left the other tasks' medians as they were).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from tunelab.errors import ConfigError, SetupWarning, check_count, warn_caller
from tunelab.history import History
from tunelab.schedulers.rungs import FidelityScheduler, at_level, misleads, rank, rung_agreement
from tunelab.trial import Decision, Trial, TrialState


#: A trial's system attribute: the lowest rung of the ladder when it started. A trial that started
#: above a rung the ladder did not have then (a study continued with a larger trial limit, whose
#: ladder grew a lower rung) was never promoted from it and does not use up its quota.
LOWEST_RUNG = "lowest_rung"
#: Without a trial limit, at most this many paused trials keep their checkpoints (``max_paused``
#: sets it, with or without a limit): disk stays bounded in a run that ends on a timeout.
MAX_PAUSED = 100


class ASHAScheduler(FidelityScheduler):
    name = "asha"

    def __init__(self, metric: str, mode: str, min_budget: float | None = None, max_budget: float | None = None,
                 eta: float = 3, promotion: bool = True, brackets: int = 1, max_rungs: int | None = None,
                 adaptive: bool = False, forecast: bool = False, max_paused: int | None = None):
        check_count(f"{self.name}: brackets", brackets, optional=False)
        for what, value in (("promotion", promotion), ("adaptive", adaptive)):
            if not isinstance(value, bool):
                raise ConfigError(f"{self.name}: {what} must be True or False; got {value!r}")
        for what, value in (("max_rungs", max_rungs), ("max_paused", max_paused)):
            check_count(f"{self.name}: {what}", value)
        if max_paused is not None and not promotion:
            raise ConfigError(f"{self.name}: max_paused caps the trials paused at rungs, and with promotion=False "
                              "none pause; leave it out or set promotion=True")
        if adaptive and (brackets != 1 or not promotion):
            raise ConfigError(f"{self.name}: adaptive=True needs promotion=True and brackets=1 "
                              f"(it moves the first rung itself); got promotion={promotion!r}, brackets={brackets!r}")
        self.promotion, self.n_brackets, self.max_rungs = bool(promotion), brackets, max_rungs
        self._brackets_asked = brackets  # n_brackets shrinks with a trimmed ladder
        self.adaptive, self.max_paused = bool(adaptive), max_paused
        self._ladder: list[float] = []  # every rung the budget range allows, before trimming
        super().__init__(metric, mode, min_budget, max_budget, eta, forecast)

    def _configure(self) -> None:
        self._ladder = list(self.levels)
        if self._brackets_asked > len(self._ladder):
            warn_caller(f"{self.name}: brackets={self._brackets_asked}, and the fidelity's range holds "
                        f"{len(self._ladder)} rungs ({', '.join(f'{v:g}' for v in self._ladder)}): a bracket starts "
                        f"at each rung, so {len(self._ladder)} brackets are used", SetupWarning)
        self._trim()

    def _trim(self) -> None:
        """Keep the top rungs that ``max_rungs`` and the trial limit allow. The lowest rungs go:
        a rung at 1/81 of the budget decides on too little evidence, and in promotion mode a run
        of the lowest bracket reaches the top rung only after ``eta**(rungs - 1)`` of the
        bracket's trials have entered its lowest rung, so a study with fewer trials per bracket
        than that would end with no full run from it (with as few trials as brackets, none at
        all: the full-budget bracket comes last)."""
        allowed = keep = len(self._ladder) if self.max_rungs is None else min(self.max_rungs, len(self._ladder))
        if self.promotion and self.max_trials is not None:
            while keep > 1 and self.max_trials / min(self._brackets_asked, keep) < self.eta ** (keep - 1) - 1e-9:
                keep -= 1
        if keep == 1 < allowed and getattr(self, "_warned_limit", None) != self.max_trials:
            self._warned_limit = self.max_trials
            needed = math.ceil(self.eta * min(self._brackets_asked, 2) - 1e-9)
            per = f" of a bracket ({self._brackets_asked} share the trials)" if self._brackets_asked > 1 else ""
            warn_caller(f"{self.name}: {self.max_trials} trials in all are too few for its rungs "
                        f"({', '.join(f'{v:g}' for v in self._ladder[-allowed:])}): a run reaches the rung above "
                        f"only after eta={self.eta:g} trials{per} entered the one below, so every trial "
                        f"runs to the full budget {self._ladder[-1]:g} and nothing is cut short; with n_trials of "
                        f"{needed} or more a rung below it stays", SetupWarning)
        self.levels = self._ladder[-keep:]
        self.min_budget = self.levels[0]
        self.n_brackets = min(self._brackets_asked, len(self.levels))

    def plan(self, max_trials: int | None) -> None:
        super().plan(max_trials)
        if self._ladder:
            self._trim()

    def start_attrs(self) -> dict[str, Any]:
        return {LOWEST_RUNG: self.levels[0]} if self.promotion else {}

    def options(self) -> dict[str, Any]:
        return {**super().options(), "promotion": self.promotion, "brackets": self._brackets_asked,
                "max_rungs": self.max_rungs, "adaptive": self.adaptive, "max_paused": self.max_paused}

    # -- brackets: which rungs a trial is judged at -----------------------------------------------
    def bracket_of(self, trial: Trial, history: History) -> int:
        """Trials take brackets in turn by their place in creation order, a fact storage keeps
        (rule 6); a retry takes its original's place (``_places``), so it starts where that did."""
        if self.n_brackets == 1:
            return 0
        return self._places(history)[0].get(trial.id, trial.number) % self.n_brackets

    def members(self, history: History, bracket: int, reported: bool = True) -> list[Trial]:
        """The bracket's trials (with ``reported``, only those that reported: a rung's candidates).
        A trial repeated by a retry is none: its retry stands in its place."""
        repeated = self._repeated(history)
        return [t for t in history.trials if (t.reports or not reported) and t.number not in repeated
                and self.bracket_of(t, history) == bracket]

    # -- the protocol ---------------------------------------------------------------------------
    @property
    def stops_only(self) -> bool:  # type: ignore[override]
        return not self.promotion

    def budget_for(self, trial: Trial | None, history: History) -> float | None:
        if trial is not None:
            return self.next_level(trial.budget)
        if not self.promotion:
            return self.max_budget
        if self.adaptive:
            return self.levels[self.first_trusted(history)]
        return self.levels[self._next_place(history) % self.n_brackets] if self.n_brackets > 1 else self.levels[0]

    def trusted_budget(self, history: History) -> float:
        return self.levels[self.first_trusted(history)] if self.adaptive else 0.0

    def first_trusted(self, history: History) -> int:
        """The lowest rung above every rung whose best trials lost their order at the next one
        (0 when none has, or when none has been seen enough to tell)."""
        if not self.adaptive:
            return 0
        cached = getattr(self, "_trusted", None)  # asked twice per ask: for the budget and the searcher
        if cached is not None and cached[0] is history:
            return cached[1]
        table = self._table(history, 0)
        first = 0
        for k in range(len(self.levels) - 1):
            if misleads(*rung_agreement(table[k], table[k + 1], self.eta), rung=k):
                first = k + 1
        self._trusted = (history, first)
        return first

    def on_report(self, trial: Trial, step: float, metrics: dict[str, float], history: History) -> Decision:
        if self.promotion:
            return Decision.PAUSE if self.pause_at_budget(trial, step) else Decision.CONTINUE
        previous = trial.reports[-2].step if len(trial.reports) > 1 else -math.inf
        bracket = self.bracket_of(trial, history)
        for level in self.levels[bracket:-1]:
            if previous < level * (1 - 1e-9) <= step:
                scores = self.rung_scores(self.members(history, bracket), level)
                if rank(scores, trial.id) >= math.ceil(len(scores) / self.eta):
                    return Decision.STOP
        return Decision.CONTINUE

    def _table(self, history: History, bracket: int) -> list[dict[int, float]]:
        """The bracket's values at each rung, computed once per decision."""
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] is not history:
            cached = self._cached = (history, {})
        if bracket not in cached[1]:
            cached[1][bracket] = self.table(self.members(history, bracket), self.levels)
        return cached[1][bracket]

    def trial_to_resume(self, history: History) -> Trial | None:
        if not self.promotion:
            return None
        for trial in history.trials:
            # Started below its bracket's lowest rung (another process took its number first):
            # bring it up to where its bracket begins.
            lowest = self.levels[self.bracket_of(trial, history)]
            if trial.state is TrialState.PAUSED and (trial.budget or 0) < lowest * (1 - 1e-9):
                return trial
        by_id = {t.id: t for t in history.trials}
        tables = [self._table(history, b) for b in range(self.n_brackets)]
        for k in range(len(self.levels) - 2, -1, -1):
            for bracket in range(min(k + 1, self.n_brackets)):
                trial = self._promotable(history, bracket, tables[bracket][k], by_id, k)
                if trial is not None:
                    return trial
        return self._screened_to_finish(history, tables[0], by_id)

    def _screened_to_finish(self, history: History, table: list[dict[int, float]],
                            by_id: dict[int, Trial]) -> Trial | None:
        """Adaptive, once only full runs are trusted: the best trial paused at the rung below the
        top, which is finished before any new trial starts. It passed the cheaper rungs and 1/eta
        of its run is paid for; left paused, it would never be promoted (its rung no longer
        decides), and on a task whose best runs are slow starters it is often the one that wins."""
        if not self._finishing(history):
            return None
        level, scores = self.levels[-2], table[-2]
        paused = [i for i in scores if by_id[i].state is TrialState.PAUSED and at_level(by_id[i].budget, level)]
        return by_id[min(paused, key=lambda i: (scores[i], by_id[i].number))] if paused else None

    def _finishing(self, history: History) -> bool:
        return self.adaptive and len(self.levels) > 1 and self.first_trusted(history) == len(self.levels) - 1

    def _promotable(self, history: History, bracket: int, scores: dict[int, float], by_id: dict[int, Trial],
                    k: int) -> Trial | None:
        """The best paused trial of rung ``k`` if the rung's quota ``floor(n/eta)`` has room; a
        rung that no more trials can reach promotes its best even with fewer than ``eta``."""
        level = self.levels[k]
        quota = int(math.floor(len(scores) / self.eta + 1e-9))
        if not quota and scores:
            everyone = self.members(history, bracket, reported=False)
            quota = int(self._may_still_come(everyone, bracket, scores) == 0)
        if _promoted(scores, by_id, level) >= quota:
            return None
        for trial_id in sorted(_standing(scores, by_id), key=lambda i: (scores[i], by_id[i].number))[:quota]:
            trial = by_id[trial_id]
            if trial.state is TrialState.PAUSED and at_level(trial.budget, level):
                return trial
        return None

    def retired(self, history: History) -> list[Trial]:
        """Paused trials whose checkpoints go: those that can no longer be promoted (with a trial
        limit, ``_dead``), then, beyond ``max_paused``, those least likely ever to be (``_unlikely``)."""
        if not self.promotion:
            return []
        paused = [t for t in history.trials if t.state is TrialState.PAUSED and t.budget is not None]
        if not paused:
            return []
        count = len(paused)
        if self._finishing(history):  # the rung below the top is being finished, not ranked
            paused = [t for t in paused if not at_level(t.budget, self.levels[-2])]
        by_id = {t.id: t for t in history.trials}
        dead = self._dead(history, paused, by_id) if self.max_trials is not None else []
        gone = {t.id for t in dead}
        return dead + self._unlikely(history, [t for t in paused if t.id not in gone], count - len(dead), by_id)

    def _dead(self, history: History, paused: list[Trial], by_id: dict[int, Trial]) -> list[Trial]:
        """Paused trials that can no longer be promoted, given the trial limit: even if every
        trial that may still reach their rung (those not started yet, and those running or
        paused below it) did, up to what the rungs below can promote, the rung's quota would not
        take them, or the paused trials ahead of them would use up the promotions it has left
        (at least one: the best of a closed rung goes on).
        So at the end of a study nothing stays paused, and while it runs, the checkpoints kept
        are those of trials that may still be resumed. For each promotion still on its way to the
        rung above (running there, or the paused trial about to go) the best of the others stays
        as a standby: if the promoted run fails, the next best takes its place. (With
        ``adaptive``, the rung below the top keeps its paused trials while more trials may come,
        to be finished once every rung misleads; and trials started above a distrusted rung
        enter the rungs above it beyond what it promotes, so a rung's size is bounded only by the
        trials still to come: bounded by what the rungs below promote, a rung filled that way
        retired its best trial on arrival, and on sgd-digits the default missed the target
        within 1000 trials on 7 of 40 seeds, against 2 now.)"""
        out = []
        for bracket in sorted({self.bracket_of(t, history) for t in paused}):
            share, members = self._share(bracket), self.members(history, bracket, reported=False)
            entry = self.levels[bracket] * (1 + 1e-9)
            direct = sum(1 for t in members if t.system_attrs.get(LOWEST_RUNG, -math.inf) > entry)
            table = self._table(history, bracket)
            for k, level in enumerate(self.levels[:-1]):
                scores = table[k]
                waiting = sorted((t for t in paused if self.bracket_of(t, history) == bracket
                                  and at_level(t.budget, level) and t.id in scores),
                                 key=lambda t: (scores[t.id], t.number))
                if not waiting:
                    continue
                may_still_come = self._may_still_come(members, bracket, scores, {t.id for t in out})
                if self.adaptive and k == len(self.levels) - 2 and may_still_come:
                    continue  # finished, best first, once every rung misleads, which trials to come may show
                # What can enter the rung: what the rungs below can promote, and the trials that
                # started above the bracket's lowest rung (a study continued with a larger limit);
                # with ``adaptive``, any trial still to come may start at this rung
                most = math.inf if self.adaptive else (share - direct) / self.eta ** (k - bracket) + direct
                # at least one: once closed, a rung promotes its best even with fewer than eta trials
                quota = max(math.floor(min(len(scores) + may_still_come, most) / self.eta + 1e-9), 1)
                promoted = _promoted(scores, by_id, level)
                ordered = sorted(scores[i] for i in _standing(scores, by_id))
                dead = [trial for ahead, trial in enumerate(waiting)
                        if bisect.bisect_left(ordered, scores[trial.id]) >= quota or ahead >= quota - promoted]
                # Standbys: a trial promoted (or about to be) that has not reached the rung above may
                # still fail there, and then the next best goes instead; one stays for each.
                flying = sum(1 for i in scores if i not in table[k + 1] and by_id[i].state is TrialState.RUNNING
                             and (by_id[i].budget or 0) > level * (1 + 1e-9))
                out.extend(dead[flying + len(waiting) - len(dead):])
        return out

    def _unlikely(self, history: History, paused: list[Trial], count: int, by_id: dict[int, Trial]) -> list[Trial]:
        """With ``count`` trials paused, more than the cap (``max_paused``, or MAX_PAUSED when the
        study has no trial limit, where no paused trial is ever provably dead): the excess, the
        lowest rung first (the least of their runs is paid for, and the higher rungs hold the
        trials that passed most screening, which adaptive mode finishes once it trusts only full
        runs), and within a rung those that stand lowest (the share of it ranked at or above
        them). A trial below the rung's top ``1/eta`` is promoted only if enough later trials rank
        below it; the lower it stands, the less likely that is, and the less a study that keeps
        improving will ever want it. The trials the rung promotes next (its quota has room for
        them) never go."""
        cap = self.max_paused if self.max_paused is not None or self.max_trials is not None else MAX_PAUSED
        if cap is None or count <= cap:
            return []
        groups: dict[tuple[int, int], list[Trial]] = {}
        for trial in paused:
            bracket = self.bracket_of(trial, history)
            k = next((k for k, level in enumerate(self.levels[:-1]) if at_level(trial.budget, level)), None)
            if k is not None and trial.id in self._table(history, bracket)[k]:  # else: brought up to its rung first
                groups.setdefault((bracket, k), []).append(trial)
        standing = []
        for (bracket, k), waiting in groups.items():
            scores = self._table(history, bracket)[k]
            ordered = sorted(scores[i] for i in _standing(scores, by_id))
            quota = int(math.floor(len(scores) / self.eta + 1e-9))
            next_up = max(quota - _promoted(scores, by_id, self.levels[k]), 0)  # what the rung promotes next
            for place, trial in enumerate(sorted(waiting, key=lambda t: (scores[t.id], t.number))):
                better = bisect.bisect_left(ordered, scores[trial.id])
                if place >= next_up or better >= quota:
                    standing.append((-k, (better + 1) / len(scores), -trial.number, trial))
        standing.sort(key=lambda s: s[:3], reverse=True)
        return [s[3] for s in standing[:count - cap]]

    def _share(self, bracket: int) -> int:
        """How many of the trial limit's trials the bracket gets (trial n joins bracket n % k)."""
        return max(math.ceil((self.max_trials - bracket) / self.n_brackets), 0)

    def _may_still_come(self, members: list[Trial], bracket: int, scores: dict[int, float],
                        retiring: set[int] = frozenset()) -> int | None:
        """How many more of the ``members`` of ``bracket`` may still reach the rung whose values
        are ``scores``: those not created yet and the unfinished ones not there yet, but for those
        ``retiring`` below it (None: no limit)."""
        if self.max_trials is None:
            return None
        return max(self._share(bracket) - len(members), 0) + \
            sum(1 for t in members if not t.state.finished and t.id not in scores and t.id not in retiring)


def _standing(scores: dict[int, float], by_id: dict[int, Trial]) -> list[int]:
    """The rung's trials that may still count for a place in its top ``1/eta``: all but those
    that failed (promoted, they told the rung above nothing, and the next best goes instead)."""
    return [i for i in scores if by_id[i].state is not TrialState.FAILED]


def _promoted(scores: dict[int, float], by_id: dict[int, Trial], level: float) -> int:
    """How many of a rung's trials went on past it: promoted, or (adaptive) started above it
    while the rung was on the ladder; not one that failed on its way up (see ``_standing``)."""
    return sum(1 for i in scores if (by_id[i].budget or 0) > level * (1 + 1e-9)
               and by_id[i].system_attrs.get(LOWEST_RUNG, -math.inf) <= level * (1 + 1e-9)
               and by_id[i].state is not TrialState.FAILED)
