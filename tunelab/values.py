"""What a parameter's value may be, and when two values are the same one.

Configurations are stored as JSON and compared between processes, so a value handed in from
numpy (a scalar, an array, a float32 read from a tensor) is turned into the plain Python value
it stands for at the boundary, and values are matched as a user reads them: 1 and 1.0 are one
number, True is not 1. This module imports nothing else from tunelab (rule 1 of DESIGN.md).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from tunelab.errors import is_plain_number

#: Integers beyond this lose their exactness as floats (the unit cube, the models' arrays): two
#: would share one coordinate, and some could never be drawn.
EXACT_INT = 2**53


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so that configurations stay JSON-friendly. A float32
    (or float16) becomes the shortest decimal it stands for, the number its user wrote: 0.1,
    not the 0.10000000149011612 that widening its bits gives (which 0.1 would then not match)."""
    if isinstance(value, (np.float16, np.float32)):
        return float(str(value))
    return value.item() if isinstance(value, np.generic) else value


def plain_tree(value: Any) -> Any:
    """:func:`plain` all the way down: arrays and tuples become lists, numpy scalars inside
    lists and dicts Python ones (json refuses numpy's integers)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return plain(value[()])
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_tree(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain_tree(item) for key, item in value.items()}
    return plain(value)


def finite(value: Any) -> bool:
    """A number that a float holds (an int of 400 digits is not: float() overflows)."""
    try:
        return is_plain_number(value) and math.isfinite(float(value))
    except OverflowError:
        return False


def exact_int_error(name: str, value: int) -> str | None:
    if abs(value) > EXACT_INT:
        digits = str(value)
        shown = digits if len(digits) <= 24 else f"{digits[:12]}... ({len(digits)} digits)"
        return f"{name}: integers must lie within +-2**53 ({EXACT_INT}), where floats hold every one exactly; got {shown}"
    return None


def value_key(value: Any) -> tuple:
    """A key under which 1 == 1.0 but True != 1, for matching options and constants; lists and
    dicts match item by item the same way. A value that JSON cannot hold (a set, an object)
    raises TypeError: it matches nothing a space holds."""
    value = plain(value)
    if isinstance(value, bool):
        return ("bool", value)
    if is_plain_number(value):
        return ("num", float(value))
    if value is None:
        return ("none",)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return ("list", tuple(value_key(item) for item in plain_tree(value)))
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted(((key, value_key(item)) for key, item in value.items()), key=repr)))
    raise TypeError(f"{type(value).__name__} is not a value a configuration holds")


def non_string_keys(value: Any) -> list:
    """The dict keys in ``value`` (nested too) that are not strings."""
    if isinstance(value, Mapping):
        return [k for k in value if not isinstance(k, str)] + [k for v in value.values() for k in non_string_keys(v)]
    if isinstance(value, (list, tuple)):
        return [k for item in value for k in non_string_keys(item)]
    return []
