"""`tunelab reproduce STUDY TRIAL`: re-run a trial from its record and say what differs.

The exit code is 0 when the metric is reproduced within ``--tolerance`` (or a failed trial fails
again with the same error), 1 when it is not (so a script can check reproducibility), 2 for a
usage error."""

from __future__ import annotations

import argparse

from tunelab.cli import UsageError
from tunelab.commands.analysis import console, finish_parser, load_study


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reproduce", help="re-run one trial from its record; show what differs")
    parser.add_argument("name")
    parser.add_argument("trial", type=int)
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest absolute metric difference that still counts as reproduced (default 0)")
    finish_parser(parser, run, json_output=False)


def run(args: argparse.Namespace) -> int:
    from tunelab.analysis.reproduce import reproduce

    if not args.tolerance >= 0:  # NaN too
        raise UsageError(f"--tolerance is the largest difference that still counts as reproduced, >= 0; "
                         f"got {args.tolerance}")
    result = reproduce(load_study(args), args.trial)
    console.print(result.report(), soft_wrap=True, markup=False)
    same = result.failed_alike or result.difference is not None and abs(result.difference) <= args.tolerance
    return 0 if same else 1
