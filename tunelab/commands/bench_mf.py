"""``tunelab bench-mf``: multi-fidelity methods compared on learning-curve tasks in simulated time.

Prints, per task, the simulated time each method needs to finish a full-fidelity run as good as
the median best of 100 full-budget random trials, how much compute that took, and the speed-up
over random search; then how the default setup scales with simulated workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tunelab.cli import UsageError

if TYPE_CHECKING:
    from tunelab.benchmarks.compare import Outcome

console = Console(highlight=False, width=160)


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench-mf", help="compare multi-fidelity schedulers on simulated learning curves")
    bench.add_argument("--tasks", nargs="*", default=None,
                       help="tasks (default: every recorded table and synthetic family)")
    bench.add_argument("--methods", nargs="*", default=None, help="methods (default: all; see --list)")
    bench.add_argument("--seeds", type=int, default=5, help="repetitions per method (default %(default)s)")
    bench.add_argument("--first-seed", type=int, default=0,
                       help="the first seed: --seeds 40 --first-seed 40 runs seeds 40-79 (default %(default)s)")
    bench.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4],
                       help="simulated workers for the scaling line (default: 1 2 4; none: no scaling line)")
    bench.add_argument("--scaling", default="tunelab default", metavar="METHOD",
                       help="the method the scaling line runs with --workers workers (default: %(default)s)")
    bench.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="processes running the (method, seed) pairs at once (default: one per CPU, %(default)s)")
    bench.add_argument("--target-runs", type=int, default=None,
                       help="random searches of 100 trials whose median best is the target (default 20)")
    bench.add_argument("--reference-runs", type=int, default=None,
                       help="the fewest seeds full-budget random search, the reference, is timed on "
                            "(default 100: --seeds, then more)")
    bench.add_argument("--list", action="store_true", help="list the tasks and methods and exit")
    bench.set_defaults(handler=run_bench)


def _tasks(names: list[str] | None) -> list:
    """The tasks, each named once, all checked and loaded before the first one runs: a typo in
    the last name, or a damaged table file, must not cost the minutes of the others (a table is
    a few hundred kilobytes, and is checked whole as it loads)."""
    from tunelab.benchmarks.synthetic import SYNTHETIC
    from tunelab.benchmarks.tasks import recorded, recorded_names

    known = recorded_names() + list(SYNTHETIC)
    names = list(dict.fromkeys(names or known))
    for name in names:
        if name not in known:
            raise UsageError(f"unknown task {name!r}; known: {', '.join(known)}")
    return [SYNTHETIC[name]() if name in SYNTHETIC else recorded(name) for name in names]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _duel(default: Outcome, other: Outcome) -> str:
    """"23/40 (p 0.02)": the seeds on which the default needed less compute than ``other``, of
    those on which the two differed, and whether that split is more than chance."""
    duel = default.versus(other)
    return f"{duel.wins}/{duel.wins + duel.losses} (p {duel.p_value:.2g})"


def run_bench(args: argparse.Namespace) -> int:
    from tunelab.benchmarks.compare import DEFAULT, METHODS, OPTUNA_METHODS, TARGET_SEED_OFFSET, compare
    from tunelab.benchmarks.synthetic import SYNTHETIC
    from tunelab.benchmarks.tasks import recorded_names

    methods = list(METHODS) + list(OPTUNA_METHODS)
    if args.list:
        print("tasks:   " + ", ".join(recorded_names() + list(SYNTHETIC)))
        print("methods: " + ", ".join(methods))
        return 0
    if args.scaling in OPTUNA_METHODS:
        raise UsageError(f"--scaling: the Optuna baselines run one sequential worker; pick one of: {', '.join(METHODS)}")
    for option, given in (("--tasks", args.tasks), ("--methods", args.methods)):
        if given == []:  # leaving the option out means all of them; naming none is a slip
            raise UsageError(f"{option} needs at least one name (leave it out for all; --list lists them)")
    for name in [*(args.methods or []), args.scaling]:
        if name not in methods:
            raise UsageError(f"unknown method {name!r}; known: {', '.join(methods)}")
    for option, values in (("--seeds", [args.seeds]), ("--jobs", [args.jobs]), ("--workers", args.workers),
                           ("--target-runs", [args.target_runs]), ("--reference-runs", [args.reference_runs])):
        bad = [n for n in values if n is not None and n < 1]
        if bad:
            raise UsageError(f"{option} must be a positive integer; got {bad[0]}")
    args.methods = list(dict.fromkeys(args.methods)) if args.methods else args.methods  # each runs once
    args.workers = list(dict.fromkeys(args.workers))
    if args.first_seed < 0:
        raise UsageError(f"--first-seed must be an integer >= 0; got {args.first_seed}")
    if args.first_seed + args.seeds > TARGET_SEED_OFFSET:
        # Seeds from there on set the target and extend the reference: a method's run on one of
        # them is the very run that set its bar, and the reference would count a run twice.
        raise UsageError(f"--first-seed {args.first_seed} with --seeds {args.seeds} runs seeds up to "
                         f"{args.first_seed + args.seeds - 1}; the methods' seeds must stay below "
                         f"{TARGET_SEED_OFFSET:,}, where the target's and the reference's own seeds begin")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for task in _tasks(args.tasks):
        started = time.perf_counter()
        report = compare(task, seeds, args.methods, workers=tuple(args.workers), jobs=args.jobs,
                         target_runs=args.target_runs, reference_runs=args.reference_runs,
                         scaling_method=args.scaling)
        reference = report.outcomes["random (full budget)"]
        table = Table(title=f"{task.name}: {task.metric} ({task.mode}) to reach {report.target:.4g} "
                            f"(median best of 100 random full-budget trials; "
                            f"{task.share_reaching(report.target):.2%} of configurations reach it), "
                            f"median of {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) "
                            f"(random: {len(reference.times)}), 1 worker")
        default = report.outcomes.get(DEFAULT)
        paired = default is not None and default.applicable
        columns = ["method", "time to target (s)", "compute (s)", "compute vs random", "seeds reaching"]
        if paired:
            columns.append("default uses less compute on (sign test p)")
        for column in columns:
            table.add_column(column, justify="left" if column == "method" else "right")
        for name, outcome in report.outcomes.items():
            if not outcome.applicable:
                table.add_row(name, *["n/a"] * (len(columns) - 1))
                continue
            ratio = (f"{outcome.compute / reference.compute:.3f}" if outcome.compute and reference.compute else "-")
            row = [name, _fmt(outcome.time), _fmt(outcome.compute), ratio, f"{outcome.reached}/{len(outcome.times)}"]
            if paired:
                row.append(_duel(default, outcome) if name != DEFAULT else "")
            table.add_row(*row)
        console.print(table)
        _print_scaling(args.scaling, args.workers, task, report)
        console.print(f"[dim]({time.perf_counter() - started:.0f} s of real time)[/]\n")
    return 0


def _print_scaling(method: str, workers: list[int], task, report) -> None:
    """The scaling line: ``method`` with each number of simulated workers; "n/a" and why where
    the method does not apply to the task (as its row of the table says), rather than nothing."""
    from tunelab.benchmarks.compare import not_applicable

    if not report.scaling:
        reason = not_applicable(task, method) if workers else None
        if reason:
            console.print(f"{method} with simulated workers: n/a ({reason})")
        return
    base = report.scaling[1].time if 1 in report.scaling else None
    parts = []
    for n, outcome in report.scaling.items():
        speed = f", x{base / outcome.time:.2f}" if base and outcome.time else ""
        busy = statistics.median(outcome.busy) if outcome.busy else 1.0
        parts.append(f"{n} workers: {_fmt(outcome.time)} s ({busy:.1%} busy{speed})")
    console.print(f"{method} with simulated workers, time to target (workers' busy share, "
                  "speed-up): " + ", ".join(parts))
    lengths = [v for o in report.scaling.values() for v in o.lengths if v is not None]
    if lengths and base:
        length = statistics.median(lengths)
        console.print(f"  a run that reached the target takes {_fmt(length)} s by itself (median), "
                      f"and more workers cannot shorten one run: the speed-up cannot go much past x{base / length:.2f}")
