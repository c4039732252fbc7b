"""Executors decide *where trials run*: this process, local worker processes, later clusters."""

from __future__ import annotations

from tunelab._registry import Registry
from tunelab.errors import ConfigError
from tunelab.executors.base import Executor, Outcome, run_objective

__all__ = ["Executor", "Outcome", "EXECUTORS", "make_executor", "run_objective"]

EXECUTORS = Registry("executor", {
    "inline": "tunelab.executors.inline:InlineExecutor",
    "processes": "tunelab.executors.processes:ProcessExecutor",
})


def make_executor(spec: "str | Executor | None", workers: int, trial_timeout: float | None) -> Executor:
    """``None`` picks inline for one worker and local processes for more."""
    if isinstance(spec, Executor):
        return spec
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers must be a positive integer; got {workers!r}")
    name = spec or ("inline" if workers == 1 else "processes")
    cls = EXECUTORS.get(name)
    if name == "inline":
        if workers != 1:
            raise ConfigError(f"the inline executor runs one trial at a time; got workers={workers}")
        return cls()
    return cls(workers=workers, trial_timeout=trial_timeout)
