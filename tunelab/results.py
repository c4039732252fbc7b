"""What an objective returned, read as the study's metrics, or a precise reason why it cannot be.

Shared by every executor (a returned result) and by ``study.tell`` (a told value), so that both
refuse the same things with the same words: text, a flag, an array of several numbers, an
integer no float holds, a dict without the study's metric, a non-finite value (a diverged run).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from tunelab import _json
from tunelab.trial import DIVERGED, InvalidResult, Report


def _is_bool(value: Any) -> bool:
    """True/False, also numpy's: a flag is not a metric value."""
    return isinstance(value, (bool, np.bool_))


def _float(value: Any) -> float | None:
    """``value`` as a float, or None when it is no single number a float holds (an array of
    several, an integer past 1e308, text)."""
    if isinstance(value, (str, bytes)) or not (isinstance(value, (int, float)) or hasattr(value, "__float__")):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _for_the_record(value: Any) -> Any:
    """A value beside the metrics, kept as JSON holds it (a flag, a list, a dict, an array as its
    list), else as its text. A plain list or a flag was kept as its text, an array as a list."""
    try:
        return _json.to_jsonable(value)
    except TypeError:
        return repr(value)


def normalize_result(result: Any, metrics: list[str], reports: list[Report],
                     earlier: Mapping[str, float] | None = None, partial: bool = False) -> dict[str, Any]:
    """Turn what an objective returned into a metrics dict, or say precisely what is wrong.

    A number is the value of the (first) metric; a dict must hold every metric of the study;
    ``None`` falls back to the last reported value of each metric (``earlier``: from the trial's
    runs before this one, for a resumed trial whose checkpoint had already reached its budget).
    ``partial``: what a trial cut short or failed was told, which may lack a metric or hold a
    NaN (yet a metric's value is a number, and every value is kept as JSON can hold it).
    """
    primary = metrics[0]
    if result is None:
        found = {}
        for metric in metrics:
            values = [r.metrics[metric] for r in reports if metric in r.metrics]
            if not values and earlier and metric in earlier:
                values = [earlier[metric]]
            if not values:
                raise InvalidResult(f"objective returned None and never reported {metric!r}")
            found[metric] = values[-1]
        result = found
    elif _is_bool(result) or isinstance(result, (str, bytes)):
        raise InvalidResult(f"objective must return a number or a dict of metrics; got {type(result).__name__} {result!r}")
    elif not isinstance(result, Mapping):
        if len(metrics) > 1:
            what = "one number" if _float(result) is not None else f"{type(result).__name__} {_short(result)}"
            raise InvalidResult(f"the result is {what}, but the study has {len(metrics)} metrics "
                                f"({', '.join(metrics)}); give a dict with each of them, e.g. "
                                f"{{{', '.join(f'{m!r}: ...' for m in metrics)}}} (a list or tuple is not read "
                                "by position)")
        number = _float(result)
        if number is None:
            raise InvalidResult(f"objective must return a number or a dict of metrics; got {type(result).__name__} "
                                f"{_short(result)}")
        result = {primary: number}
    out: dict[str, Any] = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise InvalidResult(f"metric names must be strings; got {key!r}")
        number = None if _is_bool(value) else _float(value)
        if number is None:
            if key in metrics:
                raise InvalidResult(f"metric {key!r} must be a number; got {type(value).__name__} {_short(value)}")
            out[key] = _for_the_record(value)
            continue
        out[key] = number
    for metric in metrics if not partial else ():
        if metric not in out:
            raise InvalidResult(f"objective returned {sorted(out)} but the study's metric is {metric!r}")
        if not math.isfinite(out[metric]):
            raise InvalidResult(f"objective returned {out[metric]} for {metric!r} {DIVERGED}", non_finite=True)
    return out
