"""Run searchers on benchmark problems with the same seeds and budgets, in worker processes.

Each run records the best value after every trial and the optimiser's own time per trial
(wall time minus the objective's), for tunelab searchers through the ask/tell face users run,
and for Optuna (random, TPE, GP) and hyperopt (TPE) when they are installed. Every process
uses one thread for BLAS/OpenMP/torch so that runs side by side do not slow each other down.
"""

from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

import tunelab as tl
from tunelab.benchmarks.problems import Problem, get_problem
from tunelab.benchmarks.optuna_baseline import suggest
from tunelab.distributions import Fixed, Float, Int
from tunelab.errors import ConfigError, TunelabError
from tunelab.searchers import SEARCHERS

#: Peers and the package each needs.
EXTERNAL = {"optuna-random": "optuna", "optuna-tpe": "optuna", "optuna-gp": "optuna", "hyperopt-tpe": "hyperopt"}


@dataclass
class Run:
    problem: str
    searcher: str
    seed: int
    best: list[float]      # best value after each trial
    overhead: float        # seconds per trial spent outside the objective


def available(searcher: str) -> bool:
    if searcher in EXTERNAL:
        if importlib.util.find_spec(EXTERNAL[searcher]) is None:
            return False
        return searcher != "optuna-gp" or importlib.util.find_spec("torch") is not None
    return searcher in SEARCHERS.names()


def check_searchers(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in EXTERNAL and n not in SEARCHERS.names()]
    if unknown:
        raise ConfigError(f"unknown searcher {unknown[0]!r}; tunelab: {', '.join(SEARCHERS.names())}; "
                          f"peers (when installed): {', '.join(EXTERNAL)}")
    return names


def check_runnable(problems: Iterable[str], searchers: Iterable[str], n_trials: int) -> None:
    """Refuse, before any run starts, a tunelab searcher that cannot run ``n_trials`` trials on a
    problem: one that cannot search its space (``reinforce`` picks among discrete options only),
    or a grid with fewer points than trials. Found in a worker, either ended the whole bench
    after the other runs had taken their minutes, with no table. The peers search any space."""
    for name in (s for s in searchers if s not in EXTERNAL):
        for problem in problems:
            try:
                searcher = SEARCHERS.create(name, tl.Space(get_problem(problem).space), 0,
                                            options=_tunelab_options(name, n_trials))
            except TunelabError as err:
                raise ConfigError(f"searcher {name!r} cannot run on problem {problem!r}: {err}") from None
            size = getattr(searcher, "size", None)  # a grid's number of points
            if size is not None and size < n_trials:
                raise ConfigError(f"searcher {name!r} has {size} points to propose on problem {problem!r}, "
                                  f"fewer than the {n_trials} trials of a run: ask for {size} trials or fewer "
                                  f"(--trials), or leave out {name!r} or {problem!r}")


#: Trials of the untimed warm-up run: past the random start of every searcher here (tunelab's
#: model-based ones, Optuna's TPE and GP: 10; hyperopt's TPE: 20), so that the model is built once.
WARMUP_TRIALS = 25
#: The searchers this process has warmed up (each worker process warms up its own).
_WARMED: set[str] = set()


def run_one(problem_name: str, searcher: str, seed: int, n_trials: int) -> Run:
    _one_thread(searcher)
    problem = get_problem(problem_name)
    spent = [0.0]

    def timed(config: dict[str, Any]) -> float:
        start = time.perf_counter()
        try:
            return problem.objective(config)
        finally:
            spent[0] += time.perf_counter() - start

    warm_up(problem, searcher, n_trials)
    start = time.perf_counter()
    values = _run_searcher(problem, searcher, seed, n_trials, timed)
    total = time.perf_counter() - start
    best = np.minimum.accumulate(np.where(np.isfinite(values), values, np.inf)).tolist()
    return Run(problem_name, searcher, seed, best, max(total - spent[0], 0.0) / max(len(values), 1))


def warm_up(problem: Problem, searcher: str, n_trials: int) -> bool:
    """Run ``searcher`` once, untimed, the first time this process runs it; whether it did.

    The first run of a searcher in a process pays one-time costs (its own lazy imports, scipy's
    or torch's, the first model fit) that are not a per-trial overhead: timed, they went to
    whichever run a worker process happened to start with, so the ms/trial column depended on
    the order of --searchers. The warm-up runs on the problem's space with a cheap stand-in
    objective (the problem's own may take a second a trial), as many trials as the timed run
    up to WARMUP_TRIALS."""
    if searcher in _WARMED:
        return False
    if searcher in EXTERNAL:
        importlib.import_module(EXTERNAL[searcher])
    rng = np.random.default_rng(0)
    _run_searcher(problem, searcher, 0, min(n_trials, WARMUP_TRIALS), lambda config: float(rng.random()))
    _WARMED.add(searcher)
    return True


def _run_searcher(problem: Problem, searcher: str, seed: int, n_trials: int, objective) -> list[float]:
    if searcher.startswith("optuna-"):
        return _run_optuna(problem, searcher, seed, n_trials, objective)
    if searcher == "hyperopt-tpe":
        return _run_hyperopt(problem, seed, n_trials, objective)
    return _run_tunelab(problem, searcher, seed, n_trials, objective)


def run_all(problems: list[str], searchers: list[str], seeds: int, n_trials: int, processes: int,
            on_done: Callable[[Run], None] | None = None, done: Iterable[tuple[str, str, int]] = ()) -> list[Run]:
    """Every (problem, searcher, seed) run not in ``done`` (kept from an earlier bench)."""
    skip = set(done)
    jobs = [(p, s, seed, n_trials) for p in problems for s in searchers for seed in range(seeds)
            if (p, s, seed) not in skip]
    # Slow runs first, so that the pool does not end waiting on one straggler.
    jobs.sort(key=lambda job: (job[1] not in ("optuna-gp", "bo", "auto", "rf"), get_problem(job[0]).kind != "sklearn"))
    runs: list[Run] = []
    if processes <= 1:
        for job in jobs:
            runs.append(run_one(*job))
            if on_done:
                on_done(runs[-1])
        return runs
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for run in pool.imap_unordered(_star, jobs):
            runs.append(run)
            if on_done:
                on_done(run)
    return runs


def _star(job: tuple) -> Run:
    return run_one(*job)


def _one_thread(searcher: str) -> None:
    """One BLAS/OpenMP thread; torch (seconds to import) only for the peer that uses it.

    threadpoolctl limits the libraries loaded so far; one that loads later (scikit-learn's
    OpenMP, on its first import in a problem's objective) reads these variables as it loads, and
    without them ran one thread per CPU in every worker process."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass
    if searcher == "optuna-gp":
        import torch
        torch.set_num_threads(1)


def _tunelab_options(searcher: str, n_trials: int) -> dict | None:
    return {"n_trials": n_trials, "workers": 1} if searcher == "auto" else None


def _run_tunelab(problem: Problem, searcher: str, seed: int, n_trials: int, objective) -> list[float]:
    options = _tunelab_options(searcher, n_trials)
    study = tl.create_study(problem.space, metric="value", mode="min", seed=seed, searcher=searcher,
                            searcher_options=options)
    values = []
    for _ in range(n_trials):
        trial = study.ask()
        value = objective(trial.config)
        study.tell(trial, value)
        values.append(value)
    return values


def _run_optuna(problem: Problem, searcher: str, seed: int, n_trials: int, objective) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    samplers = {"optuna-random": optuna.samplers.RandomSampler, "optuna-tpe": optuna.samplers.TPESampler,
                "optuna-gp": optuna.samplers.GPSampler}
    study = optuna.create_study(sampler=samplers[searcher](seed=seed))
    space = tl.Space(problem.space)

    def wrapped(trial) -> float:
        return objective(suggest(trial, space))

    study.optimize(wrapped, n_trials=n_trials)
    return [t.value if t.value is not None else math.inf for t in study.trials]


def _run_hyperopt(problem: Problem, seed: int, n_trials: int, objective) -> list[float]:
    from hyperopt import STATUS_OK, Trials, fmin, hp, tpe

    space = tl.Space(problem.space)
    hp_space = {}
    for name, dist in space.params.items():  # conditional parameters are sampled always, used when active
        if isinstance(dist, Fixed):
            hp_space[name] = dist.value
        elif isinstance(dist, Float):
            hp_space[name] = (hp.loguniform(name, math.log(dist.low), math.log(dist.high)) if dist.log
                              else hp.uniform(name, dist.low, dist.high))
        elif isinstance(dist, Int):
            hp_space[name] = (hp.qloguniform(name, math.log(dist.low), math.log(dist.high + 0.5), 1) if dist.log
                              else hp.quniform(name, dist.low - 0.5, dist.high + 0.5, 1))
        else:
            hp_space[name] = hp.choice(name, list(dist.options))
    values: list[float] = []

    def wrapped(raw: dict[str, Any]) -> dict:
        config: dict[str, Any] = {}
        for name, dist in space.params.items():
            if dist.when and not space.is_active(name, config):
                continue
            value = raw[name]
            config[name] = int(min(max(round(value), dist.low), dist.high)) if isinstance(dist, Int) else value
        values.append(objective(config))
        return {"loss": values[-1], "status": STATUS_OK}

    fmin(wrapped, hp_space, algo=tpe.suggest, max_evals=n_trials, trials=Trials(),
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return values
