"""The sections of a study file that say how a trial is measured: ``report:`` (how to read the
script's output) and ``fidelity:`` (the resource a multi-fidelity scheduler spends). Each is
checked whole here, as the space is in :mod:`tunelab.script.spacefile`, so a mistake is named
with its line before any trial runs."""

from __future__ import annotations

import re

from tunelab.errors import is_plain_number
from tunelab.fidelity import Fidelity
from tunelab.script.outputs import JsonLines, RegexLines
from tunelab.script.source import Document, KeyPath, StudyFileError
from tunelab.script.template import BUILTINS
from tunelab.script.wording import got, written


def _fail(doc: Document, key: KeyPath | str, message: str) -> StudyFileError:
    return doc.error(key if isinstance(key, tuple) else (key,), message)


def parse_report(doc: Document, metrics: list[str], has_result_file: bool) -> JsonLines | RegexLines:
    """``report:``: JSON lines (the default) or a regex whose named groups capture the metrics."""
    spec = doc.data.get("report", "json")
    if spec == "json":
        return JsonLines()
    if not isinstance(spec, dict) or set(spec) != {"regex"}:
        raise _fail(doc, "report", f"must be json (JSON lines, the default) or a mapping {{regex: PATTERN}}, the "
                                   f"pattern with named groups; {got(spec)}")
    if not isinstance(spec["regex"], str):
        raise _fail(doc, ("report", "regex"), f"must be text, a regular expression; {got(spec['regex'])}")
    try:
        reader = RegexLines(spec["regex"])
    except re.error as err:
        raise _fail(doc, ("report", "regex"), f"not a valid regular expression: {err}") from None
    if not reader.metrics:
        raise _fail(doc, ("report", "regex"), "has no named group for a metric; write e.g. "
                                              "'epoch (?P<step>\\d+) acc (?P<accuracy>[\\d.]+)'")
    missing = [m for m in metrics if m not in reader.metrics]
    if missing and not has_result_file:
        raise _fail(doc, ("report", "regex"), f"captures {', '.join(reader.metrics)} but not the metric "
                                              f"{missing[0]!r}; name a group (?P<{missing[0]}>...)")
    return reader


def parse_fidelity(doc: Document, space: dict) -> Fidelity | None:
    """``fidelity: {NAME: {min: M, max: N, resumable: BOOL}}``: the resource behind {budget}."""
    spec = doc.data.get("fidelity")
    if spec is None:
        return None
    example = "e.g. {epochs: {min: 1, max: 30}}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise _fail(doc, "fidelity", f"must be a mapping that names one resource with its range, {example}; "
                                     f"{got(spec)}")
    (name, bounds), = spec.items()
    key = ("fidelity", name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise _fail(doc, "fidelity", f"the resource's name must be a word such as epochs (letters, digits and _, "
                                     f"not starting with a digit); {got(name)}")
    if name in space:
        raise _fail(doc, key, f"{name!r} is also a parameter of the space; the budget cannot be both")
    if name in BUILTINS and name != "budget":
        raise _fail(doc, key, f"{{{name}}} is a built-in placeholder ({BUILTINS[name]}); name the resource "
                              "otherwise, e.g. epochs")
    if not isinstance(bounds, dict) or not {"min", "max"} <= set(bounds) <= {"min", "max", "resumable"}:
        raise _fail(doc, key, f"needs min and max (and resumable: true when a run can go on from its "
                              f"checkpoint), {example}; {got(bounds)}")
    low, high, resumable = bounds["min"], bounds["max"], bounds.get("resumable", False)
    if not all(is_plain_number(v) for v in (low, high)) or not 0 < low < high:
        raise _fail(doc, key, f"needs numbers with 0 < min < max; got min: {written(low)}, max: {written(high)}")
    if not isinstance(resumable, bool):
        raise _fail(doc, key + ("resumable",), f"must be true or false; {got(resumable)}")
    return Fidelity(name, low, high, resumable)


