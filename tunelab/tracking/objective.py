"""Where a study's objective lives, recorded with the study so that its trials can be run again
later (``tunelab reproduce``, ``sensitivity``, ``seed-check``): its module and name, and its file."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

from tunelab.errors import ConfigError


def objective_file(objective: Callable | None) -> str | None:
    """The file defining the objective, so that a later re-run can find its module."""
    try:
        return os.path.abspath(inspect.getfile(objective)) if objective is not None else None
    except (TypeError, OSError):
        return None


def objective_path(objective: Callable | None) -> str | None:
    """'module:qualname' of an objective, so a trial can be re-run from its record later."""
    module, qualname = getattr(objective, "__module__", None), getattr(objective, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else None


def objective_settings(objective: Callable | None) -> dict[str, str | None]:
    """What a study's settings keep of its objective."""
    return {"objective": objective_path(objective), "objective_file": objective_file(objective)}


def remember_objective(study: Any, objective: Callable) -> None:
    """A study made without an objective (``tl.create_study``) and run by ``tl.tune`` or
    ``tunelab worker`` records the objective that runs it: its trials could not be re-run
    otherwise ("no objective on record"). One already recorded is kept."""
    if study.record.settings.get("objective") or objective_path(objective) is None:
        return
    settings = objective_settings(objective)
    study.storage.update_study(study.record.id, settings=settings)
    study.record.settings = {**(study.record.settings or {}), **settings}


def import_recorded(module_name: str, file: str | None, what: str = "the objective's module") -> Any:
    """The module of a recorded function, imported again: from the working folder or from the
    package root its recorded ``file`` names (a re-run started in another folder than the
    project's found neither its objective nor, for architecture search, its data function)."""
    for root in _roots(module_name, file):
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        gone = f"; it was recorded in {file}, which is no longer there (moved or renamed?)" \
            if file and not os.path.exists(file) else f", defined in {file}" if file else ""
        raise ConfigError(f"cannot import {what} {module_name!r} ({err}){gone}; run from the folder that holds "
                          "it or add it to PYTHONPATH") from None


def _roots(module_name: str, file: str | None) -> list[str]:
    roots = [os.getcwd()]
    if file:
        root = Path(file).parent
        for _ in module_name.split(".")[1:]:
            root = root.parent
        roots.append(str(root))
    return roots
