"""``tunelab nas show``: print a trial's cell architecture and draw it as SVG.

PyTorch is imported only when the command runs, so the CLI starts (and every other command
works) without the ``[nas]`` extra."""

from __future__ import annotations

import argparse
from pathlib import Path


from tunelab.cli import UsageError, load_study, output_file, storage_argument
from tunelab.commands.analysis import add_metric_option, chosen_metric, chosen_trial, metric_value


def register(subparsers: argparse._SubParsersAction) -> None:
    nas = subparsers.add_parser("nas", help="neural architecture search: inspect found architectures")
    commands = nas.add_subparsers(dest="nas_command", metavar="COMMAND", parser_class=type(nas))
    show = commands.add_parser("show", help="print a trial's cell (the best trial by default) and draw it as SVG")
    show.add_argument("name", help="the study")
    show.add_argument("--trial", type=int, default=None, help="trial number (default: the best trial)")
    show.add_argument("-o", "--output", default=None, help="write the drawing to this .svg file")
    add_metric_option(show, "pick the best trial by")
    storage_argument(show)
    show.set_defaults(handler=show_architecture)
    nas.set_defaults(handler=lambda args: (nas.print_help(), 2)[1])


def show_architecture(args: argparse.Namespace) -> int:
    import tunelab as tl

    if args.output is not None and not args.output.lower().endswith(".svg"):
        raise UsageError(f"--output must name an .svg file; got {args.output!r}")
    # Reading needs no searcher: a plain one avoids rebuilding the recorded (perhaps torch-heavy) one.
    study = load_study(args.name, args.storage, searcher="random")
    try:
        from tunelab import nas
    except ImportError as err:
        raise UsageError(str(err)) from None
    # a study with several metrics has no single best trial (study.best refused with advice for
    # Python, not for this command): --trial N, or the best on --metric NAME
    trial = chosen_trial(study, args.trial, args.metric)
    metric = chosen_metric(study, args.metric)
    stored = trial.user_attrs.get("genotype")
    try:
        genotype = nas.Genotype.from_json(stored) if stored is not None else nas.Genotype.from_config(trial.config)
    except tl.SpaceError as err:
        raise UsageError(f"trial {trial.number} of study {study.name!r} holds no cell architecture ({err})") from None
    shown = metric_value(study, trial, metric)
    value = "-" if shown is None else f"{shown:.6g}"
    title = f"study {study.name}, trial {trial.number} ({trial.state.value}), {metric} = {value}"
    print(title)
    print(nas.describe(genotype))
    if args.output:
        Path(output_file(args.output)).write_text(nas.to_svg(genotype, title=title))
        print(f"wrote {args.output}")
    return 0
