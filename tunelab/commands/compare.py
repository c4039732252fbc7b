"""`tunelab compare A B`: two studies side by side."""

from __future__ import annotations

import argparse

from tunelab.cli import load_study, output_file
from tunelab.commands.analysis import console, finish_parser, table
from tunelab.commands.core import print_table
from tunelab._json import pretty


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="two studies side by side: best values, configs, progress")
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--storage-b", default=None, help="storage of the second study (default: --storage)")
    parser.add_argument("--html", default=None, help="also write the best-so-far curves to this HTML file")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis.compare import compare_studies

    if args.html:
        output_file(args.html, "--html", (".html", ".htm"))
    a = load_study(args.first, args.storage)
    b = load_study(args.second, args.storage_b or args.storage)
    result = compare_studies(a, b)
    if args.json:
        print(pretty(result.to_json()))
    else:
        names = list(result.names)
        print_table(table(["", *names], result.summary, title="studies"))
        print_table(table(["best config", *names], result.configs))
        print_table(table(["best after n trials", *names], result.history))
    if args.html:
        from tunelab.analysis.plots import compare_figure, save_html

        console.print(f"wrote {save_html(compare_figure(a, b), args.html)}")
    return 0
