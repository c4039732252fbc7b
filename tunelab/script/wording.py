"""Values of a study file described in the file's own terms, for error messages.

Whoever reads "got ['a', 'b']", "got None" or "got NoneType" is looking at a YAML or TOML file,
not at Python, and has to translate back to find the mistake. So a value is named by its kind
as those files have it (a mapping, a list, a number, text, true/false, no value) and shown as it
would be written there: ``[a, b]``, ``{min: 1}``, ``'ten'``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][\w.\-/]*")
#: Words YAML would read as something other than text, so they are shown quoted.
_NOT_TEXT = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def kind(value: Any) -> str:
    """'a mapping', 'a list', 'a number', 'text', 'true/false', 'no value' or 'a date'."""
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return "a date" if isinstance(value, dt.date) else "a time"
    return "a value"


def written(value: Any, limit: int = 80) -> str:
    """The value as it could be written in YAML flow style (shortened past ``limit``)."""
    text = _written(value, quote_always=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _written(value: Any, quote_always: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if not quote_always and _PLAIN.fullmatch(value) and value.lower() not in _NOT_TEXT:
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_written(k)}: {_written(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_written(v) for v in value) + "]"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def got(value: Any) -> str:
    """'got a list: [a, b]', 'got the number 3', 'got no value'... to end a message with."""
    if value is None:
        return "got no value"
    if isinstance(value, bool):
        return f"got {written(value)}"
    if isinstance(value, (dict, list, tuple)) and not value:
        return f"got an empty {kind(value)[2:]}"
    if isinstance(value, (int, float)):
        return f"got the number {written(value)}"
    if isinstance(value, str):
        return f"got the text {written(value)}" if value else "got empty text"
    if isinstance(value, (dt.date, dt.time)):
        return f"got {kind(value)}, {written(value)}"
    return f"got {kind(value)}: {written(value)}"
