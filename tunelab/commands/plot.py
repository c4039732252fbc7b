"""`tunelab plot STUDY --kind history -o history.html`: a figure as a self-contained page (or PNG)."""

from __future__ import annotations

import argparse

from tunelab.cli import UsageError, output_file
from tunelab.commands.analysis import console, finish_parser, load_study

KINDS = ["history", "parallel", "slice", "contour", "curves", "cost", "importance"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="save a figure of a study as HTML (or PNG with kaleido)")
    parser.add_argument("name")
    parser.add_argument("--kind", choices=KINDS, default="history")
    parser.add_argument("-o", "--output", required=True, help="file to write: .html (self-contained) or .png")
    finish_parser(parser, run, json_output=False)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis import plots
    from tunelab.analysis.importance import importance

    output_file(args.output)
    if not args.output.lower().endswith((".html", ".htm", ".png")):
        raise UsageError(f"-o {args.output}: plots are written as .html (self-contained) or .png; name such a file")
    study = load_study(args)
    fig = plots.importance_figure(importance(study)) if args.kind == "importance" else plots.FIGURES[args.kind](study)
    save = plots.save_png if args.output.lower().endswith(".png") else plots.save_html
    console.print(f"wrote {save(fig, args.output)}")
    return 0
