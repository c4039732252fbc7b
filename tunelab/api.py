"""Opening studies: create one, reopen one, list and delete them. Arguments are checked here,
at the boundary, so nothing malformed ever reaches storage."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tunelab.budgets import plain_number
from tunelab.errors import ConfigError, SetupWarning, StudyExists, StudyNotFound, check_count, \
    check_warm_metric, warn_caller
from tunelab.fidelity import Fidelity, coerce_fidelity
from tunelab.reloading import refuse_while_loading_script
from tunelab.schedulers import SCHEDULERS, make_scheduler
from tunelab.searchers import SEARCHERS, make_searcher
from tunelab.searchers.auto import keep_pick
from tunelab.space import Space
from tunelab.storage import MemoryStorage, Storage, StudyRecord, StudySummary, open_existing, open_storage
from tunelab.storage.base import hide_password
from tunelab.study import Study
from tunelab.tracking.artifacts import claim_study_folder, delete_study_files, folder_claims, release_study_folder, \
    resolve_artifact_root
from tunelab.tracking.cost import Prices, Resources
from tunelab.tracking.environment import capture_environment, code_path_of
from tunelab.tracking.objective import objective_settings, remember_objective
from tunelab.tracking.seeds import derive_seed, new_seed

_NAME = re.compile(r"^[\w.\-@+=:,]{1,200}$")


def _check_metrics(metric: str | Sequence[str], mode: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    metrics = [metric] if isinstance(metric, str) else list(metric) if isinstance(metric, (list, tuple)) else None
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ConfigError(f"metric must be a metric name such as 'accuracy' (or a list of names); got {metric!r}")
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"metric names must be distinct; got {metrics!r}")
    if mode is None:
        raise ConfigError("mode is required: 'min' for a loss or error, 'max' for an accuracy or score")
    modes = [mode] * len(metrics) if isinstance(mode, str) else list(mode)
    if len(modes) != len(metrics) or any(m not in ("min", "max") for m in modes):
        raise ConfigError(f"mode must be 'min' or 'max' (one per metric); got {mode!r}")
    return metrics, modes


def _check_name(name: str | None) -> str:
    if name is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"study-{stamp}-{secrets.token_hex(2)}"
    if not isinstance(name, str) or not _NAME.match(name) or len(name.encode()) > 200:
        # bytes too: the name is its folder's, and a file system takes 255 bytes (a taken folder gets "-2")
        raise ConfigError(f"study name must be 1-200 letters, digits or . - _ @ + = : , (no spaces; 200 bytes at "
                          f"most in UTF-8); got {name!r}")
    if not name.strip("."):  # '.' and '..' name folders already (an export would write beside its target)
        raise ConfigError(f"study name must hold more than dots; got {name!r}")
    return name


def _check_seed(seed: int | None) -> int:
    if seed is None:
        return new_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63); got {seed!r}")
    return seed


#: Rungs the default setup's ASHA keeps at most: with eta=3 and 81 epochs, 3, 9, 27 and 81. A
#: lower rung (1 epoch of 81) ranks runs on too little evidence and, where early rankings mislead,
#: prunes the runs that would have ended best; ``tunelab bench-mf`` measures the difference.
DEFAULT_MAX_RUNGS = 4


def default_setup(fidelity: Fidelity | None) -> tuple[str, dict[str, Any], str | None]:
    """(scheduler, its options, searcher) when the user names no scheduler (or ``"auto"``).

    Without a fidelity: plain black-box FIFO. With one: ASHA in promotion mode, BOHB style, with
    the multi-fidelity ``kde`` searcher, which learns from every rung reached and ranks runs by
    how far the scheduler let them go. Promotion, not stopping: a new trial is first run to the
    lowest rung only, so the budget goes to screening many configurations cheaply and the full
    budget only to those that earned it (for a fresh-run fidelity it is the only choice anyway).
    At most DEFAULT_MAX_RUNGS rungs, and ``adaptive``: a rung whose best trials lose their order
    at the next rung stops deciding, and new trials start above it (where learning curves cross,
    cheap rungs would otherwise keep pruning the runs that end best). And ``forecast``: a rung
    ranks its trials by the value their learning curves are forecast to reach at the full
    budget, so that a slow starter still falling fast is not ranked below a fast starter that has
    levelled off. This is the setup ``tunelab bench-mf`` reports as "tunelab default".
    """
    if fidelity is None:
        return "fifo", {}, None
    return "asha", {"promotion": True, "max_rungs": DEFAULT_MAX_RUNGS, "adaptive": True, "forecast": True}, "kde"


def resolve_setup(searcher: Any, scheduler: Any, scheduler_options: Mapping[str, Any] | None,
                  fidelity: Fidelity | None) -> tuple[Any, Any, Mapping[str, Any] | None]:
    """(searcher, scheduler, scheduler options) that a study with these arguments gets: no
    scheduler (or "auto") is the default setup for the fidelity; no searcher is the
    scheduler's choice (``auto``, or a model for BOHB)."""
    if scheduler is None or (isinstance(scheduler, str) and scheduler.strip().lower() == "auto"):
        scheduler, defaults, preferred = default_setup(fidelity)
        given = dict(scheduler_options or {})
        if given and fidelity is None:
            raise ConfigError(f"scheduler_options {sorted(given)} are for a multi-fidelity scheduler, and without a "
                              "fidelity the study has none (FIFO); declare one, e.g. fidelity=tl.fidelity('epochs', "
                              "min=1, max=81, resumable=True), or name the scheduler")
        if given.get("promotion") is False or given.get("brackets", 1) != 1:
            defaults.pop("adaptive", None)  # a default that only works with promotion and one bracket
        scheduler_options = {**defaults, **given}
        searcher = searcher if searcher is not None else preferred
    if searcher is None:
        chooser = SCHEDULERS.get(scheduler) if isinstance(scheduler, str) else scheduler
        searcher = getattr(chooser, "searcher", "auto")
    return searcher, scheduler, scheduler_options


def _check_same_pricing(record: StudyRecord, kept: Mapping[str, Any]) -> None:
    """A study's cost is its trials' held time at its prices: other prices or resources given on
    a resume would re-price every trial it has run (and move a max_cost), so they are refused,
    unless the study was priced at the defaults, which stand for "not priced yet"."""
    defaults = {"resources": Resources().to_json(), "prices": Prices().to_json()}
    if all(record.settings.get(key) in (None, defaults[key]) for key in defaults):
        return
    for key in defaults:
        recorded = record.settings.get(key)
        if kept[key] is not None and recorded != kept[key]:
            raise ConfigError(f"study {record.name!r} prices its trials with {key}={recorded}; {key}={kept[key]} "
                              f"would re-price the trials it has run: give the same {key}, or leave it out")


def _check_same_folder(record: StudyRecord, root: str | None) -> None:
    """Another artifact_dir on a resume would split a study's files in two (its paused trials would
    not find their checkpoints); it is taken only where the recorded folder is gone (moved away)."""
    recorded = record.settings.get("artifact_dir")
    folder = Path(recorded or ".") / (record.settings.get("folder") or record.name)
    if root is not None and recorded is not None and root != recorded and folder.is_dir():
        raise ConfigError(f"study {record.name!r} keeps its trials' files in {str(folder)!r}; artifact_dir={root!r} "
                          "would split them (a resumed trial would not find its checkpoint): give the same "
                          "artifact_dir, or leave it out")


def _build(storage: Storage, record: StudyRecord, searcher, searcher_options, scheduler, scheduler_options) -> Study:
    space = Space.from_json(record.space)
    seed = derive_seed(record.seed, "searcher")
    recorded = record.settings.get("searcher") or {}
    if isinstance(searcher, str) and searcher.strip().lower() == recorded.get("name") and \
            isinstance(recorded.get("seed"), int):
        seed = recorded["seed"]  # the recorded one goes on with its seed: one given to a searcher object too
    if isinstance(searcher_options, Mapping) and isinstance(searcher_options.get("warm_start"), str):
        searcher_options = {**searcher_options, "warm_start": _warm_start_from(storage, searcher_options["warm_start"])}
    searcher, scheduler, scheduler_options = resolve_setup(searcher, scheduler, scheduler_options,
                                                           Fidelity.from_json(record.settings.get("fidelity")))
    built_scheduler = make_scheduler(scheduler, record.metrics[0], record.modes[0], scheduler_options)
    built_searcher = make_searcher(searcher, space, seed, searcher_options)
    check_warm_values(getattr(built_searcher, "warm_start", None) or [], record.metrics)
    return Study(storage, record, built_searcher, built_scheduler)


def check_warm_values(warm_start: Sequence[tuple[dict, Any]], metrics: list[str]) -> None:
    """Each warm-start value gives every metric of the study: with several, a plain number (or a
    dict without one of them) was taken as a failed trial there, the opposite of a good start."""
    for i, (_, value) in enumerate(warm_start):
        given = set(value) if isinstance(value, Mapping) else {metrics[0]}
        missing = [m for m in metrics if m not in given]
        if missing:
            raise ConfigError(f"warm_start[{i}]: {value!r} lacks {missing}; a study with metrics {metrics} needs a "
                              f"dict with each, e.g. {{{', '.join(f'{m!r}: ...' for m in metrics)}}}")
        for metric in metrics:
            check_warm_metric(value[metric] if isinstance(value, Mapping) else value, metric, f"warm_start[{i}]")


def _warm_start_from(storage: Storage, name: str) -> list[tuple[dict, dict]]:
    """The completed trials of another study in the same storage, as (config, metrics) pairs."""
    source = storage.get_study(name)
    return [(t.config, t.metrics) for t in storage.trials(source.id)
            if t.state.value == "completed" and t.metrics]


def create_study(
    space: Space | Mapping[str, Any],
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str] | None = None,
    name: str | None = None,
    storage: str | Storage | None = None,
    seed: int | None = None,
    searcher: Any = None,
    scheduler: Any = None,
    searcher_options: Mapping[str, Any] | None = None,
    scheduler_options: Mapping[str, Any] | None = None,
    load_if_exists: bool = False,
    objective: Callable | None = None,
    artifact_dir: str | os.PathLike | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    prices: Prices | Mapping[str, Any] | None = None,
    fidelity: Fidelity | Mapping[str, Any] | None = None,
    n_trials: int | None = None,
    environment: Mapping[str, Any] | None = None,
) -> Study:
    """A new study (or, with ``load_if_exists``, the existing one of that name, after checking
    that its space and metrics match). ``storage=None`` keeps it in memory.

    ``artifact_dir`` holds the trials' logs and files (default: ``tunelab-artifacts`` beside
    a SQLite file; the study's own folder in it is recorded, see tunelab.tracking.artifacts);
    ``resources`` is what one trial holds and ``prices`` what it costs an hour.
    ``searcher=None`` is ``auto`` unless the scheduler prefers a model (BOHB). ``fidelity``
    declares what a multi-fidelity scheduler may cut short (``tl.fidelity("epochs", min=1,
    max=81)``); ``scheduler=None`` (or ``"auto"``) is FIFO without one and the default
    multi-fidelity setup with one (:func:`default_setup`). ``n_trials`` is stored as the study's budget, for ``tunelab
    worker`` processes that run it. ``environment`` is recorded instead of capturing this
    process's (which takes a good fraction of a second): for studies whose trials run nowhere
    real, such as the simulator's."""
    refuse_while_loading_script()
    seed, n_trials = plain_number(seed), plain_number(n_trials)  # np.int64 from a sweep, as it is stored
    check_count("n_trials", n_trials)
    space = Space.coerce(space)
    fidelity = coerce_fidelity(fidelity)
    metrics, modes = _check_metrics(metric, mode)
    name, store = _check_name(name), open_storage(storage)
    kept = {"resources": Resources.coerce(resources).to_json() if resources is not None else None,
            "prices": Prices.coerce(prices).to_json() if prices is not None else None,
            "artifact_dir": resolve_artifact_root(store.url, artifact_dir) if artifact_dir is not None else None}
    try:
        record, created = store.get_study(name), False
    except StudyNotFound:
        # Refuse bad searcher and scheduler options before anything is stored (a study left
        # behind would make the corrected call fail on its name).
        check_setup(space, metrics, modes, fidelity, searcher, searcher_options, scheduler, scheduler_options, store)
        record, created = _new_record(store, name, space, metrics, modes, seed, objective, environment, fidelity,
                                      kept["artifact_dir"])
    if not created:
        if not load_if_exists:
            raise StudyExists(f"a study named {name!r} already exists in {hide_password(store.url)}; "
                              "pick another name, reopen it with tl.load_study, or delete it")
        _check_same(record, space, metrics, modes)
        if seed is not None and seed != record.seed:
            raise ConfigError(f"study {name!r} was created with seed {record.seed}; got seed={seed}")
        _check_same_pricing(record, kept)
        _check_same_folder(record, kept["artifact_dir"])
        recorded = Fidelity.from_json(record.settings.get("fidelity"))
        if fidelity is not None and recorded is not None and fidelity != recorded:
            raise ConfigError(f"study {name!r} was created with {recorded}; got fidelity={fidelity}")
        if fidelity is not None and recorded is None:
            record.settings["fidelity"] = fidelity.to_json()
            store.update_study(record.id, settings={"fidelity": fidelity.to_json()})
        elif record.settings.get("scheduler"):  # reopened as it was set up, unless told otherwise
            searcher, searcher_options, scheduler, scheduler_options = _recorded_setup(
                record.settings, searcher, searcher_options, scheduler, scheduler_options)
            searcher_options = keep_pick(record.settings.get("searcher"), searcher, searcher_options,
                                         store.counted_trials(record.id) > 0)
    given = {k: v for k, v in kept.items() if v is not None}
    record.settings.update(given)
    study = _build(store, record, searcher, searcher_options, scheduler, scheduler_options)
    if not created and objective is not None:  # made without one (tl.create_study), run by tl.tune now
        remember_objective(study, objective)
    if created and len(metrics) > 1:
        _say_what_follows_the_first_metric(study, metrics[0])
    settings = {"searcher": study.searcher.describe(), "scheduler": study.scheduler.describe(), **given}
    if n_trials is not None:
        settings["budgets"] = {**(record.settings.get("budgets") or {}), "n_trials": n_trials}
    store.update_study(record.id, settings=settings)
    study.record.settings = {**(study.record.settings or {}), **settings}
    return study


def _say_what_follows_the_first_metric(study: Study, first: str) -> None:
    """A study with several metrics: the parts that follow one metric (its first) say so."""
    if not getattr(study.searcher, "multi_objective", True):
        warn_caller(f"searcher {study.searcher.name!r} ranks trials on the first metric, {first!r}, alone: "
                    f"the others are recorded and make the Pareto front, but do not steer the search (the "
                    "searchers that do: tpe, bo, rf, anneal, genetic, evolution, random, sobol, grid)", SetupWarning)
    if study.scheduler.judges_reports:
        warn_caller(f"scheduler {study.scheduler.name!r} judges runs on the first metric, {first!r}, alone: a run "
                    "good only on another metric may be stopped or never promoted; list the metric that should "
                    "decide first, or use scheduler='fifo'", SetupWarning)


def check_setup(space: Space, metrics: list[str], modes: list[str], fidelity: Fidelity | None, searcher: Any,
                searcher_options: Mapping[str, Any] | None, scheduler: Any,
                scheduler_options: Mapping[str, Any] | None, store: Storage | None = None) -> None:
    """Build the searcher and scheduler a study with these settings would get, and throw them
    away: bad options are refused (ConfigError) before anything is stored or run. Its warnings
    are left to the build of the study itself, so that each is said once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _build(store or MemoryStorage(), StudyRecord(id=0, name="check", space=space.to_json(), metrics=metrics,
                                                     modes=modes, seed=0, created_at=0.0,
                                                     settings={"fidelity": fidelity.to_json() if fidelity else None}),
               searcher, searcher_options, scheduler, scheduler_options)


def _new_record(store: Storage, name: str, space: Space, metrics: list[str], modes: list[str], seed: int | None,
                objective: Callable | None, environment: Mapping[str, Any] | None, fidelity: Fidelity | None,
                artifact_dir: str | None) -> tuple[StudyRecord, bool]:
    """Store a new study with a folder of its own for its files; (the record, True), or the
    study another process created meanwhile under that name, (its record, False)."""
    root = artifact_dir or resolve_artifact_root(store.url, None)
    environment = dict(environment) if environment is not None else capture_environment(code_path_of(objective))
    with folder_claims(root):  # claim and create as one step (see folder_claims)
        folder = claim_study_folder(root, name)
        try:
            return store.create_study(StudyRecord(
                id=0, name=name, space=space.to_json(), metrics=metrics, modes=modes, seed=_check_seed(seed),
                created_at=dt.datetime.now().timestamp(),
                environment=environment,
                settings={**objective_settings(objective),
                          "artifact_dir": root, "folder": folder,
                          "resources": Resources().to_json(), "prices": Prices().to_json(),
                          "fidelity": fidelity.to_json() if fidelity is not None else None},
            )), True
        except StudyExists:
            release_study_folder(root, folder)
            return store.get_study(name), False
        except BaseException:  # nothing stored (a database opened read-only, a full disk): no folder either
            release_study_folder(root, folder)
            raise


def _check_same(record: StudyRecord, space: Space, metrics: list[str], modes: list[str]) -> None:
    def by_name(params: Space) -> list[dict]:
        return sorted(params.to_json()["params"], key=lambda p: p["name"])

    # The same parameters written in another order are the same space: the study keeps the recorded order.
    if by_name(Space.from_json(record.space)) != by_name(space):
        raise ConfigError(f"study {record.name!r} exists with a different search space; "
                          "use a new name to search a new space")
    if record.metrics != metrics or record.modes != modes:
        raise ConfigError(f"study {record.name!r} optimises {record.metrics} ({record.modes}); "
                          f"got {metrics} ({modes})")


def load_study(name: str, storage: str | Storage | None = None, *, searcher: Any = None, scheduler: Any = None,
               searcher_options: Mapping[str, Any] | None = None,
               scheduler_options: Mapping[str, Any] | None = None) -> Study:
    """Reopen a stored study; its searcher and scheduler are the recorded ones unless given."""
    refuse_while_loading_script()  # a script's top-level ask/tell would write to it on a re-run
    if storage is None:
        raise ConfigError("load_study needs the storage the study lives in, e.g. storage='sqlite:///tunelab.db'")
    store = open_existing(storage)
    record = store.get_study(name)
    setup = _recorded_setup(record.settings, searcher, searcher_options, scheduler, scheduler_options)
    with warnings.catch_warnings():
        if searcher is None and scheduler is None:  # the recorded setup: its notes were given when it was made
            warnings.simplefilter("ignore", SetupWarning)
        return _build(store, record, *setup)


def recorded_searcher(storage: str | Storage | None, name: str | None) -> str | None:
    """The name of the searcher a stored study called ``name`` was set up with (None when there
    is no such study)."""
    if storage is None or name is None:
        return None
    try:  # (a SQLite file that is not there is not made here)
        store = open_existing(storage)
    except StudyNotFound:
        return None
    try:
        record = store.get_study(name)
    except StudyNotFound:
        return None
    finally:
        if store is not storage:  # opened here for this one look (its engine and connections)
            store.close()
    return (record.settings.get("searcher") or {}).get("name")


def _recorded_setup(settings: Mapping[str, Any], searcher: Any, searcher_options: Mapping[str, Any] | None,
                    scheduler: Any, scheduler_options: Mapping[str, Any] | None) -> tuple:
    """(searcher, its options, scheduler, its options) of a stored study: the recorded ones where
    none is given, so that reopening a study does not swap them for the defaults."""
    if searcher is None:
        recorded = {k: v for k, v in (settings.get("searcher") or {"name": "random"}).items() if k != "seed"}
        searcher = recorded.pop("name")
        searcher_options = searcher_options or SEARCHERS.still_taken(searcher, 2, recorded)
    if scheduler is None:
        recorded = dict(settings.get("scheduler") or {"name": "fifo"})
        scheduler = recorded.pop("name")
        scheduler_options = scheduler_options or SCHEDULERS.still_taken(scheduler, 2, recorded)
    return searcher, searcher_options, scheduler, scheduler_options


def list_studies(storage: str | Storage) -> list[StudySummary]:
    """The studies in ``storage``; a SQLite file that is not there holds none (and is not made)."""
    try:
        return open_existing(storage).list_studies()
    except StudyNotFound:  # no database at that path
        return []


def delete_study(name: str, storage: str | Storage) -> None:
    """Delete a study: its trials and reports, and its folder of logs, checkpoints and artefacts."""
    store = open_existing(storage)
    settings = store.get_study(name).settings
    store.delete_study(name)
    delete_study_files(settings, store.url, name)
