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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tunelab.api import _check_metrics, _check_name, check_setup, default_setup
from tunelab.distributions import Distribution
from tunelab.errors import ConfigError, SpaceError
from tunelab.executors import EXECUTORS, make_executor
from tunelab.fidelity import Fidelity
from tunelab.schedulers import SCHEDULERS
from tunelab.script.outputs import JsonLines, RegexLines
from tunelab.script.source import Document, KeyPath, apply_override, read_document
from tunelab.script.spacefile import parse_space
from tunelab.script.template import BUILTINS, Template, TemplateError, format_value, whole
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
    "searcher": "what to try next (random, sobol, grid, ...)",
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
    searcher: str = "random"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    scheduler: str = "fifo"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    fidelity: Fidelity | None = None
    budgets: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    executor: str | None = None
    trial_timeout: float | None = None
    kill_grace: float = DEFAULT_KILL_GRACE
    max_retries: int = 1
    storage: str | None = None
    seed: int | None = None
    result_file: Template | None = None
    env: dict[str, str] = field(default_factory=dict)
    artifacts: Path | None = None
    enqueue: list[dict[str, Any]] = field(default_factory=list)


#: Keys whose --set value is taken as text, not parsed (a study named 123 is "123").
TEXT_KEYS = frozenset({"name", "command", "storage", "workdir", "artifacts", "executor"})


def load_study_file(path: str | Path, overrides: Sequence[str | tuple[str, str]] = ()) -> StudyFile:
    """Read, override and validate a study file. ``overrides`` are ``key=value`` strings from
    --set, or (flag, ``key=value``) for another flag that sets a key (``--executor ray``)."""
    doc = read_document(path)
    for override in overrides:
        flag, assignment = override if isinstance(override, (tuple, list)) else (None, override)
        apply_override(doc, assignment, flag, TEXT_KEYS)
    return _Checker(doc).study_file()


class _Checker:
    def __init__(self, doc: Document):
        self.doc, self.data = doc, doc.data

    def fail(self, key: KeyPath | str, message: str) -> ConfigError:
        return self.doc.error(key if isinstance(key, tuple) else (key,), message)

    def study_file(self) -> StudyFile:
        data = self.data
        for key in data:
            if not isinstance(key, str):  # YAML 1.1: on, off, yes, no, ~ and numbers are not names
                written = next((k[0] for k in self.doc.lines if len(k) == 1 and k[0] not in data), str(key))
                raise self.fail(written, f"YAML reads this key as {key!r}, not a name: quote it if it is meant "
                                         f"(known keys: {', '.join(KEYS)})")
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
                raise self.fail(key, f"unknown key{hint}")
        for key in REQUIRED:
            if key not in data:
                raise self.doc.error((), f"the key {key!r} is missing ({KEYS[key]})")
        space = parse_space(self.doc)
        metrics, modes = self._metrics()
        fidelity = self._fidelity(space)
        command = self._template("command", data["command"])
        result_file = self._template("result_file", [data["result_file"]]) if "result_file" in data else None
        for template, key in ((command, "command"), (result_file, "result_file")):
            if template is not None:
                self._check_placeholders(template, key, space, fidelity)
        study = StudyFile(
            path=self.doc.path, name=self._name(), command=command,
            metrics=metrics, modes=modes, space=space, reader=self._reader(metrics, result_file),
            workdir=self._workdir(), fidelity=fidelity, result_file=result_file,
            budgets=self._budgets(), env=self._env(), enqueue=self._enqueue(space),
            trial_timeout=self._seconds("trial_timeout"), kill_grace=self._seconds("kill_grace") or DEFAULT_KILL_GRACE,
            seed=self._seed(), storage=self._string("storage"),
            artifacts=Path(self._string("artifacts")) if "artifacts" in data else None,
        )
        study.searcher, study.searcher_options = self._algorithm("searcher", SEARCHERS, "random")
        study.scheduler, study.scheduler_options = self._algorithm("scheduler", SCHEDULERS, "fifo")
        if "searcher" not in data and study.scheduler == "auto":  # the default setup's searcher too
            study.searcher = default_setup(study.fidelity)[2] or "auto"
        study.workers, study.executor = self._executor()
        own = {"trial", "trial_dir", "checkpoint_dir"}  # placeholders that make the file a trial's own
        if result_file is not None and study.workers > 1 and not own & set(result_file.fields):
            raise self.fail("result_file", f"{result_file.text!r} is one file for all {study.workers} trials running at "
                                           "once, which overwrite each other's results: name a file of the trial's "
                                           "own, e.g. '{trial_dir}/result.json'")
        self._check_setup(study)
        study.max_retries = self.data.get("max_retries", 1)
        if isinstance(study.max_retries, bool) or not isinstance(study.max_retries, int) or study.max_retries < 0:
            raise self.fail("max_retries", f"must be a whole number >= 0; got {study.max_retries!r}")
        if study.searcher != "grid" and not any(data.get(k) is not None for k in BUDGET_KEYS[:4]):
            raise self.doc.error((), "give n_trials, timeout, target or patience so that the run ends")
        return study

    # -- one method per key (or group of keys) -----------------------------------------------
    def _name(self) -> str:
        name = self.data.get("name", self.doc.path.stem)
        try:
            return _check_name(name)
        except ConfigError as err:
            raise self.fail("name", str(err)) from None

    def _string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"must be a non-empty string; got {value!r}")
        return value

    def _metrics(self) -> tuple[list[str], list[str]]:
        try:
            _check_metrics(self.data["metric"], "max")
        except ConfigError as err:
            raise self.fail("metric", str(err)) from None
        try:
            return _check_metrics(self.data["metric"], self.data["mode"])
        except ConfigError as err:
            raise self.fail("mode", str(err)) from None

    def _template(self, key: str, value: Any) -> Template:
        if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(t, str) for t in value)):
            raise self.fail(key, f"must be a string or a list of strings; got {value!r}")
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

    def _reader(self, metrics: list[str], result_file: Template | None) -> JsonLines | RegexLines:
        spec = self.data.get("report", "json")
        if spec == "json":
            return JsonLines()
        if not isinstance(spec, dict) or set(spec) != {"regex"} or not isinstance(spec["regex"], str):
            raise self.fail("report", f"must be json or {{regex: PATTERN}} with named groups; got {spec!r}")
        try:
            reader = RegexLines(spec["regex"])
        except re.error as err:
            raise self.fail(("report", "regex"), f"not a valid regular expression: {err}") from None
        if not reader.metrics:
            raise self.fail(("report", "regex"), "has no named group for a metric; write e.g. "
                                                 "'epoch (?P<step>\\d+) acc (?P<accuracy>[\\d.]+)'")
        missing = [m for m in metrics if m not in reader.metrics]
        if missing and result_file is None:
            raise self.fail(("report", "regex"), f"captures {', '.join(reader.metrics)} but not the metric "
                                                 f"{missing[0]!r}; name a group (?P<{missing[0]}>...)")
        return reader

    def _fidelity(self, space: dict) -> Fidelity | None:
        spec = self.data.get("fidelity")
        if spec is None:
            return None
        example = "e.g. {epochs: {min: 1, max: 30}}"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise self.fail("fidelity", f"must name one resource with its range, {example}; got {spec!r}")
        (name, bounds), = spec.items()
        key = ("fidelity", name)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise self.fail("fidelity", f"the resource's name must be an identifier such as epochs; got {name!r}")
        if name in space:
            raise self.fail(key, f"{name!r} is also a parameter of the space; the budget cannot be both")
        if name in BUILTINS and name != "budget":
            raise self.fail(key, f"{{{name}}} is a built-in placeholder ({BUILTINS[name]}); name the resource "
                                 "otherwise, e.g. epochs")
        if not isinstance(bounds, dict) or not {"min", "max"} <= set(bounds) <= {"min", "max", "resumable"}:
            raise self.fail(key, f"needs min and max (and resumable: true when a run can go on from its "
                                 f"checkpoint), {example}; got {bounds!r}")
        low, high, resumable = bounds["min"], bounds["max"], bounds.get("resumable", False)
        if not all(_is_number(v) for v in (low, high)) or not 0 < low < high:
            raise self.fail(key, f"needs numbers 0 < min < max; got min={low!r}, max={high!r}")
        if not isinstance(resumable, bool):
            raise self.fail(key, f"resumable must be true or false; got {resumable!r}")
        return Fidelity(name, low, high, resumable)

    def _budgets(self) -> dict[str, Any]:
        out = {}
        for key in BUDGET_KEYS:
            if key in self.data:
                try:
                    Budgets(**{key: self.data[key]}).validate()
                except ConfigError as err:
                    raise self.fail(key, str(err)) from None
                out[key] = self.data[key]
        return out

    def _seconds(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is not None and (not _is_number(value) or value <= 0):
            raise self.fail(key, f"must be a positive number of seconds; got {value!r}")
        return value

    def _seed(self) -> int | None:
        seed = self.data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise self.fail("seed", f"must be a non-negative integer; got {seed!r}")
        return seed

    def _algorithm(self, key: str, registry, default: str) -> tuple[str, dict[str, Any]]:
        name = self.data.get(key, default)
        try:
            if not (key == "scheduler" and isinstance(name, str) and name.strip().lower() == "auto"):
                registry.get(name)  # "auto": the default multi-fidelity setup (tunelab.api.default_setup)
        except ConfigError as err:
            raise self.fail(key, str(err)) from None
        options = self.data.get(f"{key}_options") or {}
        if not isinstance(options, dict):
            raise self.fail(f"{key}_options", f"must be a mapping of option -> value; got {options!r}")
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

    def _executor(self) -> tuple[int, str | None]:
        workers, executor = self.data.get("workers", 1), self.data.get("executor")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise self.fail("workers", f"must be a positive integer; got {workers!r}")
        try:
            if executor is not None:
                EXECUTORS.get(executor)
            make_executor(executor, workers, None)
        except ConfigError as err:
            raise self.fail("executor" if "executor" in self.data else "workers", str(err)) from None
        return workers, executor

    def _workdir(self) -> Path:
        base = self.doc.path.resolve().parent
        text = self._string("workdir")
        workdir = (base / text).resolve() if text else base
        if not workdir.is_dir():
            raise self.fail("workdir", f"{workdir} is not a folder")
        return workdir

    def _env(self) -> dict[str, str]:
        env = self.data.get("env") or {}
        if not isinstance(env, dict):
            raise self.fail("env", f"must be a mapping of NAME -> value; got {env!r}")
        for name, value in env.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise self.fail(("env", str(name)), "is not a valid environment variable name")
            if isinstance(value, (dict, list)):
                raise self.fail(("env", name), f"must be a string or a number; got {value!r}")
        return {name: format_value(value) for name, value in env.items()}

    def _enqueue(self, space: dict) -> list[dict[str, Any]]:
        configs = self.data.get("enqueue") or []
        if not isinstance(configs, list):
            raise self.fail("enqueue", f"must be a list of configurations; got {configs!r}")
        checked = Space(space)
        for i, config in enumerate(configs):
            try:
                checked.validate(config, where="configuration")
            except SpaceError as err:
                raise self.fail(("enqueue", i), str(err)) from None
        return configs


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
