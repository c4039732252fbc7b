"""`tunelab sensitivity STUDY`: vary each parameter alone around the best trial's config."""

from __future__ import annotations

import argparse

from rich.markup import escape

from tunelab.cli import output_file
from tunelab.commands.analysis import add_rerun_options, console, finish_parser, metric_mode, rerun_target, table
from tunelab._json import pretty


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sensitivity", help="one parameter at a time around a trial's config")
    add_rerun_options(parser, "start from", "read from each run (and whose best trial to start from)")
    parser.add_argument("--points", type=int, default=7, help="values per parameter (default %(default)s)")
    parser.add_argument("--html", default=None, help="also write the plot to this HTML file")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis.sensitivity import sensitivity

    if args.html:
        output_file(args.html, "--html", (".html", ".htm"))  # before the re-runs, whose results a bad path would lose
    with rerun_target(args) as (study, trial, objective, metric, change):
        result = sensitivity(objective, trial.config, study.space, args.points, metric=metric,
                             seed=trial.seed, budget=trial.budget)
    if args.json:
        print(pretty(result.to_json()))
    else:
        # after an edit to the objective's file the baseline is the trial's config under the new code
        edited = "" if change is None else f", re-run with {escape(change.file)} as edited since the study ran"
        console.print(f"baseline: trial {trial.number}, {escape(metric)} = {result.baseline_value:.6g} "
                      f"(seed {trial.seed}{edited})", soft_wrap=True)
        rows = []
        for name in result.ranking:
            sweep = result.sweeps[name]
            # the baseline's own setting competes too: a sweep's best may be worse than keeping it
            finite = [(m, v) for m, v in zip(sweep.metric, sweep.values) if m is not None] + \
                [(result.baseline_value, result.baseline[name])]
            best = (min if metric_mode(study, metric) == "min" else max)(finite, key=lambda mv: mv[0]) \
                if finite else (None, None)
            rows.append((name, sweep.spread, best[1], best[0], sum(m is None for m in sweep.metric)))
        console.print(table(["parameter", f"spread of {metric}", "best setting", metric, "failed"], rows,
                            title="sensitivity, most sensitive first"))
        if result.inactive:
            console.print(f"not varied, switched off in the baseline: {', '.join(result.inactive)}")
    if args.html:
        from tunelab.analysis.plots import save_html, sensitivity_figure

        console.print(f"wrote {save_html(sensitivity_figure(result), args.html)}")
    return 0
