"""`tunelab importance STUDY`: which parameters explain the metric's variance."""

from __future__ import annotations

import argparse

from tunelab.commands.analysis import (add_metric_option, chosen_metric, console, finish_parser, load_study,
                                       note_default_metric, table)
from tunelab._json import pretty


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("importance", help="parameter importance (fANOVA over a random forest)")
    parser.add_argument("name")
    parser.add_argument("--method", choices=["fanova", "permutation"], default="fanova")
    add_metric_option(parser, "explain")
    parser.add_argument("--budget", type=float, default=None,
                        help="multi-fidelity studies: the fidelity level to explain (default: the highest "
                             "level that enough trials reached)")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis.importance import importance

    study = load_study(args)
    # as sensitivity, seed-check and plot: a wrong --metric is named with the study's metrics, and
    # the first metric of several is never explained without a word (on stderr: --json stays JSON)
    metric = chosen_metric(study, args.metric)
    note_default_metric(study, args.metric)
    result = importance(study, method=args.method, budget=args.budget, metric=metric)
    if args.json:
        print(pretty(result.to_json()))
        return 0
    at = "" if result.budget is None else f" at budget {result.budget:g}"
    rows = [(name, f"{share:.1%}") for name, share in result.scores.items()]
    if result.interactions is not None:
        rows.append(("(interactions)", f"{result.interactions:.1%}"))
    console.print(table(["parameter", "share of variance"], rows,
                        title=f"importance of {result.metric} ({result.method}, {result.n_trials} trials{at})"))
    screened = sum(1 for t in study.trials if t.reports)
    if args.budget is None and result.budget is not None and screened >= 2 * result.n_trials:
        # the trials that reached a high rung are those the rungs below kept: they vary less
        console.print(f"note: {result.n_trials} trials reached budget {result.budget:g}, the ones the rungs below "
                      f"kept; {screened} reached the first rung: --budget {study.fidelity.min:g} explains those")
    return 0
