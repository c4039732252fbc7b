"""Executors decide *where trials run*: this process, local worker processes, later clusters."""

from __future__ import annotations

from typing import Any, Mapping

from tunelab._registry import Registry
from tunelab.errors import ConfigError, check_count
from tunelab.executors.base import Executor, Outcome, run_objective

__all__ = ["Executor", "Outcome", "EXECUTORS", "make_executor", "run_objective"]

EXECUTORS = Registry("executor", {
    "inline": "tunelab.executors.inline:InlineExecutor",
    "processes": "tunelab.executors.processes:ProcessExecutor",
    "ray": "tunelab.executors.ray:RayExecutor",
    "dask": "tunelab.executors.dask:DaskExecutor",
})


def make_executor(spec: "str | Executor | None", workers: int, trial_timeout: float | None,
                  options: Mapping[str, Any] | None = None) -> Executor:
    """``None`` picks inline for one worker and local processes for more; ``options`` go to the
    executor's constructor."""
    if isinstance(spec, Executor):
        if options:
            raise ConfigError("executor_options apply to an executor given by name; this one is already built")
        return spec
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"executor_options must be a dict; got {type(options).__name__}")
    check_count("workers", workers, optional=False)
    name = spec or ("inline" if workers == 1 else "processes")
    cls = EXECUTORS.get(name)
    if name == "inline":
        if workers != 1:
            raise ConfigError(f"the inline executor runs one trial at a time; got workers={workers}")
        if options:
            raise ConfigError(f"the inline executor takes no options; got {sorted(options)}")
        return cls()
    try:
        return cls(workers=workers, trial_timeout=trial_timeout, **dict(options or {}))
    except TypeError as err:
        raise ConfigError(f"executor {name!r}: {err}") from None
