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
  parallel    2 local workers on 1-second trials against one.
  overhead    200 trivial trials through tunelab (inline, 2 processes), Optuna (n_jobs=2 threads,
              2 processes on one SQLite or journal file) and Ray Tune (local, 2 CPUs, when
              installed): start-up and time per trial, the coordinator's overhead.

PostgreSQL: --postgres URL, or a throwaway server is started when the binaries are installed
(apt-get install postgresql) and skipped otherwise. Optuna and Ray Tune are optional.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import tunelab as tl  # noqa: E402
from tunelab.storage import open_storage  # noqa: E402
from tunelab.trial import TrialState  # noqa: E402

from faults import ENV, chains, kill_busy_workers, start_worker  # noqa: E402
from peers import OverheadTable, optuna_scale, optuna_trivial, ray_tune_trivial  # noqa: E402

SPACE = {"x": tl.uniform(-5.0, 5.0), "kind": tl.choice(["a", "b"]), "n": tl.randint(1, 4)}


def timed_trivial(config):
    """The trivial objective, with when it ran: the time between its runs is the coordinator's."""
    started = time.time()
    return {"loss": (config["x"] - 1.0) ** 2, "t_start": started, "t_end": time.time()}


def one_second(config):
    time.sleep(1.0)
    return (config["x"] - 1.0) ** 2


# -- databases -------------------------------------------------------------------------------------------
class Databases:
    def __init__(self, args, folder: Path):
        self.folder, self._server, self._pg = folder, None, args.postgres
        self._kinds = {kind.strip() for kind in args.databases.split(",")}
        if self._pg is None and "postgresql" in self._kinds:
            import pgserver

            bindir = pgserver.binaries()
            if bindir is not None:
                self._server = pgserver.Server(bindir).start()
        self._count = 0

    def urls(self) -> list[tuple[str, str]]:
        self._count += 1
        out = [("sqlite", f"sqlite:///{self.folder / f'db{self._count}.db'}")] if "sqlite" in self._kinds else []
        if "postgresql" not in self._kinds:
            return out
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
    o_ratio = optuna_scale(dbs.folder, args.seed, marks)
    if o_ratio is not None:
        print(f"side by side, cost at trial {marks[1]} / cost at trial {marks[0]}: tunelab {ratio:.2f}x, "
              f"optuna RDB {o_ratio:.2f}x")


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


def overhead(args, dbs: Databases) -> None:
    n = 200
    print(f"\n== coordinator overhead: {n} trivial trials, 2 workers unless said ==")
    table = OverheadTable(n)
    for label, workers, storage in (("tunelab inline (1 worker, memory)", 1, None),
                                    ("tunelab processes x2 (memory)", 2, None),
                                    ("tunelab processes x2 (SQLite)", 2, "sqlite")):
        url = f"sqlite:///{tempfile.mkdtemp(prefix='tunelab-trivial-')}/t.db" if storage else None
        called = time.time()
        study = tl.tune(timed_trivial, SPACE, metric="loss", mode="min", n_trials=n, workers=workers,
                        searcher="random", storage=url, name="trivial", progress=False)
        done = [t.metrics for t in study.trials if t.state is TrialState.COMPLETED]
        table.row(label, called, [m["t_start"] for m in done], [m["t_end"] for m in done], time.time() - called)
    optuna_trivial(table, n, ENV)
    ray_tune_trivial(table, n, args.ray_timeout)


SECTIONS = {"faults": faults, "concurrency": concurrency, "scale": scale, "parallel": parallel, "overhead": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="which of sqlite,postgresql the faults "
                        "and concurrency sections use")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fault-trials", type=int, default=60)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--concurrency-trials", type=int, default=10_000)
    parser.add_argument("--scale-trials", type=int, default=100_000)
    parser.add_argument("--parallel-trials", type=int, default=10)
    parser.add_argument("--ray-timeout", type=float, default=900, help="Ray Tune's time budget for 200 trials (s)")
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
