"""What the rung-based schedulers (sh, asha, hyperband, bohb) share: budgets on a geometric
ladder, and a trial's value where it crossed a rung.

Everything is computed from the trials' stored reports and budgets (rule 6): a rung's members
are the trials that reported at or past its level, a promotion is a trial whose budget was raised
past it. Levels are anchored at the maximum (``max / eta**k``) so that the top rung is exactly
the full budget, as in Hyperband.

With ``forecast=True`` a rung ranks its trials not by their value there but by the value their
learning curve, fitted to the reports up to the rung (``curve_models.predict``), is forecast to
reach at the full budget. Where curves cross (a large learning rate leads early and plateaus
high, a small one starts slowly and ends best) the rung's own values prune the runs that would
end best; the forecast sees the slow starter still falling and keeps it. Each trial's forecast
at a rung is made once: the reports below a rung never change. A forecast is believed only as
far as it has come true: the change it predicts is scaled by how much of their forecast change
the trials that went on to the next rung made (``forecast_weight``), so curves the fitted
families cannot follow (noisy ones, ones that stall or rise again) fall back towards ranking by
the rung's own values.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from tunelab.errors import ConfigError, check_number, is_plain_number, warn_caller
from tunelab.fidelity import Fidelity
from tunelab.history import History
from tunelab.schedulers.base import Scheduler
from tunelab.schedulers.curve_models import predict_path
from tunelab.storage.base import RETRY_OF
from tunelab.trial import Trial, TrialState

_EPS = 1e-9


def ladder(min_budget: float, max_budget: float, eta: float, integer: bool = False) -> list[float]:
    """Budgets ``max / eta**k`` down to the last one not below ``min_budget``, ascending."""
    steps = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + _EPS))
    levels = [max_budget / eta ** (steps - i) for i in range(steps + 1)]
    if integer:  # whole numbers; a small eta rounds neighbours to the same one, kept once
        levels = sorted({float(max(round(level), 1)) for level in levels})
    return levels


def reached(trial: Trial, level: float) -> bool:
    return any(r.step >= level * (1 - _EPS) for r in trial.reports)


def at_level(budget: float | None, level: float) -> bool:
    return budget is not None and abs(budget - level) <= _EPS * max(1.0, abs(level))


class FidelityScheduler(Scheduler):
    """A scheduler that needs a fidelity range: from its options, else from the study's fidelity."""

    def __init__(self, metric: str, mode: str, min_budget: float | None = None, max_budget: float | None = None,
                 eta: float = 3, forecast: bool = False):
        super().__init__(metric, mode)
        check_number(f"{self.name}: eta", eta, "a finite number > 1", lambda v: 1 < v < math.inf)
        if not isinstance(forecast, bool):
            raise ConfigError(f"{self.name}: forecast must be True or False; got {forecast!r}")
        self.eta, self.forecast = eta, forecast
        self._min, self._max = min_budget, max_budget
        self.levels: list[float] = []
        self._memo: dict = {}  # (trial id, levels) -> (reports seen, the trial's rung values); forecasts
        if min_budget is not None and max_budget is not None:
            self._set_range(min_budget, max_budget)

    def _set_range(self, low: float, high: float, integer: bool | None = None) -> None:
        try:
            range_ = Fidelity("budget", low, high)
        except ConfigError:
            raise ConfigError(f"{self.name}: needs numbers 0 < min_budget < max_budget; got min_budget={low!r}, "
                              f"max_budget={high!r}") from None
        self.min_budget, self.max_budget = float(low), float(high)
        self.levels = ladder(self.min_budget, self.max_budget, self.eta, range_.integer if integer is None else integer)
        if len(self.levels) == 1:
            warn_caller(f"{self.name}: with eta={self.eta:g}, the budgets {self.min_budget:g}..{self.max_budget:g} "
                        f"leave one rung, the full budget: every trial runs to {self.max_budget:g} and nothing is "
                        f"cut short; lower eta (at most {self.max_budget / self.min_budget:g}) or min_budget")
        self._configure()

    def _configure(self) -> None:
        """Derive what depends on the levels (brackets, sizes); subclasses override."""

    def bind(self, fidelity: Fidelity | None) -> None:
        super().bind(fidelity)
        if fidelity is None and not self.levels:
            raise ConfigError(f"scheduler {self.name!r} needs a fidelity, e.g. tl.tune(..., "
                              "fidelity=tl.fidelity('epochs', min=1, max=81, resumable=True)), "
                              "or min_budget and max_budget in scheduler_options")
        if fidelity is not None:
            low = self._min if self._min is not None else fidelity.min
            high = self._max if self._max is not None else fidelity.max
            for what, value in (("min_budget", self._min), ("max_budget", self._max)):
                if value is not None and not (is_plain_number(value) and fidelity.min <= value <= fidelity.max):
                    raise ConfigError(f"{self.name}: {what} must lie in the fidelity's range [{fidelity.min:g}, "
                                      f"{fidelity.max:g}] ({fidelity.name}); got {value!r}")
            self._set_range(low, high, fidelity.integer and float(low).is_integer())

    def options(self) -> dict[str, Any]:
        return {"min_budget": self._min, "max_budget": self._max, "eta": self.eta, "forecast": self.forecast}

    # -- helpers shared by the rung schedulers ---------------------------------------------------
    def rung_scores(self, trials: list[Trial], level: float) -> dict[int, float]:
        """Oriented (lower is better) values at ``level`` of the trials that reached it (their
        forecast final values with ``forecast``)."""
        index = next((k for k, known in enumerate(self.levels) if at_level(level, known)), None)
        if index is None:
            return self.table(trials, [level])[0]
        return self.table(trials, self.levels)[index]  # the whole ladder: its rungs calibrate the forecast

    def table(self, trials: list[Trial], levels: list[float]) -> list[dict[int, float]]:
        """``rung_table`` of ``trials`` at ``levels``, oriented and forecast as configured."""
        sign = -1.0 if self.mode == "max" else 1.0
        return rung_table(trials, levels, self.metric, sign, self._memo, self.max_budget if self.forecast else None)

    def pause_at_budget(self, trial: Trial, step: float) -> bool:
        """A trial that reached its budget below the top rung waits there for a promotion."""
        budget = trial.budget
        return budget is not None and step >= budget * (1 - _EPS) and budget < self.max_budget * (1 - _EPS)

    def next_level(self, budget: float | None) -> float:
        for level in self.levels:
            if budget is None or level > budget * (1 + _EPS):
                return level
        return self.max_budget

    # -- places: where a trial stands in creation order, a retry in its original's -------------
    def _places(self, history: History) -> tuple[dict[int, int], int]:
        """(trial id -> its place in creation order, places taken). A retry (the re-run of a trial
        whose process died, or that a stop cancelled without a checkpoint) takes the place of the
        trial it repeats: it spends no trial of the limit, and by its own number it would fall
        into another bracket, starting at another rung than the run it repeats. Otherwise a
        trial's place counts the trials before it that were no retry. Computed once per decision
        (several questions are asked of the same history)."""
        return self._placing(history)[0]

    def _repeated(self, history: History) -> set[int]:
        """The numbers of the trials a retry repeats: no rung's members, their retry stands in
        their place (counted twice, a configuration would fill two places of its rung)."""
        return self._placing(history)[1]

    def _placing(self, history: History) -> tuple[tuple[dict[int, int], int], set[int]]:
        cached = getattr(self, "_cached_places", None)
        if cached is not None and cached[0] is history:
            return cached[1]
        place_of_number: dict[int, int] = {}
        places: dict[int, int] = {}
        repeated: set[int] = set()
        taken = 0
        for trial in sorted(history.trials, key=lambda t: t.number):
            original = trial.system_attrs.get(RETRY_OF)
            if original in place_of_number:
                repeated.add(original)
            place = place_of_number.get(original, taken)
            taken += place == taken
            place_of_number[trial.number] = places[trial.id] = place
        out = ((places, taken), repeated)
        self._cached_places = (history, out)
        return out

    def _next_place(self, history: History) -> int:
        """The place of the trial about to start: the queued one storage hands out next, the
        lowest numbered (a retry's place is its original's, though it may wait behind trials
        queued before it), else the next free one."""
        places, taken = self._places(history)
        waiting = [t for t in history.trials if t.state is TrialState.WAITING]
        return places[min(waiting, key=lambda t: t.number).id] if waiting else taken


def rung_table(trials: list[Trial], levels: list[float], metric: str, sign: float,
               memo: dict | None = None, forecast_to: float | None = None) -> list[dict[int, float]]:
    """For each level, the oriented values (lower is better) of the trials that reached it; with
    ``forecast_to``, below that level, the value each trial's curve is forecast to reach there,
    calibrated on the trials that went on (``forecast_weight``).

    One pass over each trial's reports; with ``memo``, a trial's row is computed again only when
    it has new reports (reports are only ever appended), so a decision stays cheap in a study of
    thousands of reports and hundreds of paused trials."""
    table: list[dict[int, float]] = [{} for _ in levels]
    key_levels = (tuple(levels), forecast_to)
    rows = []
    for trial in trials:
        n_reports = len(trial.reports)
        memo_key = (trial.id, key_levels)
        seen = memo.get(memo_key) if memo is not None else None
        if seen is not None and seen[0] == n_reports:
            row = seen[1]
        else:
            row = [(k, value, *_forecast(trial, levels, k, value, metric, sign, forecast_to, memo))
                   for k, value in _row(trial, levels, metric, sign)]
            if memo is not None:
                memo[memo_key] = (n_reports, row)
        rows.append((trial.id, row))
    weight = forecast_weight(rows) if forecast_to is not None else 0.0
    for trial_id, row in rows:
        for k, value, _, to_final in row:
            table[k][trial_id] = value + weight * to_final
    return table


#: A forecast needs this many reports up to the rung (the three-parameter curve families need
#: four points to be fitted at all); with fewer, the rung's own value stands.
FORECAST_POINTS = 4
#: How firmly the forecast is believed before the study has checked it: as if this many trials
#: had gone on to the next rung and improved exactly as forecast.
FORECAST_PRIOR_PAIRS = 6


def _forecast(trial: Trial, levels: list[float], k: int, value: float, metric: str, sign: float,
              final: float | None, memo: dict | None) -> tuple[float, float]:
    """(change to the next level, change to ``final``) that ``trial``'s curve up to ``levels[k]``
    is forecast to make, oriented; (nan, 0) when there is nothing to forecast: no ``final``, the
    rung is the final one, or no curve could be fitted."""
    level = levels[k]
    if final is None or level >= final * (1 - _EPS) or not math.isfinite(value):
        return math.nan, 0.0
    following = min(levels[k + 1], final) if k + 1 < len(levels) else final
    key = ("forecast", trial.id, level, following, final)
    if memo is not None and key in memo:
        return memo[key]
    points = []
    for report in trial.reports:  # up to the report that crossed the level, whose value it is
        if math.isfinite(report.metrics.get(metric, math.nan)):
            points.append((report.step, sign * report.metrics[metric]))
        if report.step >= level * (1 - _EPS):
            break
    path = predict_path(*zip(*points), at=[following, final]) if len(points) >= FORECAST_POINTS else None
    changes = (math.nan, 0.0) if path is None else (path[0].mean - value, path[1].mean - value)
    if memo is not None:
        memo[key] = changes
    return changes


def forecast_weight(rows: list[tuple[int, list[tuple[int, float, float, float]]]]) -> float:
    """How much of a forecast change to believe, from the trials that went on: the slope, through
    the origin, of the change each made from a rung to the next against the change forecast for
    it, shrunk towards 1 by FORECAST_PRIOR_PAIRS pseudo-trials, and kept in [0, 1].

    A ranking by forecast picks the trials forecast to improve most, and on noisy curves those
    are the ones whose noise the fit extrapolated: a winner's curse. Where curves follow the
    fitted families (``powerlaw``, ``crossing`` in ``tunelab bench-mf``) the weight stays at 1;
    on the recorded tables it falls to 0.6-0.75 in a run (sgd-digits, mlp-digits), on
    sgd-breast-cancer to between 0 and 0.5, and a curve that stalls right after the rung takes it
    to 0: the rung ranks by its own values again. The prior keeps the first few trials that go on
    from swinging it."""
    forecast, actual = [], []
    for _, row in rows:
        by_rung = {k: (value, to_next) for k, value, to_next, _ in row}
        for k, (value, to_next) in by_rung.items():
            if k + 1 in by_rung and math.isfinite(to_next) and math.isfinite(by_rung[k + 1][0]):
                forecast.append(to_next)
                actual.append(by_rung[k + 1][0] - value)
    if not forecast:
        return 1.0
    f, a = np.asarray(forecast), np.asarray(actual)
    prior = FORECAST_PRIOR_PAIRS * float(np.mean(f * f))
    if f @ f + prior <= 0:
        return 1.0
    return float(np.clip((f @ a + prior) / (f @ f + prior), 0.0, 1.0))


def _row(trial: Trial, levels: list[float], metric: str, sign: float) -> list[tuple[int, float]]:
    row, k = [], 0
    for report in trial.reports:
        while k < len(levels) and report.step >= levels[k] * (1 - _EPS):
            value = report.metrics.get(metric)
            row.append((k, sign * value if value is not None and math.isfinite(value) else math.inf))
            k += 1
        if k == len(levels):
            break
    return row


#: A rung misleads when the order of its best trials agrees with the next rung's less than
#: TRUST_TAU (Kendall's tau), by more than one standard error and on at least TRUST_PAIRS trials
#: that went on. On curves whose order holds (a power law) the best third of a rung keeps its
#: order at the next with tau about 0.8; where curves cross it drops to between -0.3 and 0.5.
#: A rung above the first is judged on TRUST_PAIRS_ABOVE: its trials are the best of the rung
#: below, so their values lie closer together and their order is noisier even where it holds
#: (sgd-digits: tau -0.8 to -0.6 between 9 and 27 epochs on 3 to 6 trials, while 27 epochs rank
#: the final best better than 9 do).
TRUST_PAIRS = 6
TRUST_PAIRS_ABOVE = 10
TRUST_TAU = 0.5


def misleads(tau: float, pairs: int, rung: int = 0) -> bool:
    """Whether ``pairs`` trials whose order agreed by ``tau`` between rung ``rung`` (0: the
    lowest) and the next show, beyond one standard error of Kendall's tau (its spread under
    independence), that the rung's order does not hold."""
    if pairs < (TRUST_PAIRS if rung == 0 else TRUST_PAIRS_ABOVE) or not math.isfinite(tau):
        return False
    spread = math.sqrt(2 * (2 * pairs + 5) / (9 * pairs * (pairs - 1)))
    return tau + spread < TRUST_TAU


def rung_agreement(scores: dict[int, float], following: dict[int, float], eta: float) -> tuple[float, int]:
    """(Kendall's tau, pairs): how well the order of a rung's best ``1/eta`` (the trials it
    would promote) carries over to the next rung, over those of them that got there.

    Only the best matter: a rung that tells good from hopeless but shuffles the good ones still
    picks the wrong winners, and over *all* trials adjacent rungs look alike even where the
    final order is another one entirely."""
    best = sorted(scores, key=scores.get)[:int(math.ceil(len(scores) / eta))]
    pairs = [(scores[i], following[i]) for i in best
             if i in following and math.isfinite(scores[i]) and math.isfinite(following[i])]
    if len(pairs) < 3:
        return math.nan, len(pairs)
    return _kendall_tau(tuple(sorted(pairs))), len(pairs)


@lru_cache(maxsize=256)
def _kendall_tau(pairs: tuple[tuple[float, float], ...]) -> float:
    """Kendall's tau of the pairs, remembered: asked at every decision, it is computed again only
    when a rung's best or their values at the next rung changed (scipy's call costs about as
    much as the rest of a decision)."""
    from scipy.stats import kendalltau
    tau = kendalltau(*zip(*pairs)).statistic
    return float(tau) if math.isfinite(tau) else 0.0


def rank(scores: dict[int, float], trial_id: int) -> int:
    """How many trials at the rung are strictly better than this one."""
    mine = scores[trial_id]
    return sum(1 for other, s in scores.items() if other != trial_id and s < mine)
