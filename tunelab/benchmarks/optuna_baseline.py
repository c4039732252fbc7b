"""Optuna on the same simulated tasks, as the yardstick: TPE at full budget, and TPE with its
SuccessiveHalving and Hyperband pruners. Optuna runs its own sequential loop here (one worker),
so simulated time is simply the sum of the epochs it paid for. Needs ``pip install 'tunelab[bench]'``.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab import distributions as d
from tunelab.benchmarks.tasks import Task, at_or_better
from tunelab.errors import ConfigError
from tunelab.space import Space


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("the Optuna baselines need Optuna: pip install 'tunelab[bench]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def available() -> bool:
    try:
        _optuna()
    except ConfigError:
        return False
    return True


def suggest(trial, space: Space) -> dict[str, Any]:
    """A configuration of ``space`` drawn through an Optuna trial, each parameter as Optuna
    models it best: an ordered choice (a grid of learning rates, widths) as the index of its
    option, so that TPE sees the order, as tunelab's own searchers do; an unordered one as a
    category."""
    config: dict[str, Any] = {}
    for name, dist in space.params.items():
        if dist.when and not space.is_active(name, config):
            continue
        if isinstance(dist, d.Fixed):
            config[name] = dist.value
        elif isinstance(dist, d.Float):
            config[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, d.Int):
            config[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, d.Categorical) and dist.ordered:
            config[name] = dist.options[trial.suggest_int(name, 0, len(dist.options) - 1)]
        else:
            config[name] = trial.suggest_categorical(name, list(dist.options))
    return config


def run_optuna(task: Task, pruner: str | None, seed: int, target: float, max_time: float,
               max_trials: int = 3000) -> tuple[float, float] | None:
    """(time, compute) at which Optuna first finishes a full run at ``target`` or better; None
    when it has not within ``max_time`` simulated seconds (or ``max_trials`` trials).

    The cap is applied as the simulator applies tunelab's (``compare``): a run is stopped at the
    first epoch that ends past ``max_time``, and a hit counts only at or before it, so a full run
    started just under the cap does not reach the target after it."""
    optuna = _optuna()
    min_r, max_r = task.fidelity.min, task.fidelity.max
    pruners = {
        None: lambda: optuna.pruners.NopPruner(),
        "sh": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=int(min_r), reduction_factor=3),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=int(min_r), max_resource=int(max_r),
                                                            reduction_factor=3),
    }
    # A fixed study name: Optuna's Hyperband pruner puts trials in brackets by a hash of the study
    # name, and a random name would make the reference differ from one benchmark to the next.
    study = optuna.create_study(direction="minimize" if task.mode == "min" else "maximize",
                                study_name=f"bench-mf-{task.name}-{seed}",
                                sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruners[pruner]())
    space = Space.coerce(task.space)
    clock = 0.0
    for _ in range(max_trials):
        trial = study.ask()
        config = suggest(trial, space)
        done, value, state = 0.0, math.nan, optuna.trial.TrialState.COMPLETE
        for step in task.report_steps(0.0, max_r):
            clock += task.cost(config, done, step)
            if clock > max_time:
                return None  # stopped at the cap, in the middle of this run
            value, done = task.value(config, step), step
            if pruner is not None and step < max_r:
                trial.report(value, int(round(step)) if task.fidelity.integer else step)
                if trial.should_prune():
                    state = optuna.trial.TrialState.PRUNED
                    break
        if state is optuna.trial.TrialState.PRUNED:
            study.tell(trial, state=state)
            continue
        study.tell(trial, value)
        if at_or_better(value, target, task.mode):
            return clock, clock
    return None
