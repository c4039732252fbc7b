"""The exceptions a user of tunelab can meet, in one place.

Every error raised for bad input derives from :class:`TunelabError`, so the CLI can turn it
into a one-line message and callers can catch tunelab's complaints without catching bugs.
"""

from __future__ import annotations

import numbers
from typing import Callable


class TunelabError(Exception):
    """Base class for errors caused by how tunelab was used (not by a bug in tunelab)."""


class SpaceError(TunelabError, ValueError):
    """A search space, a parameter definition or a configuration is not valid."""


class StorageError(TunelabError):
    """A storage URL is malformed, a database cannot be opened, or a record is missing."""


class StudyNotFound(StorageError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "study not found"


class ConfigError(TunelabError, ValueError):
    """An argument to a public entry point (tune, create_study, a CLI flag) is not valid."""


class StudyExists(StorageError, ConfigError):
    """A study of that name already exists and the caller asked for a new one (a ConfigError
    too: the name given is the argument at fault)."""


class TrialPruned(Exception):
    """Raised inside an objective when the scheduler decided to stop its trial early.

    ``trial.report`` raises it for you in a tuner-managed run; the trial is recorded as
    *pruned* with every report it made. Raise it yourself to give up on a trial.
    """


class TrialPaused(Exception):
    """Raised inside an objective when the scheduler pauses its trial (to resume it later)."""


def check_count(name: str, value: object, optional: bool = True, error: type[TunelabError] = ConfigError) -> None:
    """A count (``n_trials``, ``workers``, a population): a positive integer, or, where
    ``optional``, None for no limit. ``name`` leads the message ("kde: candidates")."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive integer or None" if optional else "a positive integer"
        raise error(f"{name} must be {allowed}; got {value!r}")


def check_number(name: str, value: object, allowed: str = "a number", ok: Callable[[float], bool] = lambda v: True,
                 optional: bool = False) -> None:
    """A real number (not a bool, a string or NaN) for which ``ok`` holds; ``allowed`` says
    which in the message ("curve: threshold must be a probability in (0, 1); got '0.1'")."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or not ok(value):
        raise ConfigError(f"{name} must be {allowed}; got {value!r}")


def is_plain_number(value: object) -> bool:
    """An int or a float, not a bool (True is an int to Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_real_number(value: object) -> bool:
    """A real number, numpy's included (a value read from an array), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_warm_metric(value: object, metric: str, where: str) -> None:
    """A warm start's value of one metric is a number, or None/NaN for a configuration that
    failed (text or True were taken for a failed configuration, without a word)."""
    if value is not None and not is_real_number(value):
        raise ConfigError(f"{where}: the value of {metric!r} must be a number (None or NaN for a "
                          f"configuration that failed); got {type(value).__name__} {value!r}")


class SearchExhausted(TunelabError):
    """The searcher has nothing new to propose (for example, every grid point was tried)."""


class TrialLimitReached(SearchExhausted):
    """``study.ask()`` found the study's ``n_trials`` used up and no paused trial to resume: the
    study is done (or, with trials still out, waits for them to be told)."""


class SetupWarning(UserWarning):
    """A note on a study's setup (a scheduler that will stop nothing, more brackets than rungs),
    given when the study is made; not again each time it is loaded (a worker, reproduce...)."""


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, pointing at the first frame outside tunelab: the user's line that led here, however
    deep in tunelab the warning is raised (a fixed ``stacklevel`` points inside tunelab when the
    call comes through ``tl.tune`` rather than ``tl.create_study``)."""
    import sys
    import warnings
    from pathlib import Path

    package = str(Path(__file__).resolve().parent)
    frame, level = sys._getframe(1), 2  # stacklevel 2: the caller of warn_caller
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
