"""Is a result a property of the configuration or of the random seed?

:func:`seed_check` re-runs one configuration with k seeds and compares the spread of the metric
with the best configuration's lead over the runner-up: when the seed moves the metric as much,
which configuration is best is noise. Its first seed is the trial's own, so it also checks that
the objective repeats its recorded value from its seed.
The course's advice then: remove the instability, and failing that, average several models —
:func:`ensemble` averages the predictions the k runs returned.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tunelab.analysis.rerun import Rerun, check_named_metric, rerun
from tunelab.analysis.summary import top_trials
from tunelab.errors import ConfigError
from tunelab.space import config_key
from tunelab.tracking.seeds import derive_seed


@dataclass
class SeedCheck:
    config: dict[str, Any]
    metric: str
    seeds: list[int]
    values: list[float]
    runs: list[Rerun] = field(repr=False, default_factory=list)
    top_gap: float | None = None  # the gap between the study's best configuration and the runner-up
    recorded: float | None = None  # the value on record for the first seed (the trial's own)
    #: Why there is no ``top_gap``, and what would give one: the verdict says it rather than end
    #: without one (a multi-fidelity study whose scheduler let one trial finish has no runner-up).
    no_gap: str = "no ranking of configurations (ranked_values) was given to take a lead from"

    mean = property(lambda self: statistics.fmean(self.values))
    std = property(lambda self: statistics.stdev(self.values) if len(self.values) > 1 else 0.0)
    spread = property(lambda self: max(self.values) - min(self.values))

    @property
    def unstable(self) -> bool:
        """True when the seed moves the result (std > 0) at least as much as the best
        configuration leads the runner-up by: then which one is best is the seed's doing. A result
        the seed does not move is stable even when the top configurations tie (a gap of 0:
        accuracy on a small validation set)."""
        return self.top_gap is not None and self.std > 0 and self.std >= self.top_gap

    @property
    def stable(self) -> bool | None:
        """The verdict: True when the seed does not move the result or moves it less than the best
        configuration's lead, False when :attr:`unstable`, None when the seed moves it and there is
        no lead to weigh that against (``no_gap`` says why)."""
        if self.std == 0:
            return True
        return None if self.top_gap is None else not self.unstable

    @property
    def repeats(self) -> bool | None:
        """Whether the trial's own seed gave the value on record again (None: nothing to compare)."""
        return None if self.recorded is None or not self.values else self.values[0] == self.recorded

    def verdict(self, edited: str | None = None) -> str:
        """What the numbers say; ``edited``: the objective's file, where it changed since the
        trial ran (then the likely cause of a re-run that does not give the record back: advice
        to seed the generators would send the user after the wrong fault)."""
        summary = (f"{self.metric}: mean {self.mean:.6g}, std {self.std:.3g}, range {min(self.values):.6g} .. "
                   f"{max(self.values):.6g} over {len(self.values)} seeds")
        if self.repeats is False:
            seeding = ("the objective does not follow its seed; seed every random number generator it uses from "
                       "trial.seed (tl.seed_everything(trial.seed))")
            cause = seeding if edited is None else (
                f"the objective's file {edited} changed since the study ran, which is the likely cause: the re-runs "
                f"ran the code as it is now. If the edit cannot change the result, {seeding}")
            summary += (f"\nNOT REPEATABLE: the trial's own seed gave {self.values[0]:.6g}, the record says "
                        f"{self.recorded:.6g}: {cause}")
        if self.top_gap is None:
            if self.stable:
                return summary + f"\nstable: the seed does not move {self.metric} at all"
            return (summary + f"\nno verdict: the seed moves {self.metric} (std {self.std:.3g}), and whether that "
                    f"matters depends on how far the best configuration leads the next; {self.no_gap}")
        if self.unstable:
            return (summary + f"\nUNSTABLE: the seed moves {self.metric} (std {self.std:.3g}) as much as the best "
                    f"configuration leads the next by ({self.top_gap:.3g}), so their order is not to be trusted. "
                    "Remove the randomness (data order, initialisation), compare configurations over several "
                    "seeds, or ensemble the k models: tunelab.analysis.ensemble(check.runs).")
        return summary + (f"\nstable: the seed's effect is small next to the best configuration's lead over the "
                          f"next ({self.top_gap:.3g})")

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "metric": self.metric, "seeds": self.seeds, "values": self.values,
                "mean": self.mean, "std": self.std, "spread": self.spread, "top_gap": self.top_gap,
                "unstable": self.unstable, "stable": self.stable,
                "no_verdict": self.no_gap if self.stable is None else None, "recorded": self.recorded,
                "repeats": self.repeats}


def check_seeds(seeds: int, root: int, first: int | None = None) -> list[int]:
    """k seeds: the trial's own first (so one run repeats it), then seeds derived from the study's."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise ConfigError(f"seeds must be an integer >= 2 (a spread needs two runs); got {seeds!r}")
    out = [] if first is None else [int(first)]
    i = 0
    while len(out) < seeds:
        candidate = derive_seed(root, "seed-check", i)
        i += 1
        if candidate not in out:
            out.append(candidate)
    return out


def top_gap(values: Sequence[float]) -> float | None:
    """How far the best value leads the runner-up (values sorted best first): the choice a
    study makes. (The median gap among the top five was swayed by a distant fifth: a lead of
    0.0003 under a seed's std of 0.02 passed as stable.)"""
    best = list(values)[:2]
    return None if len(best) < 2 else float(abs(best[0] - best[1]))


def ranked_configurations(study: Any, metric: str | None = None, k: int = 5) -> list[float]:
    """The best value of each of the ``k`` best distinct configurations of ``study`` on
    ``metric`` (default: its first), best first: the ranking :func:`seed_check` takes the lead
    from. A configuration tried twice (a searcher repeating a finite space, a baseline enqueued
    again) is one configuration: its second value is a second seed, and a "lead" of its best run
    over it measured the seed's own noise as if it were the lead of one configuration over another."""
    metric = metric or study.metric
    seen: set[str] = set()
    ranked: list[float] = []
    for trial in top_trials(study, k=len(study.trials), metric=metric):
        value = trial.value if metric == study.metric else (trial.metrics or {}).get(metric)
        key = config_key(trial.config)
        if value is None or not math.isfinite(value) or key in seen:
            continue
        seen.add(key)
        ranked.append(float(value))
        if len(ranked) >= k:
            break
    return ranked


def seed_check(objective: Callable, config: Mapping[str, Any], seeds: int = 5, *, metric: str | None = None,
               root_seed: int = 0, first_seed: int | None = None, recorded: float | None = None,
               ranked_values: Sequence[float] | None = None, budget: float | None = None) -> SeedCheck:
    """Run ``config`` with ``seeds`` seeds (to ``budget``: ``trial.budget`` of a multi-fidelity
    objective); ``metric`` names the value to read when the objective returns a dict;
    ``ranked_values`` (the study's values, best first, one per configuration:
    :func:`ranked_configurations`) gives the best configuration's lead that the
    spread is compared with; ``recorded`` (the trial's value, run with ``first_seed``) is checked
    to come back."""
    chosen, name = check_seeds(seeds, root_seed, first_seed), metric or "value"
    runs = []
    for i, s in enumerate(chosen):
        runs.append(rerun(objective, config, s, [name], study="seed-check", number=i, budget=budget))
        check_named_metric(runs[-1], metric is not None)
    metric = name
    failed = [r for r in runs if r.error is not None]
    if failed:
        raise ConfigError(f"{len(failed)} of {len(runs)} runs failed; first error (seed {failed[0].seed}): "
                          f"{failed[0].error}")
    values = [r.value(metric) for r in runs]
    gap = top_gap(ranked_values) if ranked_values is not None else None
    check = SeedCheck(dict(config), metric, chosen, values, runs, gap, recorded if first_seed is not None else None)
    if ranked_values is not None and gap is None:
        check.no_gap = (f"the ranking holds {len(ranked_values)} value(s), and a lead needs two completed "
                        "configurations")
    return check


def ensemble(runs: Sequence[Rerun | Mapping[str, Any] | Any], key: str = "predictions") -> np.ndarray:
    """Average the predictions of several runs (the raw results of :func:`seed_check`'s runs, or
    dicts/arrays): the mean of k models whose errors are independent has about 1/k their variance."""
    arrays = []
    for run in runs:
        raw = run.raw if isinstance(run, Rerun) else run
        if isinstance(run, Rerun) and not isinstance(raw, Mapping):  # a run's number is its metric
            raise ConfigError(f"a run returned {raw!r}, its metric, and no {key!r} to ensemble; return "
                              f"{{'{key}': ..., 'loss': ...}} from the objective")
        value = raw.get(key) if isinstance(raw, Mapping) else raw
        if value is None:
            raise ConfigError(f"a run returned no {key!r} to ensemble; return {{'{key}': ..., 'loss': ...}} "
                              "from the objective")
        try:
            arrays.append(np.asarray(value, dtype=float))
        except (TypeError, ValueError) as err:  # text labels, or rows of different lengths in one run
            raise ConfigError(f"{key!r} of a run must be numbers of one shape (a list, a list of rows of one "
                              f"length or an array), to be averaged; got {str(value)[:80]} ({err})") from None
    if not arrays:
        raise ConfigError("ensemble needs at least one run")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ConfigError(f"predictions differ in shape: {sorted({a.shape for a in arrays})}")
    return np.mean(arrays, axis=0)
