"""Strict JSON for everything tunelab stores.

Stored values must be plain JSON (PostgreSQL's json type refuses NaN), yet a diverging training
run legitimately reports a NaN loss. Non-finite floats are therefore written as the strings
"NaN", "Infinity" and "-Infinity" and turned back into floats where numbers are expected.
numpy scalars and arrays become Python numbers and lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` made of JSON types only; raises TypeError for anything else."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r:.200}")


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), allow_nan=False, separators=(",", ":"))


def pretty(value: Any) -> str:
    """Indented strict JSON, as the command line's ``--json`` prints it: non-finite numbers
    spelled as storage spells them (a bare NaN is not JSON, and strict parsers refuse it), and
    anything else that is not JSON written as its text."""
    return json.dumps(to_jsonable(json.loads(json.dumps(value, default=str))), indent=2, allow_nan=False)


def number(value: Any) -> float | None:
    """A number for a REAL column: a numpy scalar is a buffer, which SQLite's driver stored as a
    BLOB that read back as bytes (a budget of ``np.int64(3)`` came back as ``b'\\x03\\x00...'``)."""
    return None if value is None else float(value)


def text(value: str | None, nul: bool = True) -> str | None:
    """Text a database's TEXT column takes: a lone surrogate (a file name that was not UTF-8, in
    an exception's message) is written as its escape, as is a NUL where ``nul`` is False
    (PostgreSQL's text refuses it); the driver refused the whole write, and the trial stayed
    running. Anything else is kept as it is."""
    if value is None:
        return None
    value = str(value)
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if nul else value.replace("\x00", "\\x00")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def numbers(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Undo the non-finite encoding in a dict of metrics read back from storage."""
    if not metrics:
        return {}
    return {k: _NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in metrics.items()}


def restore(value: Any) -> Any:
    """Undo the non-finite encoding everywhere in a value read back from storage (a user
    attribute that was a float infinity comes back as one, also inside lists and dicts)."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore(v) for v in value]
    return value
