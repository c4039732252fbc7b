"""One hyperparameter's domain: its values, its prior, and its place on the unit interval.

Every distribution maps its values to [0, 1] and back so that samplers and models work on
one numeric representation: a uniform draw on [0, 1] decoded through ``from_unit`` *is* a
draw from the prior (log-uniform for log scales, uniform over integers and categories).
This module imports nothing else from tunelab (rule 1 of DESIGN.md), apart from errors and values.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from tunelab.errors import SpaceError, is_plain_number
from tunelab.values import exact_int_error, finite, non_string_keys, plain, plain_tree, value_key

Scalar = str | int | float | bool | None


def _normalize_when(when: Mapping[str, Any] | None) -> dict[str, tuple]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise SpaceError(f"when= must be a non-empty dict like {{'optimizer': 'sgd'}}; got {when!r}")
    out = {}
    for parent, allowed in when.items():
        if not isinstance(parent, str):
            raise SpaceError(f"when= keys must be parameter names (str); got {parent!r}")
        if isinstance(allowed, (set, frozenset, Mapping)):
            raise SpaceError(f"when={{{parent!r}: ...}}: several allowed values go in a list, e.g. "
                             f"{{{parent!r}: {sorted(allowed, key=repr)!r}}}; got {allowed!r}")
        allowed = plain_tree(allowed) if isinstance(allowed, np.ndarray) else allowed  # (one value, or a list)
        values = tuple(allowed) if isinstance(allowed, (list, tuple, range)) else (allowed,)
        if not values:
            raise SpaceError(f"when={{{parent!r}: ...}} lists no allowed value")
        out[parent] = tuple(plain(v) for v in values)
    return out


class Distribution(ABC):
    """The domain of one hyperparameter; ``when`` makes it active only under conditions."""

    kind: ClassVar[str]
    #: True when the parameter takes a small set of values (usable as a condition's parent).
    discrete: ClassVar[bool] = False

    def __init__(self, when: Mapping[str, Any] | None = None):
        self.when = _normalize_when(when)

    @abstractmethod
    def normalize(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise SpaceError saying what is allowed."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Position of a (normalized) value on [0, 1]."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` of [0, 1]; uniform ``u`` gives a draw from the prior."""

    @abstractmethod
    def grid(self, points: int) -> list:
        """Values to enumerate in a grid search."""

    @abstractmethod
    def _fields(self) -> dict:
        """Fields that define the domain, for JSON and equality."""

    def contains(self, value: Any) -> bool:
        try:
            self.normalize(value)
        except SpaceError:
            return False
        return True

    def to_json(self) -> dict:
        data = {"type": self.kind, **self._fields()}
        if self.when:
            data["when"] = {k: list(v) for k, v in self.when.items()}
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        cond = f", when={self.when!r}" if self.when else ""
        return f"{self.kind}({args}{cond})"


class _Scaled(Distribution):
    """A number on a linear or log scale mapped onto [0, 1] between two edges ``_a`` and ``_b``."""

    low: float
    high: float
    log: bool
    _a: float
    _b: float

    def _set_scale(self, low_edge: float, high_edge: float) -> None:
        self._a, self._b = (math.log(low_edge), math.log(high_edge)) if self.log else (low_edge, high_edge)

    def _in_range(self, value: Any, what: str) -> Any:
        value = plain(value)
        if not finite(value) or (what == "an integer" and int(value) != value):
            raise SpaceError(f"expected {what} in [{self.low!r}, {self.high!r}]; got {value!r}")
        if not self.low <= value <= self.high:
            raise SpaceError(f"{value!r} is outside [{self.low!r}, {self.high!r}]")
        return value

    def to_unit(self, value: float) -> float:
        x = math.log(value) if self.log else value
        return (x - self._a) / (self._b - self._a)

    def _scale_at(self, u: float) -> float:
        x = self._a + float(u) * (self._b - self._a)
        return math.exp(x) if self.log else x

    def _fields(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log}


class Float(_Scaled):
    """A real number in [low, high], uniform on a linear or a log scale."""

    kind = "float"

    def __init__(self, low: float, high: float, log: bool = False, when=None):
        super().__init__(when)
        name = "loguniform" if log else "uniform"
        low, high = plain(low), plain(high)
        if not (finite(low) and finite(high)):
            raise SpaceError(f"{name}: low and high must be finite numbers; got low={low!r}, high={high!r}")
        if low >= high:
            raise SpaceError(f"{name} needs low < high; got low={low!r}, high={high!r} (use tl.fixed for a constant)")
        if log and low <= 0:
            raise SpaceError(f"loguniform needs 0 < low < high; got low={low!r} (a log scale cannot reach 0 or below)")
        if not math.isfinite(high - low):
            raise SpaceError(f"{name}: the range [{low!r}, {high!r}] is wider than a float can hold; narrow it")
        self.low, self.high, self.log = float(low), float(high), bool(log)
        self._set_scale(self.low, self.high)

    def normalize(self, value: Any) -> float:
        return float(self._in_range(value, "a number"))

    def from_unit(self, u: float) -> float:
        u = float(u)
        if u <= 0.0 or u >= 1.0:  # the ends exactly: exp(log(low)) may miss low by an ulp
            return self.low if u <= 0.0 else self.high
        return min(max(self._scale_at(u), self.low), self.high)

    def grid(self, points: int) -> list[float]:
        values = np.geomspace(self.low, self.high, points) if self.log else np.linspace(self.low, self.high, points)
        return list(dict.fromkeys(float(v) for v in values))  # a range a few floats wide repeats points


class Int(_Scaled):
    """An integer in [low, high] (both included), uniform on a linear or a log scale."""

    kind = "int"
    discrete = True

    def __init__(self, low: int, high: int, log: bool = False, when=None):
        super().__init__(when)
        low, high = plain(low), plain(high)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise SpaceError(f"randint: low and high must be integers; got low={low!r}, high={high!r}")
        problem = exact_int_error("randint", low) or exact_int_error("randint", high)
        if problem:
            raise SpaceError(problem)
        if low >= high:
            raise SpaceError(f"randint needs low < high; got low={low!r}, high={high!r} (use tl.fixed for a constant)")
        if log and low < 1:
            raise SpaceError(f"randint(log=True) needs low >= 1; got low={low!r}")
        self.low, self.high, self.log = low, high, bool(log)
        self._set_scale(low - 0.5, high + 0.5)  # half a step outside: each integer owns an equal share

    def normalize(self, value: Any) -> int:
        return int(self._in_range(value, "an integer"))

    def from_unit(self, u: float) -> int:
        return int(min(max(round(self._scale_at(u)), self.low), self.high))

    def grid(self, points: int) -> list[int]:
        if self.high - self.low + 1 <= points:
            return list(range(self.low, self.high + 1))
        space = np.geomspace if self.log else np.linspace
        return sorted({int(round(v)) for v in space(self.low, self.high, points)})


class Categorical(Distribution):
    """One of a list of options; ``ordered`` tells models that neighbours are alike."""

    kind = "choice"
    discrete = True

    def __init__(self, options: Sequence[Scalar], ordered: bool = False, when=None):
        super().__init__(when)
        name = "ordinal" if ordered else "choice"
        if isinstance(options, np.ndarray):
            options = plain_tree(options)
        if isinstance(options, (str, bytes, Mapping)) or not isinstance(options, Sequence):
            raise SpaceError(f"{name} needs a list of options; got {options!r}")
        options = [plain(o) for o in options]
        if not options:
            raise SpaceError(f"{name} needs at least one option; got an empty list")
        seen: dict[tuple, Any] = {}
        for option in options:
            if not (option is None or isinstance(option, (str, bool)) or is_plain_number(option)):
                raise SpaceError(f"{name} options must be str, number, bool or None; got {option!r}")
            if isinstance(option, int) and not isinstance(option, bool) and exact_int_error(name, option):
                raise SpaceError(exact_int_error(name, option))
            if is_plain_number(option) and not finite(option):
                raise SpaceError(f"{name} options must be finite; got {option!r}")
            key = value_key(option)
            if key in seen:
                raise SpaceError(f"{name} has a duplicate option {option!r} in {options!r}")
            seen[key] = option
        self.options, self.ordered = options, bool(ordered)
        self._index = {key: i for i, key in enumerate(seen)}
        if ordered:
            self.kind = "ordinal"

    def index(self, value: Any) -> int:
        try:
            return self._index[value_key(value)]
        except (KeyError, TypeError):
            raise SpaceError(f"{value!r} is not one of {self.options!r}") from None

    def normalize(self, value: Any) -> Scalar:
        return self.options[self.index(value)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.options)

    def from_unit(self, u: float) -> Scalar:
        k = len(self.options)
        return self.options[min(max(int(float(u) * k), 0), k - 1)]

    def grid(self, points: int) -> list:
        return list(self.options)

    def _fields(self) -> dict:
        return {"options": list(self.options)}


class Fixed(Distribution):
    """A constant: recorded with every trial, never searched."""

    kind = "fixed"
    discrete = True

    def __init__(self, value: Any, when=None):
        super().__init__(when)
        value = plain_tree(value)  # tl.fixed(np.array([...])), numpy numbers inside a list: as JSON holds them
        keys = non_string_keys(value)
        if keys:  # JSON would turn them into strings, silently: {0: 1} would come back as {'0': 1}
            raise SpaceError(f"fixed values are kept as JSON, whose dict keys are strings: the key {keys[0]!r} would "
                             f"not come back as it is; got {value!r}. Use string keys, or give this value to the "
                             "model directly rather than through the space")
        try:
            self._text = json.dumps(value, allow_nan=False)  # in the order written: a model may be built in it
        except (TypeError, ValueError):
            raise SpaceError(f"fixed values must be JSON-serialisable; got {value!r}") from None
        self._value = json.loads(self._text)

    @property
    def value(self) -> Any:
        """The constant; a list or dict comes as a copy of its own, so that a configuration changed
        in place (``config["sizes"].append(8)``) changes neither the space nor other configurations."""
        return json.loads(self._text) if isinstance(self._value, (list, dict)) else self._value

    def normalize(self, value: Any) -> Any:
        try:
            same = value_key(value) == value_key(self._value)
        except TypeError:  # a set, an object: no constant is one
            same = False
        if not same:
            raise SpaceError(f"{value!r} differs from the fixed value {self.value!r}")
        return self.value

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def grid(self, points: int) -> list:
        return [self.value]

    def _fields(self) -> dict:
        return {"value": self.value}


def from_json(data: Mapping[str, Any]) -> Distribution:
    """Rebuild a distribution written by :meth:`Distribution.to_json`."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise SpaceError(f"a stored parameter must be a dict with a 'type'; got {data!r}")
    kind, when = data["type"], data.get("when")
    try:
        if kind == "float":
            return Float(data["low"], data["high"], log=data.get("log", False), when=when)
        if kind == "int":
            return Int(data["low"], data["high"], log=data.get("log", False), when=when)
        if kind in ("choice", "ordinal"):
            return Categorical(data["options"], ordered=kind == "ordinal", when=when)
        if kind == "fixed":
            return Fixed(data["value"], when=when)
    except KeyError as missing:
        raise SpaceError(f"stored parameter of type {kind!r} lacks field {missing}") from None
    raise SpaceError(f"unknown parameter type {kind!r}; known: float, int, choice, ordinal, fixed")


# -- the user-facing constructors -------------------------------------------------------------


def uniform(low: float, high: float, *, when: Mapping[str, Any] | None = None) -> Float:
    """A float drawn uniformly from [low, high]."""
    return Float(low, high, log=False, when=when)


def loguniform(low: float, high: float, *, when: Mapping[str, Any] | None = None) -> Float:
    """A float whose logarithm is uniform: right for learning rates and weight decays."""
    return Float(low, high, log=True, when=when)


def randint(low: int, high: int, *, log: bool = False, when: Mapping[str, Any] | None = None) -> Int:
    """An integer in [low, high], both ends included (like Python's random.randint)."""
    return Int(low, high, log=log, when=when)


def choice(options: Sequence[Scalar], *, when: Mapping[str, Any] | None = None) -> Categorical:
    """One of unordered options (optimizer names, booleans...)."""
    return Categorical(options, ordered=False, when=when)


def ordinal(options: Sequence[Scalar], *, when: Mapping[str, Any] | None = None) -> Categorical:
    """One of ordered options (batch sizes, backbones small to large)."""
    return Categorical(options, ordered=True, when=when)


def fixed(value: Any, *, when: Mapping[str, Any] | None = None) -> Fixed:
    """A constant recorded with each trial (plain non-list values in a space dict mean the same)."""
    return Fixed(value, when=when)
