"""The search space as written in a study file.

    space:
      lr: {loguniform: [1.0e-6, 1.0e-1]}
      layers: {randint: [1, 8], log: true}
      optimizer: {choice: [sgd, adam]}
      nesterov: {choice: [true, false], when: {optimizer: sgd}}
      epochs: 10                         # a constant
    # or a preset, optionally extended:  space: {preset: image_classification, epochs: 10}

Each entry becomes the same distribution object the Python API builds, so a study started from
a file and one started from Python are the same thing in storage.
"""

from __future__ import annotations

import difflib
from typing import Any

from tunelab import presets
from tunelab.distributions import Categorical, Distribution, Fixed, Float, Int
from tunelab.errors import SpaceError
from tunelab.script.source import Document, KeyPath
from tunelab.script.wording import got, kind, written
from tunelab.space import Space

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice", "ordinal", "fixed")
OPTIONS = ("log", "when")
EXAMPLE = "lr: {loguniform: [1.0e-5, 1.0e-1]}"


def parse_space(doc: Document) -> dict[str, Distribution]:
    """The parameters of ``space:``, validated together (conditions, presets)."""
    key: KeyPath = ("space",)
    raw = doc.data.get("space")
    if not isinstance(raw, dict) or not raw:
        raise doc.error(key, f"must map parameter names to distributions (e.g. {EXAMPLE}) "
                             f"or name a preset ({{preset: image_classification}}); {got(raw)}")
    params: dict[str, Distribution] = {}
    if "preset" in raw:
        preset = raw["preset"]
        try:
            if not isinstance(preset, str):
                raise SpaceError(f"must name a preset, one of {', '.join(presets.PRESETS)}; {got(preset)}")
            params = presets.get(preset)
        except SpaceError as err:
            raise doc.error(key + ("preset",), str(err)) from None
    for name, spec in raw.items():
        if name == "preset":
            continue
        if not isinstance(name, str) or not name:
            raise doc.error(key + (str(name),), f"a parameter's name must be text; YAML reads {written(name)} as "
                                                f"{kind(name)}: write it in quotes, '{name}'")
        params[name] = parameter(doc, key + (name,), spec)
    try:
        Space(params)
    except SpaceError as err:
        raise doc.error(key, str(err)) from None
    return params


def parameter(doc: Document, key: KeyPath, spec: Any) -> Distribution:
    """One parameter: ``{kind: args, log: ..., when: ...}`` or a plain constant."""
    if isinstance(spec, list):
        raise doc.error(key, f"a plain list is ambiguous; write {{choice: {written(spec)}}} to search over these "
                             f"values (or {{fixed: {written(spec)}}} for a list that is one constant)")
    if not isinstance(spec, dict):
        try:
            return Fixed(spec)
        except SpaceError as err:
            raise doc.error(key, str(err)) from None
    unknown = [k for k in spec if k not in DISTRIBUTIONS + OPTIONS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), DISTRIBUTIONS + OPTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        constant = "" if hint else f" (a constant that is a mapping is written {{fixed: {written(spec)}}})"
        raise doc.error(key + (unknown[0],), f"unknown distribution or option {unknown[0]!r}{hint} "
                                             f"Distributions: {', '.join(DISTRIBUTIONS)}; options: log, when{constant}")
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        found = f"got {', '.join(kinds)}" if kinds else "got none"
        raise doc.error(key, f"give exactly one distribution ({', '.join(DISTRIBUTIONS)}); {found}")
    kind, args = kinds[0], spec[kinds[0]]
    log, when = spec.get("log", False), spec.get("when")
    if not isinstance(log, bool):
        raise doc.error(key + ("log",), f"must be true or false; {got(log)}")
    if when is not None and not isinstance(when, dict):
        raise doc.error(key + ("when",), f"must be a mapping of a parent parameter to its value(s), e.g. "
                                         f"{{optimizer: sgd}}; {got(when)}")
    if log and kind not in ("uniform", "loguniform", "randint"):
        raise doc.error(key + ("log",), f"applies to uniform and randint, not to {kind}")
    if kind == "loguniform" and "log" in spec and not log:
        raise doc.error(key + ("log",), "loguniform is on a log scale; write {uniform: [low, high]} for a linear one")
    try:
        if kind in ("uniform", "loguniform", "randint"):
            low, high = _bounds(doc, key + (kind,), args)
            if kind == "randint":
                return Int(low, high, log=log, when=when)
            return Float(low, high, log=log or kind == "loguniform", when=when)
        if kind in ("choice", "ordinal"):
            if not isinstance(args, list):
                raise doc.error(key + (kind,), f"needs a list of options, e.g. {{{kind}: [8, 16, 32]}}; {got(args)}")
            nested = next((i for i, option in enumerate(args) if isinstance(option, (dict, list))), None)
            if nested is not None:
                raise doc.error(key + (kind, nested), f"an option is a single value (text, a number, true/false or "
                                                      f"null); {got(args[nested])}")
            return Categorical(args, ordered=kind == "ordinal", when=when)
        return Fixed(args, when=when)
    except SpaceError as err:
        raise doc.error(key, str(err)) from None


def _bounds(doc: Document, key: KeyPath, args: Any) -> tuple[Any, Any]:
    """[low, high], two numbers in order: checked here so that the message speaks of the file,
    not of the Python call the library's own check would suggest."""
    example = f"e.g. {{{key[-1]}: [1, 10]}}"
    if not isinstance(args, list) or len(args) != 2:
        raise doc.error(key, f"needs a list of two numbers [low, high], {example}; {got(args)}")
    for i, end in enumerate(args):
        if isinstance(end, bool) or not isinstance(end, (int, float)):
            raise doc.error(key + (i,), f"{('low', 'high')[i]} must be a number; {got(end)}")
    if not args[0] < args[1]:
        raise doc.error(key, f"needs low < high; got {written(args)} (for a constant, write the value itself: "
                             f"{key[-2]}: {written(args[0])})")
    return args[0], args[1]
