"""The study file of ``tunelab run``: every key checked before any trial starts.

    name: resnet-lr
    command: "{python} train.py --lr {lr} --epochs {budget}"
    metric: val_accuracy
    mode: max
    space: {lr: {loguniform: [1.0e-6, 1.0e-1]}}
    report: {regex: 'epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)'}
    fidelity: {epochs: {min: 1, max: 30}}
    n_trials: 20

A wrong key, a wrong distribution, a placeholder that names nothing, a pattern that cannot
capture the metric: each is an error naming the file, the line and the key, raised here, so a
mistake costs a second instead of a wasted tuning run.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tunelab.api import _check_metrics, _check_name, check_setup, default_setup
from tunelab.distributions import Distribution
from tunelab.errors import ConfigError, SpaceError, is_plain_number
from tunelab.executors import EXECUTORS, make_executor
from tunelab.fidelity import Fidelity
from tunelab.schedulers import SCHEDULERS
from tunelab.script.outputs import JsonLines, RegexLines
from tunelab.script.paths import absolute, absolute_storage, base_folder, recordable_overrides
from tunelab.script.source import Document, KeyPath, apply_override, read_document
from tunelab.script.sections import parse_fidelity, parse_report
from tunelab.script.spacefile import parse_space
from tunelab.script.template import BUILTINS, Template, TemplateError, whole
from tunelab.script.wording import got, kind, written
from tunelab.searchers import SEARCHERS
from tunelab.space import Space
from tunelab.budgets import Budgets

#: Every key a study file may hold, with what it means (the did-you-mean hints draw on it).
KEYS = {
    "name": "the study's name (default: the file name without its suffix)",
    "command": "the command each trial runs, with {placeholders}",
    "metric": "the metric to optimise (or a list of metrics)",
    "mode": "min or max (one per metric)",
    "space": "parameter -> distribution, or {preset: NAME}",
    "searcher": "what to try next (default auto; random, sobol, grid, tpe, bo, ...)",
    "searcher_options": "options of the searcher",
    "scheduler": "how much to spend on each try (fifo, ...)",
    "scheduler_options": "options of the scheduler",
    "fidelity": "{NAME: {min: M, max: N, resumable: BOOL}}: the resource behind {budget}",
    "n_trials": "trials in the study in total",
    "timeout": "seconds the run may take",
    "target": "stop once the metric reaches this value",
    "patience": "stop after this many trials without improvement",
    "max_failures": "stop after this many failed trials",
    "workers": "trials run at the same time",
    "executor": "where trials run (inline, processes)",
    "gpus": "GPUs the worker processes share out, one each in turn ([0, 1] or '0,1')",
    "trial_timeout": "seconds a trial may run before it is killed",
    "kill_grace": "seconds between SIGTERM and SIGKILL when a trial is stopped",
    "max_retries": "times a trial whose worker died (a preempted machine) is run again (default 1)",
    "storage": "where the study is kept (sqlite:///tunelab.db)",
    "seed": "the study's seed",
    "report": "json (default) or {regex: PATTERN}: how to read reports from stdout",
    "result_file": "a JSON file the script writes with its final metrics",
    "workdir": "the folder the command runs in (default: the study file's folder)",
    "env": "extra environment variables for the command",
    "artifacts": "folder for the trials' logs (default: tunelab-artifacts next to the storage)",
    "enqueue": "configurations to try first (a baseline)",
}
REQUIRED = ("command", "metric", "mode", "space")
BUDGET_KEYS = ("n_trials", "timeout", "target", "patience", "max_failures")
DEFAULT_KILL_GRACE = 10.0


@dataclass
class StudyFile:
    path: Path
    name: str
    command: Template
    metrics: list[str]
    modes: list[str]
    space: dict[str, Distribution]
    reader: JsonLines | RegexLines
    workdir: Path
    searcher: str = "auto"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    scheduler: str = "fifo"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    fidelity: Fidelity | None = None
    budgets: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    executor: str | None = None
    gpus: list[str] | None = None  # None: each worker process sees every GPU
    trial_timeout: float | None = None
    kill_grace: float = DEFAULT_KILL_GRACE
    max_retries: int = 1
    storage: str | None = None
    seed: int | None = None
    result_file: Template | None = None
    env: dict[str, str] = field(default_factory=dict)
    artifacts: Path | None = None
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    #: The overrides it was loaded with, paths made absolute: what a study records to load it again.
    overrides: list = field(default_factory=list)


#: Keys whose value is the text written, in the file as after --set: a study named 123 is "123"
#: either way (and 007 is "007"), a folder named 2024 is no number.
TEXT_KEYS = frozenset({"name", "command", "storage", "workdir", "artifacts", "executor", "result_file"})
#: Keys holding NAME: text pairs, names and values read as written: an environment variable is
#: text, so ``VERSION: 1.10`` is "1.10" (YAML reads 1.1), ``X: 010`` "010" (YAML 1.1: 8).
TEXT_MAPS = frozenset({"env"})


def load_study_file(path: str | Path, overrides: Sequence[str | tuple[str, str]] = ()) -> StudyFile:
    """Read, override and validate a study file. ``overrides`` are ``key=value`` strings from
    --set, or (flag, ``key=value``) for another flag that sets a key (``--executor ray``)."""
    doc = read_document(path, TEXT_KEYS, TEXT_MAPS)
    for override in overrides:
        flag, assignment = override if isinstance(override, (tuple, list)) else (None, override)
        apply_override(doc, assignment, flag, TEXT_KEYS, TEXT_MAPS)
    study = _Checker(doc).study_file()
    study.overrides = recordable_overrides(doc, overrides, study)
    return study


class _Checker:
    def __init__(self, doc: Document):
        self.doc, self.data = doc, doc.data

    def fail(self, key: KeyPath | str, message: str) -> ConfigError:
        return self.doc.error(key if isinstance(key, tuple) else (key,), message)

    def study_file(self) -> StudyFile:
        data = self.data
        for key in data:
            if not isinstance(key, str):  # YAML 1.1: on, off, yes, no, ~ and numbers are not names
                spelled = next((k[0] for k in self.doc.lines if len(k) == 1 and k[0] not in data), str(key))
                raise self.fail(spelled, f"YAML reads this key as {kind(key)} ({written(key)}), not as a name: write "
                                         f"it in quotes, '{spelled}', if it is meant (known keys: {', '.join(KEYS)})")
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
                raise self.fail(key, f"unknown key{hint}")
        for key in REQUIRED:
            if key not in data:
                raise self.doc.error((), f"the key {key!r} is missing: {KEYS[key]}")
        space = parse_space(self.doc)
        metrics, modes = self._metrics()
        fidelity = parse_fidelity(self.doc, space)
        command = self._template("command", data["command"])
        result_file = self._template("result_file", [data["result_file"]]) if "result_file" in data else None
        for template, key in ((command, "command"), (result_file, "result_file")):
            if template is not None:
                self._check_placeholders(template, key, space, fidelity)
        study = StudyFile(
            path=self.doc.path, name=self._name(), command=command,
            metrics=metrics, modes=modes, space=space, reader=parse_report(self.doc, metrics, result_file is not None),
            workdir=self._workdir(), fidelity=fidelity, result_file=result_file,
            budgets=self._budgets(), env=self._env(), enqueue=self._enqueue(space),
            trial_timeout=self._seconds("trial_timeout"), kill_grace=self._seconds("kill_grace") or DEFAULT_KILL_GRACE,
            seed=self._seed(), storage=self._storage(), artifacts=self._path("artifacts"),
        )
        study.searcher, study.searcher_options = self._algorithm("searcher", SEARCHERS, "auto")
        study.scheduler, study.scheduler_options = self._algorithm("scheduler", SCHEDULERS, "fifo")
        if "searcher" not in data and study.scheduler == "auto":  # the default setup's searcher too
            study.searcher = default_setup(study.fidelity)[2] or "auto"
        study.workers, study.executor, study.gpus = self._executor()
        own = {"trial", "trial_dir", "checkpoint_dir"}  # placeholders that make the file a trial's own
        if result_file is not None and study.workers > 1 and not own & set(result_file.fields):
            raise self.fail("result_file", f"{result_file.text!r} is one file for all {study.workers} trials running at "
                                           "once, which overwrite each other's results: name a file of the trial's "
                                           "own, e.g. '{trial_dir}/result.json'")
        self._check_setup(study)
        study.max_retries = self.data.get("max_retries", 1)
        if not _is_whole(study.max_retries, 0):
            raise self.fail("max_retries", f"must be a whole number, 0 or more; {got(study.max_retries)}")
        if study.searcher != "grid" and not any(data.get(k) is not None for k in BUDGET_KEYS[:4]):
            raise self.doc.error((), "give n_trials, timeout, target or patience so that the run ends")
        return study

    # -- one method per key (or group of keys) -----------------------------------------------
    def _name(self) -> str:
        """Text, whatever it looks like (TEXT_KEYS); an empty ``name:`` is refused, not taken for
        "no name": the library would make up a new name each run, and --resume find none.
        ``name: null`` (or ``~``) is refused with it, while ``--set name=null`` names the study
        "null": unquoted in YAML, null is no value, but a shell argument is only ever text."""
        name = self.data.get("name", self.doc.path.stem)
        if name is None or name == "":
            raise self.fail("name", f"is empty: write the study's name, or leave the key out to name the study "
                                    f"after the file ({self.doc.path.stem!r})")
        if not isinstance(name, str):
            raise self.fail("name", f"must be text, the study's name; {got(name)}")
        try:
            return _check_name(name)
        except ConfigError:
            raise self.fail("name", f"{written(name)} cannot name a study: use letters, digits and . - _ @ + = : , "
                                    "(no spaces, not only dots, 200 bytes at most)") from None

    def _string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"must be text, not empty; {got(value)}")
        return value

    def _path(self, key: str) -> Path | None:
        """A folder written in the study file (see :mod:`tunelab.script.paths` for the rule)."""
        text = self._string(key)
        return absolute(text, base_folder(self.doc, key)) if text else None

    def _storage(self) -> str | None:
        url = self._string("storage")
        return absolute_storage(url.strip(), base_folder(self.doc, "storage")) if url else None

    def _metrics(self) -> tuple[list[str], list[str]]:
        metric, mode = self.data["metric"], self.data["mode"]
        names = metric if isinstance(metric, list) else [metric]
        if not names or not all(isinstance(m, str) and m for m in names):
            raise self.fail("metric", f"must be the name of a metric the script reports (e.g. val_accuracy) or a "
                                      f"list of names; {got(metric)}")
        twice = next((m for i, m in enumerate(names) if m in names[:i]), None)
        if twice is not None:
            raise self.fail("metric", f"names the metric {twice!r} twice")
        modes = mode if isinstance(mode, list) else [mode]
        if not modes or any(m not in ("min", "max") for m in modes):
            raise self.fail("mode", f"must be min or max (a list of them with a list of metrics); {got(mode)}")
        if isinstance(mode, list) and len(modes) != len(names):
            raise self.fail("mode", f"lists {len(modes)} mode(s) for {len(names)} metric(s); give one per metric")
        return _check_metrics(metric, mode)

    def _template(self, key: str, value: Any) -> Template:
        if key == "result_file" and not (isinstance(value[0], str) and value[0].strip()):  # '' is the workdir
            raise self.fail(key, f"must be text, a file name such as '{{trial_dir}}/result.json'; {got(value[0])}")
        if isinstance(value, list):
            bad = next((i for i, word in enumerate(value) if not isinstance(word, str)), None)
            if bad is not None:
                raise self.fail((key, bad), f"a word of the command must be text; {got(value[bad])}")
        elif not isinstance(value, str):
            raise self.fail(key, f"must be text (the command line) or a list of text (its words); {got(value)}")
        try:
            return Template(value)
        except TemplateError as err:
            raise self.fail(key, str(err)) from None

    def _check_placeholders(self, template: Template, key: str, space: dict, fidelity: Fidelity | None) -> None:
        builtins = set(BUILTINS) | ({fidelity.name} if fidelity else set())
        for name in space:
            if name in builtins:
                raise self.fail(("space", name), f"is also the name of a built-in placeholder {{{name}}}; rename it")
        for name in template.fields:
            if name == "budget" and fidelity is None:
                raise self.fail(key, "{budget} is the trial's fidelity level; declare it, "
                                     "e.g. fidelity: {epochs: {min: 1, max: 30}}")
            if name not in space and name not in builtins:
                close = difflib.get_close_matches(name, list(space) + list(builtins), n=1)
                hint = f"; did you mean {{{close[0]}}}?" if close else ""
                raise self.fail(key, f"placeholder {{{name}}} is not a parameter of the space{hint} "
                                     f"(parameters: {', '.join(space)}; built-ins: {', '.join(sorted(builtins))})")
        # Formats ({lr:.3f}) are tried now, not found wrong by a trial: on a few configurations, and
        # on every option of each choice and both ends of each range (a format that fits the
        # numbers of a choice and not its 'auto' failed trial 20 of a grid).
        sample = {name: "x" for name in BUILTINS} | {"seed": 0, "trial": 0}
        if fidelity is not None:
            sample["budget"] = sample[fidelity.name] = whole(fidelity.max)
        drawn = Space(space)
        tries = [drawn.sample(seed) for seed in range(8)]
        tries += [{**tries[0], name: value} for name in drawn.dimensions for value in drawn.params[name].grid(3)]
        for config in tries:
            try:
                template.render({**sample, **config})
            except TemplateError as err:
                raise self.fail(key, str(err)) from None

    def _budgets(self) -> dict[str, Any]:
        out = {}
        for key in BUDGET_KEYS:
            if key in self.data:
                value = self.data[key]
                allowed = {"timeout": "a number of seconds above 0", "target": "a number, the metric's value to reach"}
                fits = is_plain_number(value) and math.isfinite(value) and (key != "timeout" or value > 0) \
                    if key in allowed else _is_whole(value, 1)
                if value is not None and not fits:
                    raise self.fail(key, f"must be {allowed.get(key, 'a whole number, 1 or more')}; {got(value)}")
                try:
                    Budgets(**{key: self.data[key]}).validate()
                except ConfigError as err:
                    raise self.fail(key, str(err)) from None
                out[key] = self.data[key]
        return out

    def _seconds(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is not None and (not is_plain_number(value) or value <= 0):
            raise self.fail(key, f"must be a number of seconds above 0; {got(value)}")
        return value

    def _seed(self) -> int | None:
        seed = self.data.get("seed")
        if seed is not None and (not _is_whole(seed, 0) or seed >= 2**63):
            raise self.fail("seed", f"must be a whole number from 0 to {2**63 - 1}; {got(seed)}")
        return seed

    def _algorithm(self, key: str, registry, default: str) -> tuple[str, dict[str, Any]]:
        name = self.data.get(key, default)
        if not isinstance(name, str):
            raise self.fail(key, f"must name a {key}, one of {', '.join(registry.names())}; {got(name)}")
        try:
            if not (key == "scheduler" and isinstance(name, str) and name.strip().lower() == "auto"):
                registry.get(name)  # "auto": the default multi-fidelity setup (tunelab.api.default_setup)
        except ConfigError as err:
            raise self.fail(key, str(err)) from None
        options = self.data.get(f"{key}_options") or {}
        if not isinstance(options, dict):
            raise self.fail(f"{key}_options", f"must be a mapping of option: value; {got(options)}")
        return name.strip().lower(), options

    def _check_setup(self, study: StudyFile) -> None:
        """Options a searcher or scheduler does not take are refused here, with the file's line,
        not when the run starts: the scheduler is built first, so a mistake is pinned to its key."""
        space = Space.coerce(study.space)
        for key, searcher, options in (("scheduler", "random", None),
                                       ("searcher", study.searcher, study.searcher_options)):
            try:
                check_setup(space, study.metrics, study.modes, study.fidelity, searcher, options,
                            study.scheduler, study.scheduler_options)
            except ConfigError as err:
                raise self.fail(f"{key}_options" if f"{key}_options" in self.data else key, str(err)) from None

    def _executor(self) -> tuple[int, str | None, list[str] | None]:
        workers, executor, gpus = self.data.get("workers", 1), self.data.get("executor"), self.data.get("gpus")
        if not _is_whole(workers, 1):
            raise self.fail("workers", f"must be a whole number, 1 or more; {got(workers)}")
        if executor is not None and not isinstance(executor, str):
            raise self.fail("executor", f"must name an executor, one of {', '.join(EXECUTORS.names())}; "
                                        f"{got(executor)}")
        try:
            if executor is not None:
                EXECUTORS.get(executor)
            made = make_executor(executor, workers, None, None if gpus is None else {"gpus": gpus})
        except ConfigError as err:
            key = "gpus" if "gpus" in str(err) else "executor" if "executor" in self.data else "workers"
            raise self.fail(key, str(err)) from None
        return workers, executor, getattr(made, "gpus", None)

    def _workdir(self) -> Path:
        workdir = (self._path("workdir") or self.doc.path.parent).resolve()
        if not workdir.is_dir():
            where = "the current folder" if ("workdir",) in self.doc.overrides else "the study file's folder"
            raise self.fail("workdir", f"{workdir} is not a folder (a relative workdir starts from {where})")
        return workdir

    def _env(self) -> dict[str, str]:
        env = self.data.get("env") or {}
        if not isinstance(env, dict):
            raise self.fail("env", f"must be a mapping of NAME: value; {got(env)}")
        for name, value in env.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise self.fail(("env", str(name)), "is not a valid environment variable name (letters, digits "
                                                    "and _, not starting with a digit)")
            if value is None:  # a blank value is '' already (TEXT_MAPS); an unquoted null is no text
                raise self.fail(("env", name), "is null, YAML's no value: write '' for an empty variable, or "
                                               "'null' in quotes for the word")
            if not isinstance(value, str):  # a TOML number in an inline table, or a list
                hint = "" if isinstance(value, (dict, list)) else ": write it in quotes, as the variable should read"
                raise self.fail(("env", name), f"must be text; {got(value)}{hint}")
        return dict(env)

    def _enqueue(self, space: dict) -> list[dict[str, Any]]:
        configs = self.data.get("enqueue") or []
        if not isinstance(configs, list):
            raise self.fail("enqueue", f"must be a list of configurations, e.g. [{{{next(iter(space))}: ...}}]; "
                                       f"{got(configs)}")
        checked = Space(space)
        for i, config in enumerate(configs):
            if not isinstance(config, dict):
                raise self.fail(("enqueue", i), f"must be a mapping of parameter: value; {got(config)}")
            try:
                checked.validate(config, where="configuration")
            except SpaceError as err:
                raise self.fail(("enqueue", i), str(err)) from None
        return configs



def _is_whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least
