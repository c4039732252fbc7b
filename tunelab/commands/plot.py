"""`tunelab plot STUDY --kind history -o history.html`: a figure as a self-contained page (or PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunelab.cli import UsageError, output_file
from tunelab.commands.analysis import add_metric_option, chosen_metric, console, finish_parser, load_study, \
    note_default_metric

KINDS = ["history", "parallel", "slice", "contour", "curves", "cost", "importance", "pareto"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="save a figure of a study as HTML (or PNG with kaleido)")
    parser.add_argument("name")
    parser.add_argument("--kind", choices=KINDS, default="history",
                        help="what to draw (default %(default)s); pareto: the front of a study with several metrics")
    add_metric_option(parser, "plot; --kind pareto takes two (--metric A --metric B), needed when the study "
                      "has more than two; --kind curves takes any metric the trials reported", action="append")
    parser.add_argument("-o", "--output", required=True, help="file to write: .html (self-contained) or .png")
    finish_parser(parser, run, json_output=False)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis import plots
    from tunelab.analysis.importance import importance

    # the suffix before output_file makes the folder it names; a folder given is refused there, as such
    if not args.output.lower().endswith((".html", ".htm", ".png")) and not Path(args.output).is_dir():
        raise UsageError(f"-o {args.output}: plots are written as .html (self-contained) or .png; name such a file")
    output_file(args.output)
    study = load_study(args)
    chosen = _curve_metrics(study, args.metric or []) if args.kind == "curves" else \
        [chosen_metric(study, name) for name in args.metric or []]
    if args.kind == "pareto":
        fig = plots.pareto_figure(study, _pareto_pair(study, chosen))
    elif args.kind == "cost" and chosen:
        raise UsageError("--kind cost plots what trials cost, no metric: leave out --metric")
    elif len(chosen) > 1:
        raise UsageError(f"--kind {args.kind} plots one metric; --metric was given {len(chosen)} times")
    else:
        metric = chosen[0] if chosen else None
        if args.kind == "cost":
            fig = plots.cost_figure(study)
        elif args.kind == "importance":
            fig = plots.importance_figure(importance(study, metric=metric))
        else:
            fig = plots.FIGURES[args.kind](study, metric=metric)
        if args.kind != "cost":
            note_default_metric(study, metric)
    save = plots.save_png if args.output.lower().endswith(".png") else plots.save_html
    console.print(f"wrote {save(fig, args.output)}")
    return 0


def _pareto_pair(study: Any, chosen: list[str]) -> list[str] | None:
    """The two metrics of --kind pareto, checked here for errors that name the flags (the
    figure's own errors name the library's arguments)."""
    names = ", ".join(study.metrics)
    if len(study.metrics) == 1:
        raise UsageError(f"--kind pareto: study {study.name!r} has one metric ({names}); a Pareto front needs two "
                         "or more")
    if not chosen and len(study.metrics) == 2:
        return None
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        first, second = study.metrics[:2]
        both = " (or neither, for both)" if len(study.metrics) == 2 else ""
        raise UsageError(f"--kind pareto draws two different metrics of study {study.name!r} ({names}); got "
                         f"{', '.join(chosen) or 'none'}: name two{both}, e.g. --metric {first} --metric {second}")
    return chosen


def _curve_metrics(study: Any, names: list[str]) -> list[str]:
    """The metrics of --kind curves: any the trials reported (a curve of train_loss is a curve
    too, though the study does not optimise it), checked against what they reported, so that a
    study without reports, or a name no trial reported, is said rather than drawn as an empty page."""
    reported = sorted({key for trial in study.trials for report in trial.reports for key in report.metrics})
    if not reported:
        raise UsageError(f"--kind curves: no trial of study {study.name!r} reported a learning curve (the objective "
                         f"calls trial.report(step, {study.metric}=...) to record one); there is nothing to draw")
    wanted = names or [study.metric]
    missing = [name for name in wanted if name not in reported]
    if missing:
        raise UsageError(f"--kind curves: no trial of study {study.name!r} reported {missing[0]!r}; its trials "
                         f"reported: {', '.join(reported)} (choose one with --metric NAME)")
    return names
