"""Load, fault and scale checks for shared studies, with numbers printed side by side.

    python benchmarks/load.py                      # everything, defaults sized for a 2-core machine
    python benchmarks/load.py --only faults,scale   # some sections
    python benchmarks/load.py --quick               # a smoke run in about a minute

Sections:
  faults      random kill -9 of workers (single-process ones and tuners with worker processes)
              during a real study on SQLite and PostgreSQL; then 0 lost, 0 duplicated, complete.
  concurrency 8 processes doing ask/tell on one SQLite file and on PostgreSQL; 0 lost.
  scale       a 100,000-trial study: ask+tell cost at trial 100 and at trial 50,000, next to
              Optuna's RDB storage at the same two points (its history filled in bulk between
              them); opening it and listing its best and last 100 trials.
  parallel    2 local workers on 1-second trials against one; 200 trivial trials through
              tunelab, Optuna n_jobs and Ray Tune (when installed) for the coordinator's overhead.

PostgreSQL: --postgres URL, or a throwaway server is started when the binaries are installed
(apt-get install postgresql) and skipped otherwise. Optuna and Ray Tune are optional.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tunelab as tl  # noqa: E402
from tunelab.storage import open_storage  # noqa: E402
from tunelab.trial import TrialState  # noqa: E402

from faults import ENV, chains, kill_busy_workers, start_worker  # noqa: E402

SPACE = {"x": tl.uniform(-5.0, 5.0), "kind": tl.choice(["a", "b"]), "n": tl.randint(1, 4)}


def trivial(config):
    return (config["x"] - 1.0) ** 2


def one_second(config):
    time.sleep(1.0)
    return (config["x"] - 1.0) ** 2


# -- databases -------------------------------------------------------------------------------------------
class Databases:
    def __init__(self, args, folder: Path):
        self.folder, self._server, self._pg = folder, None, args.postgres
        if self._pg is None:
            import pgserver

            bindir = pgserver.binaries()
            if bindir is not None:
                self._server = pgserver.Server(bindir).start()
        self._count = 0

    def urls(self) -> list[tuple[str, str]]:
        self._count += 1
        out = [("sqlite", f"sqlite:///{self.folder / f'db{self._count}.db'}")]
        if self._server is not None:
            out.append(("postgresql", self._server.new_database()))
        elif self._pg is not None:
            out.append(("postgresql", self._pg))
        return out

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()


def lost_and_duplicated(trials, n_trials: int) -> tuple[int, int]:
    done = [sum(t.state is TrialState.COMPLETED for t in group) for group in chains(trials).values()]
    return n_trials - sum(1 for d in done if d >= 1), sum(d - 1 for d in done if d > 1)


# -- faults -------------------------------------------------------------------------------------------------
def worker(url: str, *flavour: str) -> subprocess.Popen:
    return start_worker(url, "faults", "--max-retries", "25", *flavour, quiet_output=True)


def faults(args, dbs: Databases) -> None:
    print(f"\n== faults: {args.kills} random kill -9 during a study of {args.fault_trials} trials ==")
    for kind, url in dbs.urls():
        rng, started = random.Random(args.seed), time.perf_counter()
        study = tl.create_study(SPACE, metric="loss", mode="min", name="faults", storage=url, seed=0,
                                n_trials=args.fault_trials)
        store, flavours = open_storage(url), [(), ("--workers", "2")]
        procs = [worker(url, *f) for f in flavours * 2]
        kills = kill_busy_workers(procs, store, study.record.id, args.kills, rng,
                                  lambda: worker(url, *rng.choice(flavours)), deadline=600)
        for proc in procs:
            proc.wait()
        worker(url).wait()
        trials = tl.load_study("faults", storage=url).trials
        lost, duplicated = lost_and_duplicated(trials, args.fault_trials)
        completed = sum(t.state is TrialState.COMPLETED for t in trials)
        abandoned = sum(t.state is TrialState.FAILED and (t.error or "").startswith("abandoned") for t in trials)
        print(f"{kind:11s} kills={kills} trials={len(trials)} completed={completed} abandoned+requeued={abandoned} "
              f"lost={lost} duplicated={duplicated} complete={completed == args.fault_trials} "
              f"({time.perf_counter() - started:.1f}s)")
        store.close()


# -- concurrency ----------------------------------------------------------------------------------------
ASK_TELL = """
import sys, tunelab as tl
url, n = sys.argv[1], int(sys.argv[2])
study = tl.load_study("load", storage=url)
for _ in range(n):
    trial = study.ask()
    study.tell(trial, trial.config["x"] ** 2)
"""


def concurrency(args, dbs: Databases) -> None:
    n, per = args.processes * (args.concurrency_trials // args.processes), args.concurrency_trials // args.processes
    print(f"\n== concurrency: {args.processes} processes, {n} ask/tell trials in one study ==")
    for kind, url in dbs.urls():
        tl.create_study(SPACE, metric="loss", mode="min", name="load", storage=url, seed=0).storage.close()
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", ASK_TELL, url, str(per)], env=ENV, stderr=subprocess.PIPE,
                                  text=True) for _ in range(args.processes)]
        errors = [p.communicate()[1] for p in procs if p.wait() != 0 or False]
        seconds = time.perf_counter() - started
        store = open_storage(url)
        record = store.get_study("load")
        counts = store.count_states(record.id)
        numbers = [t.number for t in store.trials(record.id)]
        print(f"{kind:11s} trials={len(numbers)} completed={counts.get('completed', 0)} lost={n - len(numbers)} "
              f"duplicate numbers={len(numbers) - len(set(numbers))} failed processes={len(errors)} "
              f"{seconds:.1f}s ({len(numbers) / seconds:.0f} trials/s)")
        store.close()


# -- scale ------------------------------------------------------------------------------------------------
def _ask_tell_costs(ask_tell, total: int, marks: list[int], window: int = 100) -> dict[int, float]:
    """Mean ms per ask+tell over ``window`` trials starting at each mark, building the study up to total."""
    costs, done = {}, 0
    for mark in sorted(marks) + [total]:
        while done < min(mark, total):
            ask_tell()
            done += 1
        if mark >= total:
            break
        started = time.perf_counter()
        for _ in range(window):
            ask_tell()
        done += window
        costs[mark] = (time.perf_counter() - started) / window * 1000
    return costs


def scale(args, dbs: Databases) -> None:
    """Both libraries with random search (tunelab's searcher="random", Optuna's RandomSampler) so
    that what grows with the study is the storage's cost, not a model's."""
    total, marks = args.scale_trials, [100, args.scale_trials // 2]
    print(f"\n== scale: a {total}-trial study; ask+tell ms per trial at trials {marks} (mean of 100), "
          f"random search on both sides ==")
    url = f"sqlite:///{dbs.folder / 'scale.db'}"
    study = tl.create_study(SPACE, metric="loss", mode="min", name="big", storage=url, seed=0, searcher="random")

    def ask_tell():
        trial = study.ask()
        study.tell(trial, trial.config["x"] ** 2)

    started = time.perf_counter()
    costs = _ask_tell_costs(ask_tell, total, marks)
    ratio = costs[marks[1]] / costs[marks[0]]
    print(f"{'tunelab SQLite':16s}" + "  ".join(f"@{m}: {c:.3f} ms" for m, c in costs.items())
          + f"  ratio {ratio:.2f}x  (built by ask+tell in {time.perf_counter() - started:.0f}s)", flush=True)
    study.storage.close()
    _open_and_list(url, total)
    o_ratio = _optuna_scale(args, dbs, marks)
    if o_ratio is not None:
        print(f"side by side, cost at trial {marks[1]} / cost at trial {marks[0]}: tunelab {ratio:.2f}x, "
              f"optuna RDB {o_ratio:.2f}x")


def _optuna_scale(args, dbs: Databases, marks: list[int], window: int = 100) -> float | None:
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
    path = dbs.folder / "optuna.db"
    dists = {"x": optuna.distributions.FloatDistribution(-5, 5),
             "kind": optuna.distributions.CategoricalDistribution(["a", "b"]),
             "n": optuna.distributions.IntDistribution(1, 4)}
    rng, costs = random.Random(args.seed), {True: {}, False: {}}
    started = time.perf_counter()
    for mark in marks:
        study, storage = _optuna_study(optuna, path, True, args.seed)
        done = len(study.get_trials(deepcopy=False))
        while done < mark:
            batch = min(1000, mark - done)
            study.add_trials([_frozen_trial(optuna, dists, rng) for _ in range(batch)])
            done += batch
        storage.engine.dispose()
        for like in (True, False):
            study, storage = _optuna_study(optuna, path, like, args.seed)
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


def _open_and_list(url: str, total: int) -> None:
    from tunelab.cli import main

    started = time.perf_counter()
    study = tl.load_study("big", storage=url)
    best, last, counts = study.top_trials(100), study.last_trials(100), study.counts()
    seconds = time.perf_counter() - started
    assert len(best) == len(last) == 100 and sum(counts.values()) == total
    out = io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out):
        main(["show", "big", "--storage", url, "--limit", "100"])
    show_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with redirect_stdout(out):
        main(["show", "big", "--storage", url, "--limit", "100", "--sort", "number"])
    last_seconds = time.perf_counter() - started
    print(f"open + best 100 + last 100 + counts: {seconds * 1000:.0f} ms;  `tunelab show --limit 100` "
          f"(best): {show_seconds * 1000:.0f} ms;  `--sort number` (last): {last_seconds * 1000:.0f} ms")


# -- parallel -------------------------------------------------------------------------------------------
def _throughput(study) -> float:
    trials = [t for t in study.trials if t.state is TrialState.COMPLETED]
    return len(trials) / (max(t.finished_at for t in trials) - min(t.started_at for t in trials))


def parallel(args, dbs: Databases) -> None:
    n = args.parallel_trials
    print(f"\n== parallel: {n} one-second trials, 1 worker against 2 local worker processes ==")
    results = {}
    for workers in (1, 2):
        started = time.perf_counter()
        study = tl.tune(one_second, SPACE, metric="loss", mode="min", n_trials=n, workers=workers, seed=0,
                        storage=None, progress=False)
        results[workers] = (_throughput(study), n / (time.perf_counter() - started))
        print(f"workers={workers}: {results[workers][0]:.2f} trials/s while running, "
              f"{results[workers][1]:.2f} trials/s wall (with worker start-up)")
    print(f"speed-up with 2 workers: {results[2][0] / results[1][0]:.2f}x while running, "
          f"{results[2][1] / results[1][1]:.2f}x wall")
    trivial_trials(args)


def trivial_trials(args) -> None:
    n = 200
    print(f"\n== coordinator overhead: {n} trivial trials, 2 workers (wall seconds) ==")
    for label, run in (("tunelab inline (1 worker)", lambda: tl.tune(trivial, SPACE, metric="loss", mode="min",
                                                                       n_trials=n, storage=None, progress=False)),
                       ("tunelab processes x2", lambda: tl.tune(trivial, SPACE, metric="loss", mode="min", n_trials=n,
                                                               workers=2, storage=None, progress=False))):
        started = time.perf_counter()
        run()
        print(f"{label:28s} {time.perf_counter() - started:6.2f} s")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        o_study = optuna.create_study(direction="minimize")
        started = time.perf_counter()
        o_study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + 0 * t.suggest_int("n", 1, 4)
                         + 0 * len(t.suggest_categorical("kind", ["a", "b"])), n_trials=n, n_jobs=2)
        print(f"{'optuna n_jobs=2 (threads)':28s} {time.perf_counter() - started:6.2f} s")
    except ImportError:
        print("optuna: not installed")
    try:
        from ray import tune
        import ray
    except ImportError:
        print("ray tune: not installed (pip install 'ray[tune]')")
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    tuner = tune.Tuner(lambda config: {"loss": (config["x"] - 1) ** 2},
                       param_space={"x": tune.uniform(-5, 5), "n": tune.randint(1, 5), "kind": tune.choice(["a", "b"])},
                       tune_config=tune.TuneConfig(num_samples=n, metric="loss", mode="min", max_concurrent_trials=2))
    tuner.fit()
    print(f"{'ray tune (2 cpus)':28s} {time.perf_counter() - started:6.2f} s (after ray.init)")
    ray.shutdown()


SECTIONS = {"faults": faults, "concurrency": concurrency, "scale": scale, "parallel": parallel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fault-trials", type=int, default=60)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--concurrency-trials", type=int, default=10_000)
    parser.add_argument("--scale-trials", type=int, default=100_000)
    parser.add_argument("--parallel-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.kills, args.fault_trials, args.concurrency_trials = 3, 12, 400
        args.scale_trials, args.parallel_trials = 2_000, 4
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory(prefix="tunelab-load-") as folder:
        dbs = Databases(args, Path(folder))
        try:
            for name in args.only.split(","):
                SECTIONS[name.strip()](args, dbs)
        finally:
            dbs.close()


if __name__ == "__main__":
    main()
