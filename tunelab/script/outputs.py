"""Reading what a script reports: lines matching a declared pattern, or JSON lines.

A reader turns one line of output into ``(step, metrics)`` or None. ``step`` is None when the
line names no step; the caller then takes the step after the trial's last one (1, 2, 3... on
a first run, on from where it paused when resumed), or, for a fresh-run fidelity, the values as
the run's result at its level. Values that are not numbers
are skipped rather than fatal: a log line is not a contract, and the missing-metric check at the
end of the trial says clearly what was and was not seen.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Optional

#: What a reader makes of one line: (step or None, metrics), or None for a line that reports nothing.
Parsed = Optional[tuple[Optional[float], dict[str, float]]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def as_shown(line: str) -> str:
    """What a terminal shows of a line: the text after its last carriage return. Progress bars
    (Keras, tqdm) redraw one line with ``\r``; its last state holds the epoch's final values."""
    text = line.rstrip("\r\n")
    return text.rsplit("\r", 1)[-1]


class JsonLines:
    """Lines holding a JSON object: ``{"step": 3, "val_accuracy": 0.81}``; other lines are ignored."""

    kind = "json"

    def parse(self, line: str) -> Parsed:
        text = as_shown(line).strip()
        if not (text.startswith("{") and text.endswith("}")):
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        step = _number(data.pop("step", None))
        metrics = {str(k): v for k, v in ((k, _number(v)) for k, v in data.items()) if v is not None}
        return (step if step is not None and math.isfinite(step) else None, metrics) if metrics else None

    def describe(self) -> str:
        return "JSON lines"


class RegexLines:
    """Lines matched by a regular expression whose named groups are ``step`` and metric names."""

    kind = "regex"

    def __init__(self, pattern: str):
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self.metrics = [g for g in self._regex.groupindex if g != "step"]

    def parse(self, line: str) -> Parsed:
        match = self._regex.search(as_shown(line))
        if match is None:
            return None
        groups = match.groupdict()
        step = _number(groups.pop("step", None))
        metrics = {k: v for k, v in ((k, _number(v)) for k, v in groups.items()) if v is not None}
        return (step if step is not None and math.isfinite(step) else None, metrics) if metrics else None

    def describe(self) -> str:
        return f"lines matching {self.pattern!r}"

    def __getstate__(self) -> dict:  # compiled patterns pickle, but keep the state small and plain
        return {"pattern": self.pattern}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["pattern"])
