"""Per-trial ask+tell overhead of tunelab next to Optuna, in memory and on SQLite.

Run it from the repository root::

    python benchmarks/overhead.py                 # the full run (a couple of minutes on 2 cores)
    python benchmarks/overhead.py --quick         # a smoke check in a few seconds
    python benchmarks/overhead.py --json bench-results/overhead.json

Optuna is a benchmark-only extra (``pip install -e '.[bench]'``); without it only tunelab's rows
are printed.

Why it is built this way: the library's own bookkeeping is what a user pays on every trial
whatever the searcher, so the objective is a cheap formula and the searcher is plain random
search on both sides. Optuna is asked with fixed distributions (``study.ask(distributions)``),
the equivalent of tunelab's ``study.ask()`` over a declared space; ``--optuna-form suggest``
times its define-by-run form (``trial.suggest_*``) instead. Each study runs a few untimed
warm-up trials first (imports, statement caches), then the timed trials; the 1000-trial study
also reports the mean of its last 100 trials, which shows whether the cost grows with the study.
Databases live in a fresh directory (``--dir`` to choose the disk; made if missing), one file per study.
The two-process section checks the claim that matters for shared studies: a second process
adds throughput instead of lock errors, and no trial is lost.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from time import perf_counter
from typing import Any, Callable

WARMUP = 5
OPTUNA_HINT = "pip install -e '.[bench]' to compare with Optuna"
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512]


# -- the shared problem ------------------------------------------------------------------------
def objective(config: dict[str, Any]) -> float:
    """A cheap, deterministic loss of the configuration, so the libraries are what is timed."""
    return ((math.log10(config["lr"]) + 3.0) ** 2 + (config["momentum"] - 0.9) ** 2
            + 0.01 * config["layers"] + 0.001 * math.log2(config["batch_size"])
            + (0.0 if config["optimizer"] == "adam" else 0.05))


def tunelab_space() -> dict[str, Any]:
    import tunelab as tl

    return {"lr": tl.loguniform(1e-6, 1e-1), "batch_size": tl.choice(BATCH_SIZES),
            "momentum": tl.uniform(0.85, 0.98), "layers": tl.randint(1, 8),
            "optimizer": tl.choice(["sgd", "adam"])}


def optuna_distributions() -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {"lr": FloatDistribution(1e-6, 1e-1, log=True), "batch_size": CategoricalDistribution(BATCH_SIZES),
            "momentum": FloatDistribution(0.85, 0.98), "layers": IntDistribution(1, 8),
            "optimizer": CategoricalDistribution(["sgd", "adam"])}


# -- the two sides: open a study, run one ask+tell ---------------------------------------------------
def tunelab_url(kind: str, path: Path | None) -> str | None:
    return None if kind == "memory" else f"sqlite:///{path}"


def open_tunelab(kind: str, path: Path | None, name: str, load: bool = False):
    import tunelab as tl

    if load:
        return tl.load_study(name, storage=tunelab_url(kind, path))
    return tl.create_study(tunelab_space(), metric="loss", mode="min", storage=tunelab_url(kind, path),
                           name=name, seed=0, searcher="random")


def tunelab_step(study) -> None:
    trial = study.ask()
    study.tell(trial, objective(trial.config))


def quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def optuna_storage(kind: str, path: Path | None):
    quiet_optuna()
    if kind == "memory":
        return None
    if kind == "sqlite":
        return f"sqlite:///{path}"
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))


def open_optuna(kind: str, path: Path | None, name: str, load: bool = False, seed: int = 0):
    optuna = quiet_optuna()
    sampler = optuna.samplers.RandomSampler(seed=seed)
    storage = optuna_storage(kind, path)
    if load:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="minimize")


def optuna_step_fixed(study, distributions) -> None:
    trial = study.ask(distributions)
    study.tell(trial, objective(trial.params))


def optuna_step_suggest(study, _distributions) -> None:
    trial = study.ask()
    config = {"lr": trial.suggest_float("lr", 1e-6, 1e-1, log=True),
              "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
              "momentum": trial.suggest_float("momentum", 0.85, 0.98),
              "layers": trial.suggest_int("layers", 1, 8),
              "optimizer": trial.suggest_categorical("optimizer", ["sgd", "adam"])}
    study.tell(trial, objective(config))


def stepper(library: str, form: str) -> Callable[[Any], None]:
    """One ask+tell for ``library``; Optuna's takes its distributions built once, outside the timing."""
    if library == "tunelab":
        return tunelab_step
    distributions = optuna_distributions()
    step = optuna_step_fixed if form == "fixed" else optuna_step_suggest
    return lambda study: step(study, distributions)


def opener(library: str) -> Callable[..., Any]:
    return open_tunelab if library == "tunelab" else open_optuna


def count_completed(library: str, kind: str, path: Path, name: str) -> tuple[int, int, int]:
    """(completed trials, all trials, distinct configurations) as a fresh reader sees them."""
    if library == "tunelab":
        trials = open_tunelab(kind, path, name, load=True).trials
        done = [t for t in trials if t.state.value == "completed"]
        configs = {json.dumps(t.config, sort_keys=True) for t in trials}
    else:
        trials = open_optuna(kind, path, name, load=True).get_trials(deepcopy=False)
        done = [t for t in trials if t.state.name == "COMPLETE"]
        configs = {json.dumps(t.params, sort_keys=True) for t in trials}
    return len(done), len(trials), len(configs)


# -- one process -------------------------------------------------------------------------------
def time_sequential(library: str, kind: str, n: int, workdir: Path, form: str, budget_s: float) -> dict[str, Any]:
    """A fresh study of ``n`` timed trials (after WARMUP untimed ones) on one storage kind, cut
    short after ``budget_s`` seconds of timed trials."""
    name = f"{library}-{kind}-{n}"
    path = None if kind == "memory" else workdir / f"{name}.{'log' if kind == 'journal' else 'db'}"
    gc.collect()
    start = perf_counter()
    study = opener(library)(kind, path, name)
    create_s = perf_counter() - start
    step = stepper(library, form)
    for _ in range(WARMUP):
        step(study)
    gc.collect()
    times: list[float] = []
    wall = perf_counter()
    for _ in range(n):
        start = perf_counter()
        step(study)
        times.append(perf_counter() - start)
        if start + times[-1] - wall > budget_s:
            break  # a slow reference must not stretch the run; the row says how many trials ran
    wall = perf_counter() - wall
    done, tail = len(times), times[-100:]
    return {"library": library, "storage": kind, "planned": n, "trials": done, "capped": done < n,
            "ms_per_trial": 1e3 * sum(times) / done, "ms_last_100": 1e3 * sum(tail) / len(tail),
            "trials_per_s": done / wall, "create_ms": 1e3 * create_s}


# -- several processes on one SQLite study ---------------------------------------------------------
def _worker(library: str, path: str, name: str, n: int, budget_s: float, index: int, form: str, barrier,
            results) -> None:
    """Open the shared study, warm up, wait for the others, then run ``n`` ask+tell (or as many as
    ``budget_s`` seconds allow) and report. The workers start their first ask together, as
    workers launched side by side would."""
    if library == "optuna":
        quiet_optuna()
    kind = "sqlite"
    errors: list[str] = []
    try:
        study = open_tunelab(kind, Path(path), name, load=True) if library == "tunelab" \
            else open_optuna(kind, Path(path), name, load=True, seed=index)
        step = stepper(library, form)
        barrier.wait()
        for _ in range(WARMUP):
            step(study)
        barrier.wait()
    except Exception as err:  # a worker that cannot start is a result, not a crash of the benchmark
        barrier.abort()
        results.put({"index": index, "done": 0, "errors": [f"setup: {type(err).__name__}: {err}"],
                     "start": math.nan, "end": math.nan})
        return
    done, start = 0, time.time()
    for _ in range(n):
        try:
            step(study)
            done += 1
        except Exception as err:  # counted: lock errors are what this section looks for
            errors.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        if time.time() - start > budget_s:
            break
    results.put({"index": index, "done": done, "errors": errors, "start": start, "end": time.time()})


def time_processes(library: str, procs: int, n: int, workdir: Path, form: str, budget_s: float,
                   round_: int = 0) -> dict[str, Any]:
    """``procs`` spawned processes each run ``n`` ask+tell on one fresh SQLite study."""
    name = f"{library}-shared-{procs}p-{round_}"
    path = workdir / f"{name}.db"
    opener(library)("sqlite", path, name)  # created here, loaded by every worker
    gc.collect()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(library, str(path), name, n, budget_s, i, form, barrier,
                                                       results))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [e for r in reports for e in r["errors"]]
    done = sum(r["done"] for r in reports)
    ran = [r for r in reports if math.isfinite(r["start"])]
    wall = max(r["end"] for r in ran) - min(r["start"] for r in ran) if ran else 0.0
    completed, total, distinct = count_completed(library, "sqlite", path, name)
    return {"library": library, "storage": "sqlite", "processes": procs, "trials_per_process": n,
            "timed_trials": done, "trials_per_s": done / wall if wall > 0 else math.nan,
            "errors": len(errors), "lock_errors": sum("locked" in e.lower() for e in errors),
            "first_errors": sorted(set(errors))[:3], "completed": completed, "expected": procs * WARMUP + done,
            "all_trials": total, "distinct_configs": distinct}


#: Two-process rounds for tunelab: a run lasts about a second, and on a small machine one run's
#: throughput varies by 10-20%; the median of alternated rounds compares like with like.
ROUNDS = 5


def median_run(runs: list[dict]) -> dict:
    """The run of median throughput, with every run's throughput, and errors and losses summed
    over all of them (one lost trial in any run is a failure)."""
    ordered = sorted(runs, key=lambda r: r["trials_per_s"])
    out = dict(ordered[len(ordered) // 2])
    out.update(rates=[r["trials_per_s"] for r in runs], errors=sum(r["errors"] for r in runs),
               lost=sum(r["expected"] - r["completed"] for r in runs))
    return out


# -- report ------------------------------------------------------------------------------------------
def find(rows: list[dict], **match) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def targets(rows: list[dict], shared: list[dict], sizes: list[int]) -> list[tuple[str, bool, str]]:
    out = []
    for n in sizes:
        mine, theirs = find(rows, library="tunelab", storage="memory", planned=n), \
            find(rows, library="optuna", storage="memory", planned=n)
        if mine and theirs:
            out.append((f"memory random ask+tell <= Optuna's ({n} trials)",
                        mine["ms_per_trial"] <= theirs["ms_per_trial"],
                        f"{mine['ms_per_trial']:.3f} ms vs {theirs['ms_per_trial']:.3f} ms"))
    for n in sizes:
        mine, theirs = find(rows, library="tunelab", storage="sqlite", planned=n), \
            find(rows, library="optuna", storage="sqlite", planned=n)
        if mine and theirs:
            ratio = mine["trials_per_s"] / theirs["trials_per_s"]
            out.append((f"SQLite throughput >= 5x Optuna's SQLite ({n} trials)", ratio >= 5.0,
                        f"{mine['trials_per_s']:.0f}/s vs {theirs['trials_per_s']:.0f}/s = {ratio:.1f}x"))
    one, two = find(shared, library="tunelab", processes=1), find(shared, library="tunelab", processes=2)
    if one and two:
        ok = (two["trials_per_s"] > one["trials_per_s"] and two["errors"] == 0 and one["errors"] == 0
              and one.get("lost", 0) == 0 and two.get("lost", 0) == 0)
        out.append(("2 processes: more throughput than 1 (median run), 0 errors, no trial lost", ok,
                    f"{one['trials_per_s']:.0f}/s -> {two['trials_per_s']:.0f}/s, errors {two['errors']}, "
                    f"lost {one.get('lost', 0) + two.get('lost', 0)}"))
    return out


def print_report(rows: list[dict], shared: list[dict], checks: list[tuple[str, bool, str]], form: str,
                 have_optuna: bool) -> None:
    print(f"\n{'library':<8} {'storage':<8} {'trials':>6} {'ms/trial':>9} {'last100':>8} {'trials/s':>9} "
          f"{'create ms':>9}")
    for r in rows:
        trials = f"{r['trials']}*" if r["capped"] else str(r["trials"])
        print(f"{r['library']:<8} {r['storage']:<8} {trials:>6} {r['ms_per_trial']:>9.3f} "
              f"{r['ms_last_100']:>8.3f} {r['trials_per_s']:>9.0f} {r['create_ms']:>9.1f}")
    print("ms/trial: mean ask+tell after warm-up; last100: mean of the last 100 (growth with study size)")
    if any(r["capped"] for r in rows):
        print("*: cut short by --row-budget; the row's numbers are over the trials that ran")
    if have_optuna:
        print(f"Optuna asked with {'study.ask(fixed distributions)' if form == 'fixed' else 'trial.suggest_*'}; "
              "journal = JournalStorage(JournalFileBackend)")
    if shared:
        print(f"\n{'library':<8} {'storage':<8} {'procs':>5} {'trials':>7} {'trials/s':>9} {'errors':>6} "
              f"{'completed':>9} {'expected':>8} {'distinct':>8}")
        for r in shared:
            print(f"{r['library']:<8} {r['storage']:<8} {r['processes']:>5} {r['timed_trials']:>7} "
                  f"{r['trials_per_s']:>9.0f} {r['errors']:>6} {r['completed']:>9} {r['expected']:>8} "
                  f"{r['distinct_configs']:>8}")
            if len(r.get("rates", [])) > 1:
                print(f"    runs (alternated): {', '.join(f'{rate:.0f}' for rate in r['rates'])} trials/s")
            for error in r["first_errors"]:
                print(f"    {error}")
        print("trials: timed ask+tell over all processes, of the median run; completed/expected include the "
              "warm-up trials; distinct: distinct configurations in the study")
    print()
    for label, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {detail}")
    if not have_optuna:
        print(OPTUNA_HINT)


def meta(args, have_optuna: bool) -> dict[str, Any]:
    import tunelab

    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "tunelab": tunelab.__version__, "quick": args.quick,
            "optuna_form": args.optuna_form}
    if have_optuna:
        import optuna

        info["optuna"] = optuna.__version__
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials: a smoke check, not a measurement")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    parser.add_argument("--dir", metavar="DIR", help="where the database files go (default: a temporary directory)")
    parser.add_argument("--optuna-form", choices=["fixed", "suggest"], default="fixed",
                        help="Optuna's ask: fixed distributions (like tunelab's) or define-by-run suggest_*")
    parser.add_argument("--row-budget", type=float, default=30.0, metavar="S",
                        help="stop a row after S seconds of timed trials (default 30)")
    args = parser.parse_args(argv)
    if not args.row_budget > 0:  # (0 or less ran one trial per row, without a word)
        parser.exit(2, f"overhead.py: error: --row-budget must be a positive number of seconds; got {args.row_budget:g}\n")
    if args.dir:  # made if missing; a path that cannot be a folder is one line before any timing, not a traceback
        try:
            Path(args.dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            parser.exit(2, f"overhead.py: error: --dir {args.dir}: cannot make the folder ({err.strerror or err})\n")
    import tunelab  # noqa: F401  (imported before any row is timed, as Optuna is: "create ms" times the study alone)

    try:
        quiet_optuna()
        have_optuna = True
    except ImportError:
        have_optuna = False
    sizes = [20, 200] if args.quick else [100, 1000]
    per_process = {"tunelab": 50 if args.quick else 2000, "optuna": 20 if args.quick else 100}
    libraries = ["tunelab", "optuna"] if have_optuna else ["tunelab"]
    rows, shared = [], []
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        for library in libraries:
            kinds = ["memory", "sqlite"] + (["journal"] if library == "optuna" else [])
            for kind in kinds:
                for n in sizes:
                    rows.append(time_sequential(library, kind, n, workdir, args.optuna_form, args.row_budget))
                    print(f"  {library} {kind} {n}: {rows[-1]['ms_per_trial']:.3f} ms/trial", file=sys.stderr)
        for library in libraries:
            runs: dict[int, list[dict]] = {1: [], 2: []}
            for round_ in range(1 if args.quick or library == "optuna" else ROUNDS):
                for procs in (1, 2):  # alternated, so that a busy spell of the machine hits both
                    runs[procs].append(time_processes(library, procs, per_process[library], workdir,
                                                      args.optuna_form, args.row_budget, round_))
                    print(f"  {library} sqlite x{procs}: {runs[procs][-1]['trials_per_s']:.0f} trials/s",
                          file=sys.stderr)
            shared += [median_run(runs[procs]) for procs in (1, 2)]
    checks = targets(rows, shared, sizes)
    info = meta(args, have_optuna)
    print(f"\nPython {info['python']}, {info['cpus']} CPUs, load average {info['load_average'][1]:.1f} "
          "(a busy machine makes the numbers noisy, the two-process ones most)")
    print_report(rows, shared, checks, args.optuna_form, have_optuna)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": info, "sequential": rows,
                                               "processes": shared,
                                               "targets": [{"target": t, "pass": ok, "detail": d}
                                                           for t, ok, d in checks]}, indent=2))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
