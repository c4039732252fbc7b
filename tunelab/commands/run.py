"""``tunelab run study.yaml``: tune any training script from the shell.

The first trial of a new study runs alone, as a check of the setup: if the script cannot start or
never reports the metric, the run stops there with a message that says what was seen, instead of
spending the whole budget on trials that all fail the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.markup import escape

from tunelab.cli import DEFAULT_STORAGE, UsageError
from tunelab.commands.core import _fmt, counts_text, param_text
from tunelab.errors import StudyNotFound, TunelabError
from tunelab.script.command import CommandObjective, ScriptFailed, ScriptOutputError, code_on_record
from tunelab.script.process import ExitOnSigterm
from tunelab.script.studyfile import KEYS, StudyFile, load_study_file
from tunelab.script.template import whole
from tunelab.storage import Storage, open_storage
from tunelab.tracking.artifacts import default_artifact_root
from tunelab.tracking.environment import capture_environment
from tunelab.tracking.callbacks import Callback
from tunelab.trial import TrialState

console = Console(highlight=False, width=shutil.get_terminal_size((160, 24)).columns)


class SetupFailed(TunelabError):
    """The first trial showed that the study's setup cannot work (no metric, no command)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = "\n".join(f"  {key:<18} {meaning}" for key, meaning in KEYS.items())
    run = subparsers.add_parser("run", help="tune a training script described by a study file (YAML or TOML)",
                                description="Tune a training script: each trial runs the study file's command "
                                            "and reads the metric from the script's output.",
                                epilog="study file keys (command, metric, mode, space are required, and one of "
                                       f"n_trials, timeout, target, patience):\n{keys}\n\n"
                                       "relative paths: written in the file (workdir, storage, artifacts), from the "
                                       "study file's folder;\ngiven here (--storage, --set), from the current folder; "
                                       "the command's own and result_file, from workdir\n\n"
                                       "example: tunelab run examples/study.yaml --set n_trials=20",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("file", help="the study file (.yaml, .yml or .toml)")
    run.add_argument("--resume", action="store_true", help="continue the existing study of this name")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key of the study file (repeatable), e.g. --set n_trials=20")
    run.add_argument("--executor", default=None, help="where trials run (overrides the file's executor:)")
    run.add_argument("--storage", default=None,
                     help="where the study is kept (default: the file's storage:, $TUNELAB_STORAGE, "
                          f"then {DEFAULT_STORAGE})")
    run.add_argument("--dry-run", action="store_true",
                     help="check the study file and print the first trial's command without running it")
    run.set_defaults(handler=run_study_file)


def artifacts_root(storage_url: str) -> Path:
    """Trials' logs live next to the database they belong to (or in the working folder)."""
    return default_artifact_root(storage_url)


def run_study_file(args: argparse.Namespace) -> int:
    import tunelab as tl

    overrides = list(args.overrides)
    overrides += [(f"--executor {args.executor}", f"executor={args.executor}")] if args.executor else []
    overrides += [(f"--storage {args.storage}", f"storage={args.storage}")] if args.storage else []
    study_file = load_study_file(args.file, overrides)
    url = study_file.storage or os.environ.get("TUNELAB_STORAGE") or DEFAULT_STORAGE
    root = study_file.artifacts or artifacts_root(url)
    artifacts = root / study_file.name
    objective = CommandObjective.from_study_file(study_file, artifacts)
    if args.dry_run:
        return _dry_run(study_file, objective)
    storage = open_storage(url)
    exists = _exists(storage, study_file.name)
    name, where = study_file.name, f"{url}"
    if exists and not args.resume:
        raise UsageError(f"a study named {name!r} already exists in {where}; add --resume to continue it, "
                         f"or give a new name (--set name=...)")
    if args.resume and not exists:
        raise UsageError(f"--resume: there is no study named {name!r} in {where} to continue; "
                         "leave out --resume to start it")
    if not exists and artifacts.is_dir() and any(artifacts.iterdir()):
        raise UsageError(f"{artifacts} holds the logs of an earlier study named {name!r}; "
                         "move or remove that folder, or give a new name (--set name=...)")

    study = tl.create_study(study_file.space, metric=study_file.metrics, mode=study_file.modes, name=name,
                            storage=storage, seed=study_file.seed, searcher=study_file.searcher,
                            scheduler=study_file.scheduler, searcher_options=study_file.searcher_options,
                            scheduler_options=study_file.scheduler_options, load_if_exists=args.resume,
                            artifact_dir=root, fidelity=study_file.fidelity,
                            environment=capture_environment(code_on_record(study_file.command, study_file.workdir)))
    artifacts = study.folder  # <root>/<name>, unless another database's study of that name holds it
    objective = CommandObjective.from_study_file(study_file, artifacts)
    storage.update_study(study.record.id, settings={
        "objective": f"command: {study_file.command}", "study_file": str(Path(args.file).resolve()),
        # reproduce, seed-check and sensitivity rebuild the same command, from any folder: the
        # paths given on this command line are recorded absolute (tunelab.script.paths)
        "study_file_overrides": study_file.overrides,
        "workdir": str(study_file.workdir), "artifacts": str(artifacts.resolve())})
    console.print(f"{'Continuing' if exists else 'Tuning'} [bold]{name}[/] ({escape(str(study_file.path))}): "
                  f"{study_file.metrics[0]} ({study_file.modes[0]}), searcher {study_file.searcher}, "
                  f"scheduler {study_file.scheduler}, {study_file.workers} worker(s), storage {escape(url)}")
    console.print(escape(f"command: {study_file.command}\nlogs:    {artifacts}/<trial>/"))

    def tune(**budgets) -> object:
        return tl.tune(objective, study_file.space, metric=study_file.metrics, mode=study_file.modes,
                       searcher=study_file.searcher, scheduler=study_file.scheduler,
                       searcher_options=study_file.searcher_options, scheduler_options=study_file.scheduler_options,
                       storage=storage, name=name, enqueue=study_file.enqueue, artifact_dir=root,
                       fidelity=study_file.fidelity, max_retries=study_file.max_retries, **budgets)

    budgets = dict(study_file.budgets)
    started = time.monotonic()
    with ExitOnSigterm(), _say_where_it_stopped(study, args.file, url):
        if not any(t.state is TrialState.COMPLETED or t.curve(study.metric) for t in study.trials):
            # Also on --resume while no trial has reported the metric yet: the fix may not have fixed it.
            console.print(f"a trial runs alone first, to check that the script reports {study_file.metrics[0]!r}")
            # With the study's own budgets, so that a scheduler plans its rungs for all of them
            # (under ASHA trial 0 runs to the lowest rung, not the full budget); stopped after it.
            known = {t.id for t in study.trials}
            if budgets.get("n_trials") is not None:
                # Trials that failed this check before (the script could not run): the fix the
                # message asks for must not find the budget spent on them.
                budgets["n_trials"] += sum(1 for t in study.trials if t.failed_itself)
            study = tune(**budgets, workers=1, progress=False, callbacks=[_StopAfterFirst()])
            solo = [t for t in study.trials if t.id not in known and t.state.finished]
            _check_first_trial(study, solo[0] if solo else None)
        if budgets.get("timeout") is not None:
            budgets["timeout"] -= time.monotonic() - started
        if budgets.get("timeout") is None or budgets["timeout"] > 0:
            study = tune(**budgets, workers=study_file.workers, executor=study_file.executor,
                         executor_options=None if study_file.gpus is None else {"gpus": study_file.gpus})
    return _summary(study, study_file, url)


@contextlib.contextmanager
def _say_where_it_stopped(study, file: str, url: str) -> Iterator[None]:
    """`kill` (a batch system's preemption) or Ctrl-C: the trials are cancelled and their scripts
    stopped on the way out; then the run says what the study holds and how to go on (it ended
    without a word, exit 143)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        flag = "" if url == DEFAULT_STORAGE else f" --storage {shlex.quote(url)}"
        console.print(f"\n[bold]{escape(study.name)}[/]: stopped; {counts_text(study)}")
        console.print(escape(f"go on with:  tunelab run {shlex.quote(file)} --resume{flag}"), soft_wrap=True)
        raise


class _StopAfterFirst(Callback):
    def on_trial_end(self, study, trial) -> None:
        study.stop()


def _exists(storage: Storage, name: str) -> bool:
    try:
        storage.get_study(name)
    except StudyNotFound:
        return False
    return True


def _check_first_trial(study, first) -> None:
    # A script that could not start, ran without delivering the metric, or crashed before its
    # first report of it (an import error, a wrong path) fails alike for every configuration.
    if first is not None and first.state is TrialState.FAILED and (first.error or "").startswith(
            (ScriptOutputError.__name__, ScriptFailed.__name__)) and not first.curve(study.metric):
        error = first.error.split(": ", 1)[1]
        logs = f" (stdout: {first.user_attrs['stdout']})" if "stdout" in first.user_attrs else ""
        raise SetupFailed(f"trial {first.number} failed: {error}{logs}. Stopped before spending the rest of the budget; "
                          "fix the study file or the script, then run again with --resume (trials that failed this "
                          "check do not count toward n_trials)")


def _dry_run(study_file: StudyFile, objective: CommandObjective) -> int:
    """The command of the study's first trial: asked of the same setup in memory (so the first
    enqueued configuration, and the budget the scheduler gives a first trial), run nowhere."""
    import tempfile

    import tunelab as tl

    with tempfile.TemporaryDirectory() as folder:
        study = tl.create_study(study_file.space, metric=study_file.metrics, mode=study_file.modes,
                                seed=study_file.seed, searcher=study_file.searcher,
                                searcher_options=study_file.searcher_options, scheduler=study_file.scheduler,
                                scheduler_options=study_file.scheduler_options, fidelity=study_file.fidelity,
                                n_trials=study_file.budgets.get("n_trials"), artifact_dir=folder, environment={})
        for config in study_file.enqueue:
            study.enqueue(config)
        trial = study.ask(wait=False)
    values = {**trial.config, "seed": trial.seed, "trial": 0, "study": study_file.name, "python": sys.executable,
              "trial_dir": f"{objective.artifacts}/0", "checkpoint_dir": f"{objective.artifacts}/0/checkpoint",
              "config_file": f"{objective.artifacts}/0/config.json"}
    if study_file.fidelity is not None:
        values["budget"] = values[study_file.fidelity.name] = whole(trial.budget or study_file.fidelity.max)
    console.print(f"study file {study_file.path} is valid: study {study_file.name!r}, "
                  f"{len(study_file.space)} parameter(s), metric {study_file.metrics[0]!r} ({study_file.modes[0]})")
    seeded = "" if study_file.seed is not None else " (its seed is drawn afresh: the file sets none)"
    console.print(escape(f"trial 0 would run, in {study_file.workdir}{seeded}:\n"
                         f"  {shlex.join(objective.command.render(values))}"))
    return 0


def _summary(study, study_file: StudyFile, url: str) -> int:
    console.print(f"\n[bold]{study.name}[/]: {counts_text(study)}")
    completed = [t for t in study.trials if t.state is TrialState.COMPLETED and t.value is not None]
    flag = "" if url == DEFAULT_STORAGE else f" --storage {shlex.quote(url)}"  # a hint to paste in a shell
    if not completed:
        failed = [t for t in study.trials if t.state is TrialState.FAILED]
        if failed:
            console.print(escape(f"no trial completed; the last error (trial {failed[-1].number}):\n{failed[-1].error}"))
        return 1
    if len(study.metrics) == 1:
        best = study.best
        console.print(f"best {study.metric}: {_fmt(best.value)} (trial {best.number})")
        console.print("best configuration: " + ", ".join(f"{escape(k)}={param_text(v)}" for k, v in best.config.items()))
        if "command" in best.user_attrs:
            console.print(escape(f"its command: {best.user_attrs['command']}"), soft_wrap=True)
    if url.strip().lower() in ("memory", ""):
        console.print("\nThe study lived in this process's memory only: run it with --storage sqlite:///PATH to keep it")
    else:
        console.print(escape(f"\nInspect it:  tunelab show {shlex.quote(study.name)}{flag}"), soft_wrap=True)
    return 0
