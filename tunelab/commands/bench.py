"""``tunelab bench``: run searchers on benchmark problems and compare them with their peers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tunelab.cli import UsageError, output_folder

console = Console(highlight=False, width=shutil.get_terminal_size((160, 24)).columns)

DEFAULT_SEARCHERS = "auto,tpe,bo,rf,random,optuna-random,optuna-tpe,optuna-gp,hyperopt-tpe"
DEFAULT_PROBLEMS = "branin,hartmann6,rosenbrock5,styblinski_tang8,ackley5,mixed,svm_digits"


def register(subparsers: argparse._SubParsersAction) -> None:
    from tunelab.benchmarks import PROBLEMS

    bench = subparsers.add_parser("bench", help="compare searchers on benchmark problems (and with Optuna, hyperopt)")
    bench.add_argument("--problems", default=DEFAULT_PROBLEMS,
                       help=f"comma-separated, of: {', '.join(PROBLEMS)} (default %(default)s; 'all' for every one)")
    bench.add_argument("--searchers", default=DEFAULT_SEARCHERS,
                       help="comma-separated; peers that are not installed are skipped (default %(default)s)")
    bench.add_argument("--trials", type=int, default=100, help="trials per run (default %(default)s)")
    bench.add_argument("--seeds", type=int, default=3, help="runs per searcher and problem (default %(default)s)")
    bench.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="parallel runs (default: CPUs)")
    bench.add_argument("--overhead-at", default="",
                       help="also time one ask+tell at these study sizes, e.g. 100,1000 (on hartmann6)")
    bench.add_argument("--resume", action="store_true",
                       help="keep the runs an earlier bench wrote to the output folder (same trials) and run the rest")
    bench.add_argument("-o", "--output", default="tunelab-bench",
                       help="folder for plots and raw runs (default %(default)s)")
    bench.add_argument("--multi-fidelity", action="store_true",
                       help="compare multi-fidelity schedulers instead: the same as 'tunelab bench-mf' (see its --help)")
    bench.set_defaults(handler=run_bench)


def _names(text: str, flag: str) -> list[str]:
    """A comma-separated list, each name once (a name given twice ran twice and doubled its timing)."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise UsageError(f"{flag} needs at least one name (comma-separated); got {text!r}")
    return names


def run_bench(args: argparse.Namespace) -> int:
    from tunelab.benchmarks import PROBLEMS
    from tunelab.benchmarks import report
    from tunelab.benchmarks.runner import available, check_runnable, check_searchers, run_all

    for flag in ("trials", "seeds", "processes"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1")
    problems = list(PROBLEMS) if args.problems == "all" else _names(args.problems, "--problems")
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        raise UsageError(f"unknown problem {unknown[0]!r}; known: {', '.join(PROBLEMS)}")
    sizes = _overhead_sizes(args.overhead_at)
    wanted = check_searchers(_names(args.searchers, "--searchers"))
    searchers = [s for s in wanted if available(s)]
    skipped = [s for s in wanted if s not in searchers]
    if not searchers:  # else an empty table, exit 0, and the output folder's runs wiped
        raise UsageError(f"none of the searchers can run here: {_not_installed(skipped)}")
    check_runnable(problems, searchers, args.trials)
    folder = Path(output_folder(args.output))
    if skipped:
        console.print(f"skipping {_not_installed(skipped)}")
    partial = folder / "runs.jsonl"  # each run as it ends, so an interrupted bench keeps its results
    earlier = _earlier_runs(partial) if args.resume else []
    kept = _matching(earlier, problems, searchers, args.seeds, args.trials)
    # The runs this bench does not repeat (other problems, searchers, seeds or trials) stay in the
    # file for a later --resume that names them: resuming with one new searcher lost its peers' runs.
    others = [run for run in earlier if not _repeats(run, problems, searchers, args.seeds, args.trials)]
    partial.write_text("".join(json.dumps(run.__dict__) + "\n" for run in [*others, *kept]), encoding="utf-8")
    if kept:
        console.print(f"keeping {len(kept)} runs from {partial}")
    total = len(problems) * len(searchers) * args.seeds
    done = [len(kept)]

    def progress(run) -> None:
        with partial.open("a", encoding="utf-8") as out:
            out.write(json.dumps(run.__dict__) + "\n")
        done[0] += 1
        console.print(f"[{done[0]}/{total}] {run.problem} {run.searcher} seed {run.seed}: "
                      f"best {run.best[-1]:.6g}, {1000 * run.overhead:.1f} ms/trial overhead")

    if sizes:
        _print_overheads(searchers, sizes)
    runs = kept + run_all(problems, searchers, args.seeds, args.trials, args.processes, on_done=progress,
                          done=[(r.problem, r.searcher, r.seed) for r in kept])
    # The last column is always the end of the runs: with --trials 30 or 200 it was @25 or @100.
    checkpoints = [t for t in (25, 50, 100) if t < args.trials] + [args.trials]
    _print_tables(runs, searchers, checkpoints, report)
    written = report.write_plots(runs, Path(args.output))
    console.print(f"convergence plots: {', '.join(str(p) for p in written)}")
    return 0


def _print_tables(runs, searchers, checkpoints, report) -> None:
    by_problem = report.curves(runs)
    for problem, by in by_problem.items():
        table = Table(title=f"{problem}: best value, mean ± std over seeds", title_justify="left")
        table.add_column("searcher")
        for t in checkpoints:
            table.add_column(f"@{t}", justify="right")
        for name in searchers:
            if name in by:
                table.add_row(name, *(f"{report.at(by[name], t).mean():.4g} ± {report.at(by[name], t).std():.2g}"
                                      for t in checkpoints))
        console.print(table)
    summary = Table(title="mean rank across problems (1 = best) and optimiser overhead", title_justify="left")
    summary.add_column("searcher")
    ranks = {t: report.mean_ranks(runs, t) for t in checkpoints}
    for t in checkpoints:
        summary.add_column(f"rank @{t}", justify="right")
    summary.add_column("ms/trial", justify="right")
    cost = report.overheads(runs)
    for name in sorted(searchers, key=lambda s: ranks[checkpoints[-1]].get(s, 99)):
        summary.add_row(name, *(f"{ranks[t][name]:.2f}" for t in checkpoints), f"{1000 * cost[name]:.1f}")
    console.print(summary)


def _kept_runs(path: Path, problems: list[str], searchers: list[str], seeds: int, trials: int) -> list:
    """The runs of an earlier bench that this one would repeat: same problem, searcher, seed and trials."""
    return _matching(_earlier_runs(path), problems, searchers, seeds, trials)


def _matching(runs: list, problems: list[str], searchers: list[str], seeds: int, trials: int) -> list:
    """Of ``runs``, those this bench would repeat, the last of each (problem, searcher, seed)."""
    kept = {(run.problem, run.searcher, run.seed): run for run in runs
            if _repeats(run, problems, searchers, seeds, trials)}
    return list(kept.values())


def _repeats(run, problems: list[str], searchers: list[str], seeds: int, trials: int) -> bool:
    return run.problem in problems and run.searcher in searchers and run.seed < seeds and len(run.best) == trials


def _earlier_runs(path: Path) -> list:
    """Every run an earlier bench wrote to ``path``, less a last line cut off mid-write."""
    from tunelab.benchmarks.runner import Run

    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((number for number, line in enumerate(lines, 1) if line.strip()), default=0)
    runs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            runs.append(Run(**json.loads(line)))
        except (ValueError, TypeError):
            if number == last:  # a bench killed while writing its last run: that run is run again
                console.print(f"--resume: skipping line {number} of {path}, the last, cut off (its run runs again)",
                              soft_wrap=True, markup=False)
                continue
            raise UsageError(f"--resume: line {number} of {path} is not a benchmark run") from None
    return runs


def _not_installed(skipped: list[str]) -> str:
    """``skipped`` peers and the packages that would let them run."""
    from tunelab.benchmarks.runner import EXTERNAL

    packages = sorted({EXTERNAL[name] for name in skipped} | ({"torch"} if "optuna-gp" in skipped else set()))
    return f"{', '.join(skipped)} (not installed: pip install {' '.join(packages)})"


def _overhead_sizes(text: str) -> list[int]:
    """The study sizes of ``--overhead-at`` (checked before any run starts, so a typo costs nothing)."""
    if not text:
        return []
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--overhead-at takes positive trial counts like 100,1000; got {text!r}")
    return sizes


def _print_overheads(searchers, sizes: list[int]) -> None:
    from tunelab.benchmarks.overhead import overhead_at

    table = Table(title="ask + tell at N trials (ms, median of 5, hartmann6)", title_justify="left")
    table.add_column("searcher")
    for n in sizes:
        table.add_column(f"N={n}", justify="right")
    for name in searchers:
        if name.startswith("hyperopt"):
            continue
        table.add_row(name, *(f"{1000 * overhead_at(name, n):.1f}" for n in sizes))
    console.print(table)
