"""`tunelab seed-check STUDY`: re-run a trial's config with several seeds."""

from __future__ import annotations

import argparse
from typing import Any

from tunelab.commands.analysis import add_rerun_options, console, finish_parser, metric_value, rerun_target, table
from tunelab._json import pretty
from tunelab.trial import TrialState


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("seed-check", help="re-run a trial with k seeds: is the result stable?")
    add_rerun_options(parser, "re-run", "check (and whose best trial to re-run)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default %(default)s)")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis.seeds import ranked_configurations, seed_check

    with rerun_target(args) as (study, trial, objective, metric, change):
        # the spread is weighed against the lead of the best configuration over the next one (not
        # over its own repeat) on the same metric
        ranked = ranked_configurations(study, metric)
        check = seed_check(objective, trial.config, args.seeds, metric=metric, root_seed=study.seed,
                           first_seed=trial.seed, ranked_values=ranked, budget=trial.budget,
                           recorded=metric_value(study, trial, metric) if trial.state is TrialState.COMPLETED
                           else None)
        if check.top_gap is None:
            check.no_gap = _no_lead(study, metric, len(ranked))
    if args.json:
        print(pretty(check.to_json()))
        return 0
    console.print(f"trial {trial.number} re-run with {len(check.seeds)} seeds (the first is its own):")
    console.print(table(["seed", metric], list(zip(check.seeds, check.values))))
    console.print(check.verdict(edited=change.file if change else None), soft_wrap=True, markup=False)
    return 0


def _no_lead(study: Any, metric: str, ranked: int) -> str:
    """What the study lacks for a verdict: a second completed configuration. A multi-fidelity
    study can lack one after a few trials, its scheduler having stopped all but one early; their
    values, at a lower budget, do not compare with the re-runs at the trial's budget, so they are
    not used. Trials that repeat one configuration are one configuration."""
    counts = study.counts()
    stopped = sum(counts.get(state, 0) for state in ("pruned", "paused"))
    early = (f" ({stopped} more stopped or paused by its scheduler, at a lower budget than a full run's)"
             if stopped else "")
    completed = sum(metric_value(study, t, metric) is not None for t in study.trials
                    if t.state is TrialState.COMPLETED)
    repeated = ", all of one configuration" if completed > ranked == 1 else ""
    return (f"study {study.name!r} has {completed} completed trial(s) with a value of {metric}{repeated}{early}, "
            "and a lead needs two: run more of its trials (tunelab run --resume with a "
            "larger n_trials, or load_if_exists=True in Python), then check again")
