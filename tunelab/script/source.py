"""Reading a study file (YAML or TOML) while remembering where each key was written.

Every complaint about a study file names the file, the line and the key, so a user fixes it in
one look. YAML gives exact lines through its node marks; TOML's standard parser gives none, so a
light scan of the text finds the line of each ``key =`` and ``[table]`` (good enough to point at
the right place). ``--set key=value`` overrides from the shell are applied to the same document
and errors about them point at the flag instead of a line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError
from tunelab.script.wording import kind, written

KeyPath = tuple  # a key path inside the document: ("space", "lr", "loguniform", 0)


class StudyFileError(ConfigError):
    """A study file (or a --set override of it) that cannot be used as written."""


@dataclass
class Document:
    """The data of a study file plus where each key came from."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overrides: dict[KeyPath, str] = field(default_factory=dict)

    def where(self, key: KeyPath) -> str:
        """'file:line' of the deepest known part of ``key`` (or the --set flag that wrote it)."""
        for n in range(len(key), 0, -1):
            prefix = tuple(key[:n])
            if prefix in self.overrides:
                return self.overrides[prefix]
            if prefix in self.lines:
                return f"{self.path}:{self.lines[prefix]}"
        return str(self.path)

    def error(self, key: KeyPath, message: str) -> StudyFileError:
        name = _dotted(key)
        return StudyFileError(f"{self.where(key)}: {name}: {message}" if name else f"{self.where(key)}: {message}")


def _dotted(key: KeyPath) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_document(path: str | Path, text_keys: frozenset[str] = frozenset(),
                  text_maps: frozenset[str] = frozenset()) -> Document:
    """Parse a ``.yaml``/``.yml`` or ``.toml`` study file. A top-level key in ``text_keys`` is
    read as the text written there even where YAML or TOML would read a number, true/false or a
    date: ``name: 123`` names a study "123" (and ``name: 007`` "007", not 7), just as
    ``--set name=123`` does, and ``workdir: 2024`` is the folder 2024.

    A top-level key in ``text_maps`` holds NAME: text pairs (``env:``), both read as written:
    an environment variable is text, and YAML would make ``VERSION: 1.10`` "1.1", ``X: 010`` 8
    and ``FLAG: yes`` true. A blank value there is the empty text (``A=`` in a shell); an
    unquoted ``null`` or ``~`` stays no value, for the checker to refuse as ambiguous. TOML's
    numbers, true/false and dates there become the text of their line; one whose line is not
    found (in an inline table) stays typed, for the checker to ask for quotes."""
    path = Path(path)
    if not path.is_file():
        raise StudyFileError(f"no study file at {path}" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is no key of TOML's
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise StudyFileError(f"{path}:{line}: a study file is UTF-8 text; byte {err.object[err.start]:#x} is not "
                             "(save it as UTF-8)") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        data, lines = _read_yaml(path, text, text_keys, text_maps)
    elif suffix == ".toml":
        data, lines = _read_toml(path, text, text_keys, text_maps)
    else:
        raise StudyFileError(f"{path}: a study file ends in .yaml, .yml or .toml; got {suffix or 'no suffix'!r}")
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{kind(data)}: {written(data)}"
        raise StudyFileError(f"{path}: a study file is a mapping of keys to values (command: ..., metric: ..., "
                             f"space: ...); this one is {what}")
    return Document(path, data, lines)


# -- YAML --------------------------------------------------------------------------------------

def _yaml():
    try:
        import yaml
    except ImportError:
        raise StudyFileError("reading YAML study files needs PyYAML: pip install 'tunelab[run]' "
                             "(or write the study file in TOML)") from None
    return yaml


def _yaml_loader(yaml):
    """SafeLoader that also reads ``1e-6`` as a number (YAML 1.1 wants ``1.0e-6``), so that
    a learning-rate range is not silently a pair of strings."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))
    return Loader


def _read_yaml(path: Path, text: str, text_keys: frozenset[str],
               text_maps: frozenset[str]) -> tuple[Any, dict[KeyPath, int]]:
    yaml = _yaml()
    loader_cls = _yaml_loader(yaml)
    try:
        node = yaml.compose(text, Loader=loader_cls)
        if node is None:
            return {}, {}
        lines: dict[KeyPath, int] = {}
        _yaml_lines(path, node, (), lines, yaml)
        if isinstance(node, yaml.MappingNode):
            _yaml_keep_text(node, text_keys, text_maps, yaml)
        data = _construct(loader_cls, node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        source = text.splitlines()
        there = source[mark.line] if mark is not None and mark.line < len(source) else ""
        raise StudyFileError(f"{path}{line}: not valid YAML: {problem}{_yaml_hint(problem, there, text_keys)}") from None
    return data, lines


_ESCAPE_HINT = " (in double quotes a backslash starts an escape; single quotes keep it as it is)"


def _yaml_hint(problem: str, line: str, text_keys: frozenset[str]) -> str:
    """What the usual cause of a YAML error means in a study file: a regex's ``\\d`` in double
    quotes, or a command that starts with a placeholder and so reads as a YAML mapping."""
    if "escape" in problem:
        return _ESCAPE_HINT
    braced = re.match(r"\s*([A-Za-z_]\w*)\s*:\s*\{", line)
    if braced and braced.group(1) in text_keys:
        key = braced.group(1)
        return (f" (a value that starts with {{ is a mapping to YAML: write {key}'s value in quotes, "
                f"e.g. {key}: \"{line.split(':', 1)[1].split(' #')[0].strip()}\")")
    return ""


_YAML_STR, _YAML_NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"


def _construct(loader_cls, node) -> Any:
    """The Python data of a composed (and perhaps re-tagged) YAML node."""
    loader = loader_cls("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_keep_text(node, text_keys: frozenset[str], text_maps: frozenset[str], yaml) -> None:
    """Unquoted values at ``text_keys`` (and the items of a list there) read as written, and so
    do the names and values of a mapping at ``text_maps``. Quoted ones are text already; an
    empty value at a text key stays empty (it is no name at all)."""
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in text_keys:
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for item in items:
                _as_text(item, yaml)
        elif key_node.value in text_maps and isinstance(value_node, yaml.MappingNode):
            _yaml_text_map(value_node, yaml)


def _yaml_text_map(node, yaml) -> None:
    """NAME: value pairs whose names and values are the text written (``ON: 1`` is the variable
    ON, not true; ``VERSION: 1.10`` is "1.10"); a blank value is the empty text."""
    for key_node, value_node in node.value:
        _as_text(key_node, yaml)
        _as_text(value_node, yaml, blank=True)


def _as_text(node, yaml, blank: bool = False) -> None:
    """Re-tag an unquoted scalar as text, so it is constructed as the characters written. No value
    (``null``, ``~``, nothing) stays no value, except that nothing at all is the empty text when
    ``blank``. Quoted and block scalars are text already; mappings and lists are left alone."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return
    if node.tag == _YAML_NULL and not (blank and node.value == ""):
        return
    node.tag = _YAML_STR


def _yaml_lines(path: Path, node, key: KeyPath, lines: dict[KeyPath, int], yaml) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if name in seen:
                raise StudyFileError(f"{path}:{line}: {_dotted(key + (name,))}: duplicate key")
            seen.add(name)
            lines[key + (name,)] = line
            _yaml_lines(path, value_node, key + (name,), lines, yaml)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[key + (i,)] = item.start_mark.line + 1
            _yaml_lines(path, item, key + (i,), lines, yaml)


# -- TOML --------------------------------------------------------------------------------------

def _read_toml(path: Path, text: str, text_keys: frozenset[str],
               text_maps: frozenset[str]) -> tuple[Any, dict[KeyPath, int]]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise StudyFileError("reading TOML study files needs Python 3.11, or: pip install tomli") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"line (\d+)", str(err))
        line = f":{found.group(1)}" if found else ""
        raise StudyFileError(f"{path}{line}: not valid TOML: {err}") from None
    lines = _toml_lines(text)
    source = text.splitlines()
    for key in text_keys & data.keys():  # name = 123: the text written, as in YAML
        data[key] = _toml_written(source, lines, (key,), data[key], tomllib)
    for key in text_maps:  # [env] VERSION = 1.10: "1.10", as in YAML
        table = data.get(key)
        if isinstance(table, dict):
            for name, value in table.items():
                table[name] = _toml_written(source, lines, (key, name), value, tomllib)
    return data, lines


_TYPED = (bool, int, float, dt.date, dt.time)  # datetime is a date


def _toml_written(source: list[str], lines: dict[KeyPath, int], key: KeyPath, value: Any, tomllib) -> Any:
    """The text a TOML number, true/false or date at ``key`` is written as on its line, or the
    value as it is (text, a table, a key with no line of its own). The text found is parsed back
    and must give the same value, so a line that is not the key's own is never taken for it."""
    if not isinstance(value, _TYPED) or key not in lines:
        return value
    line = source[lines[key] - 1].strip()
    assign = _ASSIGN.match(line)
    if not assign:
        return value
    found = line[assign.end():].split("#", 1)[0].strip()
    try:
        same = tomllib.loads(f"v = {found}")["v"]
    except tomllib.TOMLDecodeError:
        return value
    return found if same == value and type(same) is type(value) else value


_TABLE = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(r"""^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _toml_key(text: str) -> KeyPath:
    return tuple(p.strip().strip("\"'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text) if p.strip())


def _toml_lines(text: str) -> dict[KeyPath, int]:
    """Lines of ``[tables]`` and ``key =`` assignments (the first time each key path appears)."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        header = _TABLE.match(stripped)
        if header:
            table = _toml_key(header.group(1))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(stripped)
        if assign:
            lines.setdefault(table + _toml_key(assign.group(1)), number)
    return lines


# -- overrides from the shell ------------------------------------------------------------------

#: Sections whose values are structures (a distribution, a reader, a fidelity): a --set value
#: there that opens a mapping, a list or a quote but does not parse is a typo, not a string.
STRUCTURED = frozenset({"space", "fidelity", "report", "enqueue", "searcher_options", "scheduler_options"})


def parse_value(text: str, structured: bool = False, text_map: bool = False) -> Any:
    """A --set value: YAML (or JSON) when it parses as such, else the plain string (a command's
    ``{python} train.py`` is no YAML). With ``structured``, text that starts as a YAML
    structure must parse (``{choice: [a, b}`` would otherwise be a constant). With ``text_map``,
    a mapping's names and values are the text written, as in the file (``--set env={V: 1.10}``)."""
    try:
        yaml = _yaml()
        parse, errors = (lambda t: _yaml_value(yaml, t, text_map)), (yaml.YAMLError,)
    except StudyFileError:
        parse, errors = json.loads, (ValueError,)
    try:
        return parse(text) if text.strip() else ""
    except errors as err:
        if structured and text.lstrip()[:1] in ("{", "[", '"', "'"):
            mark = getattr(err, "problem_mark", None)
            reason = f"{err.problem} at column {mark.column + 1}" if getattr(err, "problem", None) and mark \
                else " ".join(str(err).split())
            if "escape" in reason:
                reason += _ESCAPE_HINT
            raise StudyFileError(f"the value {text!r} does not parse as YAML: {reason}") from None
        return text


def _yaml_value(yaml, text: str, text_map: bool) -> Any:
    loader_cls = _yaml_loader(yaml)
    node = yaml.compose(text, Loader=loader_cls)
    if node is None:
        return None
    if text_map and isinstance(node, yaml.MappingNode):
        _yaml_text_map(node, yaml)
    return _construct(loader_cls, node)


def apply_override(doc: Document, assignment: str, flag: str | None = None,
                   strings: frozenset[str] = frozenset(), text_maps: frozenset[str] = frozenset()) -> None:
    """Apply ``key.sub=value`` to the document (``--set n_trials=20``); ``flag`` is how the user
    wrote it, for messages (another flag may stand for a --set: ``--executor ray``). A top-level
    key in ``strings``, and a key inside one of ``text_maps``, takes the text as it is typed
    (``--set name=123`` names a study "123", ``--set env.V=1.10`` is "1.10", ``--set env.V=``
    the empty text): a shell argument is text, and has no way to say "no value" but to leave
    the flag out, so ``--set name=null`` is the name "null"."""
    key_text, sep, value_text = assignment.partition("=")
    key = tuple(part.strip() for part in key_text.split("."))
    if not sep or not all(key):
        raise StudyFileError(f"--set needs key=value (e.g. --set n_trials=20); got {assignment!r}")
    target = doc.data
    for depth, part in enumerate(key[:-1]):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise StudyFileError(f"--set {assignment}: {_dotted(key[:depth + 1])} is not a mapping, "
                                 f"so it has no key {key[depth + 1]!r}")
        target = child
    if key in {(k,) for k in strings} or (len(key) == 2 and key[0] in text_maps):
        target[key[-1]] = value_text
    else:
        try:
            target[key[-1]] = parse_value(value_text, structured=key[0] in STRUCTURED,
                                          text_map=len(key) == 1 and key[0] in text_maps)
        except StudyFileError as err:
            raise StudyFileError(f"{flag or '--set ' + assignment}: {err}") from None
    doc.overrides[key] = flag or f"--set {assignment}"
