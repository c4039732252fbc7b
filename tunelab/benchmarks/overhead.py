"""What a proposal costs once a study is large: the time of ask + tell at N trials.

The study is filled with N random results first (told, not searched, so filling is cheap),
then a few ask/tell rounds are timed and the median is reported, for tunelab searchers and for
Optuna's samplers fed the same random history.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import tunelab as tl
from tunelab.benchmarks.problems import get_problem
from tunelab.benchmarks.runner import _one_thread


def overhead_at(searcher: str, n: int, problem: str = "hartmann6", rounds: int = 5) -> float:
    """Median seconds of one ask + tell when the study already holds ``n`` results."""
    _one_thread(searcher)
    spec = get_problem(problem)
    space = tl.Space(spec.space)
    rng = np.random.default_rng(0)
    history = [space.sample(rng) for _ in range(n)]
    if searcher.startswith("optuna-"):
        return _optuna_overhead(searcher, spec, space, history, rounds)
    study = tl.create_study(space, metric="value", mode="min", seed=0, searcher=searcher,
                            searcher_options={"n_trials": n + rounds} if searcher == "auto" else None)
    for config in history:
        study.tell(config=config, value=spec.objective(config))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        trial = study.ask()
        study.tell(trial, 0.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _optuna_overhead(searcher, spec, space, history, rounds) -> float:
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    samplers = {"optuna-random": optuna.samplers.RandomSampler, "optuna-tpe": optuna.samplers.TPESampler,
                "optuna-gp": optuna.samplers.GPSampler}
    study = optuna.create_study(sampler=samplers[searcher](seed=0))
    dists = {name: FloatDistribution(d.low, d.high, log=d.log) for name, d in space.params.items()}
    study.add_trials([optuna.trial.create_trial(params=c, distributions=dists, value=spec.objective(c))
                      for c in history])
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        trial = study.ask(dists)
        study.tell(trial, 0.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
