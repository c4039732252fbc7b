"""Callbacks: tell another tracking tool about each trial as the tuner records it.

tunelab's storage stays the record; a callback copies each finished trial to a tool a team already
uses (MLflow, Weights & Biases). A callback that fails logs a warning and the study goes on: a
tracking server being down must not cost hours of tuning.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from tunelab.errors import ConfigError
from tunelab.trial import Trial

log = logging.getLogger("tunelab")


class Callback:
    """Subclass and override what you need; both hooks run in the tuner's process."""

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        """A trial was recorded as completed, pruned, failed or paused (with its reports)."""

    def close(self) -> None:
        """The tuning run ended: flush and release what the callback holds."""


def integer_steps(reports: list) -> list[int]:
    """Steps for loggers whose steps are whole numbers (TensorBoard, MLflow, W&B): whole-number
    steps (epochs) as they are; a curve with any other (a share of the data, 0.25, 0.5...) is
    counted 1, 2, 3 instead, so that no two reports land on one step (the loggers write the real
    step beside it, as ``step``)."""
    if whole_steps(reports):
        return [int(r.step) for r in reports]
    return list(range(1, len(reports) + 1))


def whole_steps(reports: list) -> bool:
    """Whether every report's step is a whole number, so that :func:`integer_steps` keeps them
    as they are (otherwise it counts them, and the real step must be written beside)."""
    return all(float(r.step).is_integer() for r in reports)


def check_callbacks(callbacks: Iterable[Any] | None) -> list[Callback]:
    """The callbacks of a run: objects with ``on_trial_end(study, trial)`` (and maybe ``close()``),
    or plain functions ``f(study, trial)``, called as each trial ends (Optuna's form)."""
    if callbacks is not None and (isinstance(callbacks, (str, bytes)) or hasattr(callbacks, "on_trial_end")
                                  or not hasattr(callbacks, "__iter__")):
        raise ConfigError(f"callbacks is a list of callback objects or functions, e.g. callbacks=[MLflowCallback()]; "
                          f"got {callbacks!r}")
    out = []
    for callback in callbacks or ():
        if isinstance(callback, type):
            raise ConfigError(f"callbacks takes callback objects, not classes: {callback.__name__}() rather than "
                              f"{callback.__name__}")
        if callable(getattr(callback, "on_trial_end", None)):
            out.append(callback)
        elif callable(callback):
            out.append(FunctionCallback(callback))
        else:
            raise ConfigError(f"a callback is a function f(study, trial) or has an on_trial_end(study, trial) "
                              f"method; got {callback!r}")
    return out


class FunctionCallback(Callback):
    """A plain function ``f(study, trial)`` as a callback."""

    def __init__(self, function: Any):
        self.function = function

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        self.function(study, trial)

    def __repr__(self) -> str:
        return getattr(self.function, "__qualname__", None) or repr(self.function)


def _name(callback: Any) -> str:
    return repr(callback) if isinstance(callback, FunctionCallback) else type(callback).__name__


def notify(callbacks: Iterable[Callback], study: Any, trial: Trial) -> None:
    for callback in callbacks:
        try:
            callback.on_trial_end(study, trial)
        except Exception as err:  # noqa: BLE001 - logging elsewhere must not stop the study
            log.warning("callback %s failed on trial %d: %s", _name(callback), trial.number, err)


def close_all(callbacks: Iterable[Callback]) -> None:
    for callback in callbacks:
        try:
            getattr(callback, "close", lambda: None)()
        except Exception as err:  # noqa: BLE001
            log.warning("callback %s failed to close: %s", _name(callback), err)
