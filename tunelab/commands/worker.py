"""Commands for studies shared through one database: ``tunelab worker`` and ``tunelab migrate``.

A worker is the tuner's own loop on a study it loads: it claims waiting trials, numbers new ones
(spending the study's stored n_trials budget atomically, so any number of workers on any number
of machines never run more than asked), runs them, and stays while other workers still run
trials, so that it picks up the retries of those that die.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable

from tunelab.cli import UsageError, existing_storage, load_study, storage_argument
from tunelab.storage.base import hide_password


def register(subparsers: argparse._SubParsersAction) -> None:
    worker = subparsers.add_parser("worker", help="run trials of a stored study until its budget is spent")
    worker.add_argument("--study", required=True, help="name of the study (created by tl.tune or tl.create_study)")
    worker.add_argument("--objective", required=True, help="the objective as module:function, e.g. train:objective")
    worker.add_argument("--n-trials", type=int, default=None,
                        help="the study's total trial budget (default: the one stored with the study)")
    worker.add_argument("--workers", type=int, default=1, help="trials this worker runs at once (default 1)")
    worker.add_argument("--executor", default=None, help="inline, processes, ray or dask (default: inline for "
                                                         "one worker, processes for more)")
    worker.add_argument("--trial-timeout", type=float, default=None, help="seconds before a trial is stopped")
    worker.add_argument("--gpus", default=None, help="GPUs the worker processes share out, one each in turn, e.g. "
                                                     "0,1,2,3 (default: each sees every GPU; with --workers > 1)")
    worker.add_argument("--stale-after", type=float, default=None,
                        help="seconds without a heartbeat before another machine's trial counts as abandoned "
                             "(default 120)")
    worker.add_argument("--max-retries", type=int, default=1, help="re-runs of an abandoned trial (default 1)")
    worker.add_argument("--quiet", action="store_true", help="no progress display")
    storage_argument(worker)
    worker.set_defaults(handler=run_worker)

    migrate = subparsers.add_parser("migrate", help="upgrade a database written by an older tunelab")
    storage_argument(migrate)
    migrate.set_defaults(handler=run_migrate)


def load_objective(path: str) -> Callable:
    """``module:function`` (or ``module.function``), importable from the working directory."""
    if not isinstance(path, str) or not path.strip():
        raise UsageError("--objective must be module:function, e.g. train:objective")
    module_name, sep, attr = path.strip().partition(":")
    if not sep:
        module_name, _, attr = module_name.rpartition(".")
    if not module_name or not attr or not all(part.isidentifier() for part in module_name.split(".") + attr.split(".")):
        raise UsageError(f"--objective must be module:function, e.g. train:objective; got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"cannot import {module_name!r} for --objective {path!r}: {err}") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"module {module_name!r} has no {attr!r} (--objective {path!r})")
        target = getattr(target, part)
    if not callable(target):
        raise UsageError(f"--objective {path!r} is not a function")
    return target


def run_worker(args: argparse.Namespace) -> int:
    from tunelab.executors import make_executor
    from tunelab.budgets import Budgets
    from tunelab.tuner import STALE_SECONDS, Tuner

    for flag, value, least in (("--n-trials", args.n_trials, 1), ("--workers", args.workers, 1),
                               ("--max-retries", args.max_retries, 0)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be at least {least}; got {value}")
    for flag, value in (("--trial-timeout", args.trial_timeout), ("--stale-after", args.stale_after)):
        if value is not None and not value > 0:
            raise UsageError(f"{flag} must be a positive number of seconds; got {value}")
    study = load_study(args.study, args.storage)  # a typo makes no empty database, and is said with close names
    objective = load_objective(args.objective)
    from tunelab.tracking.objective import remember_objective

    remember_objective(study, objective)  # a study made with tl.create_study: its trials can be re-run
    settings = study.record.settings
    budgets = Budgets.from_settings(settings.get("budgets"))
    if args.n_trials is not None:
        budgets.n_trials = args.n_trials
    if all(b is None for b in (budgets.n_trials, budgets.timeout, budgets.target, budgets.patience, budgets.max_cost)) \
            and not hasattr(study.searcher, "size"):
        raise UsageError(f"study {args.study!r} has no stored budget; pass --n-trials N")
    trial_timeout = args.trial_timeout if args.trial_timeout is not None else settings.get("trial_timeout")
    if args.gpus is not None and (args.executor or ("inline" if args.workers == 1 else "processes")) != "processes":
        raise UsageError("--gpus shares GPUs out to local worker processes: give --workers 2 or more (or "
                         "--executor processes); on Ray, ask for GPUs as a trial's resources")
    executor = make_executor(args.executor, args.workers, trial_timeout,
                             {"gpus": args.gpus} if args.gpus is not None else None)
    tuner = Tuner(study, objective, executor, budgets, trial_timeout, progress=not args.quiet and None,
                  wait_for_others=True, stale_after=args.stale_after or STALE_SECONDS, max_retries=args.max_retries)
    reason = tuner.run()
    from tunelab.commands.core import counts_text

    print(f"worker done: {reason}; study {study.name}: {counts_text(study)}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from tunelab.storage import open_storage
    from tunelab.storage.schema import SCHEMA_VERSION

    storage = open_storage(existing_storage(args.storage))  # a mistyped path is not a new empty database
    before = getattr(storage, "migrated_from", None)
    storage.close()
    if before is None:
        print(f"{hide_password(args.storage)} is at schema version {SCHEMA_VERSION}: nothing to do")
    else:
        print(f"{hide_password(args.storage)} migrated from schema version {before} to {SCHEMA_VERSION}")
    return 0
