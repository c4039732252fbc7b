"""Optuna and Ray Tune doing what benchmarks/load.py asks of tunelab, so that the numbers print
side by side: Optuna's RDB storage at trial 100 and 50,000, and 200 trivial trials through Optuna
(threads, processes on one SQLite or journal file) and Ray Tune. Both are optional: a section
says so and moves on when one is not installed.
"""

from __future__ import annotations

import io
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

class OverheadTable:
    """One table: start-up (from the call until the first objective starts), the trials' span
    (first objective start to last end: tunelab and Ray Tune as the objective saw it, Optuna as its
    trials record it, from ask to tell) and its share per trial, the wall time, and how many
    trials completed."""

    def __init__(self, n: int):
        self.n = n
        print(f"{'':36s}{'start-up s':>11s}{'trials s':>10s}{'ms/trial':>10s}{'wall s':>9s}  completed")

    def row(self, label: str, called: float, starts: list[float], ends: list[float], wall: float,
            note: str = "") -> None:
        if not starts:
            print(f"{label:36s}{'-':>11s}{'-':>10s}{'-':>10s}{wall:9.2f}  0/{self.n} {note}")
            return
        span = max(ends) - min(starts)
        print(f"{label:36s}{min(starts) - called:11.2f}{span:10.2f}{span / len(ends) * 1000:10.1f}{wall:9.2f}  "
              f"{len(ends)}/{self.n} {note}", flush=True)


def optuna_scale(folder: Path, seed: int, marks: list[int], window: int = 100) -> float | None:
    """Optuna's RDBStorage on one SQLite file: ask+tell timed over ``window`` trials at each mark,
    the history filled up to the next mark in bulk in between (``Study.add_trials``: the same rows
    ask+tell writes). Timed twice at each mark: with tunelab's SQLite settings (WAL,
    synchronous=NORMAL), the like-for-like ratio, and with Optuna's own (SQLite's defaults: a
    rollback journal and a sync per commit), what an Optuna user gets."""
    try:
        import optuna
    except ImportError:
        print("optuna          not installed (pip install -e '.[bench]')")
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = folder / "optuna.db"
    dists = {"x": optuna.distributions.FloatDistribution(-5, 5),
             "kind": optuna.distributions.CategoricalDistribution(["a", "b"]),
             "n": optuna.distributions.IntDistribution(1, 4)}
    rng, costs = random.Random(seed), {True: {}, False: {}}
    started = time.perf_counter()
    for mark in marks:
        study, storage = _optuna_study(optuna, path, True, seed)
        done = len(study.get_trials(deepcopy=False))
        while done < mark:
            batch = min(1000, mark - done)
            study.add_trials([_frozen_trial(optuna, dists, rng) for _ in range(batch)])
            done += batch
        storage.engine.dispose()
        for like in (True, False):
            study, storage = _optuna_study(optuna, path, like, seed)
            begun = time.perf_counter()
            for _ in range(window):
                trial = study.ask(dists)
                study.tell(trial, trial.params["x"] ** 2)
            costs[like][mark] = (time.perf_counter() - begun) / window * 1000
            storage.engine.dispose()
    for like, label in ((True, "optuna RDB WAL"), (False, "optuna RDB dflt")):
        ratio = costs[like][marks[1]] / costs[like][marks[0]]
        print(f"{label:16s}" + "  ".join(f"@{m}: {c:.3f} ms" for m, c in costs[like].items())
              + f"  ratio {ratio:.2f}x")
    print(f"(optuna's history built by add_trials in {time.perf_counter() - started:.0f}s; WAL = tunelab's "
          f"SQLite settings, dflt = Optuna's own)")
    return costs[True][marks[1]] / costs[True][marks[0]]


def _optuna_study(optuna, path: Path, like_tunelab: bool, seed: int) -> tuple:
    def connect():
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL" if like_tunelab else "PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=NORMAL" if like_tunelab else "PRAGMA synchronous=FULL")
        return conn

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": connect})
    study = optuna.create_study(storage=storage, study_name="big", direction="minimize", load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    return study, storage


def _frozen_trial(optuna, dists, rng: random.Random):
    params = {"x": rng.uniform(-5, 5), "kind": rng.choice(["a", "b"]), "n": rng.randint(1, 4)}
    return optuna.trial.create_trial(params=params, distributions=dists, value=params["x"] ** 2)


OPTUNA_WORKER = """
import sys
sys.path.insert(0, sys.argv[3])
import optuna
from peers import _optuna_objective, _optuna_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="trivial", storage=_optuna_storage(sys.argv[1]))
study.optimize(_optuna_objective, n_trials=int(sys.argv[2]))
"""


def _optuna_objective(t) -> float:
    return (t.suggest_float("x", -5, 5) - 1) ** 2 + 0 * t.suggest_int("n", 1, 4) + 0 * len(
        t.suggest_categorical("kind", ["a", "b"]))


def _optuna_storage(url: str):
    """A URL for Optuna's RDB storage, or a path ending in .log for its journal file storage."""
    if not url.endswith(".log"):
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(url))


def optuna_trivial(table: OverheadTable, n: int, env: dict[str, str]) -> None:
    try:
        import optuna
    except ImportError:
        print("optuna: not installed (pip install -e '.[bench]')")
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    called = time.time()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_optuna_objective, n_trials=n, n_jobs=2)
    _optuna_row(table, "optuna n_jobs=2 threads (memory)", study, called)
    folder = tempfile.mkdtemp(prefix="tunelab-optuna-")
    for label, url in (("optuna 2 processes (SQLite RDB)", f"sqlite:///{folder}/o.db"),
                       ("optuna 2 processes (journal file)", f"{folder}/o.log")):
        storage = _optuna_storage(url)
        called = time.time()
        optuna.create_study(study_name="trivial", storage=storage, direction="minimize")
        procs = [subprocess.Popen([sys.executable, "-c", OPTUNA_WORKER, url, str(n // 2), str(Path(__file__).parent)],
                                  env=env) for _ in range(2)]
        for proc in procs:
            proc.wait()
        _optuna_row(table, label, optuna.load_study(study_name="trivial", storage=storage), called)


def _optuna_row(table: OverheadTable, label: str, study, called: float) -> None:
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state is optuna.trial.TrialState.COMPLETE]
    table.row(label, called, [t.datetime_start.timestamp() for t in done],
              [t.datetime_complete.timestamp() for t in done], time.time() - called)


def ray_tune_trivial(table: OverheadTable, n: int, timeout: float) -> None:
    """Ray Tune set up for many short trials: actors reused, no checkpoints, no loggers or
    reporters writing files (results are collected by a callback), local Ray with 2 CPUs; its
    start-up (ray.init) is timed apart, and time_budget_s stops it at ``timeout``."""
    for key, value in {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1000000",
                       "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "1"}.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        from ray import tune
    except ImportError:
        print("ray tune: not installed (pip install 'ray[tune]')")
        return
    called = time.time()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    init_seconds = time.time() - called

    class Collect(tune.Callback):
        def __init__(self):
            self.results: list[dict] = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results.append(result)

    def trainable(config):
        started = time.time()
        return {"loss": (config["x"] - 1) ** 2, "t_start": started, "t_end": time.time()}

    collect = Collect()
    tuner = tune.Tuner(
        trainable, param_space={"x": tune.uniform(-5, 5), "n": tune.randint(1, 5), "kind": tune.choice(["a", "b"])},
        tune_config=tune.TuneConfig(num_samples=n, metric="loss", mode="min", max_concurrent_trials=2,
                                    reuse_actors=True, time_budget_s=timeout),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="tunelab-raytune-"), verbose=0,
                                  log_to_file=False, callbacks=[collect],
                                  checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0,
                                                                          checkpoint_at_end=False)))
    try:
        with redirect_stdout(io.StringIO()):
            tuner.fit()
    finally:
        ray.shutdown()
    results = collect.results
    table.row("ray tune 2 cpus (local, memory)", called, [r["t_start"] for r in results],
              [r["t_end"] for r in results], time.time() - called,
              f"(ray.init {init_seconds:.1f} s of the start-up; time_budget_s={timeout:g})")
