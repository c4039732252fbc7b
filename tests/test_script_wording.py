"""Errors about study files speak YAML/TOML (a mapping, a list, a number, text), never Python."""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import pytest

from tunelab.script.source import StudyFileError
from tunelab.script.studyfile import load_study_file
from tunelab.script.wording import got, kind, written

BASE = {"name": "b", "command": "'{python} train.py {x}'", "metric": "acc", "mode": "max",
        "space": "{x: {uniform: [0, 1]}}", "n_trials": "3"}

#: A label, the keys changed (None: left out), and what the message must say (key path, line, allowed).
BAD = [
    ("space is a list", {"space": "[a, b]"}, "s.yaml:5: space: must map parameter names", "got a list: [a, b]"),
    ("space is a number", {"space": "3"}, "s.yaml:5: space:", "got the number 3"),
    ("space is empty", {"space": ""}, "s.yaml:5: space:", "got no value"),
    ("parameter named by a number", {"space": "{1: {uniform: [0, 1]}}"}, "s.yaml:5: space.1:", "'1'"),
    ("bounds are text", {"space": "{x: {uniform: [a, 1]}}"}, "space.x.uniform[0]: low must be a number",
     "got the text 'a'"),
    ("one bound", {"space": "{x: {uniform: 3}}"}, "space.x.uniform: needs a list of two numbers", "got the number 3"),
    ("a choice of mappings", {"space": "{x: {choice: [{a: 1}]}}"}, "space.x.choice[0]:", "got a mapping: {a: 1}"),
    ("log is text", {"space": "{x: {uniform: [1, 2], log: maybe}}"}, "space.x.log: must be true or false",
     "got the text 'maybe'"),
    ("when is a list", {"space": "{x: {uniform: [1, 2], when: [a]}}"}, "space.x.when: must be a mapping",
     "got a list: [a]"),
    ("preset is a number", {"space": "{preset: 3}"}, "space.preset:", "got the number 3"),
    ("missing command", {"command": None}, "s.yaml: the key 'command' is missing", ""),
    ("command is a mapping", {"command": "{a: 1}"}, "s.yaml:2: command: must be text", "got a mapping: {a: 1}"),
    ("command word is a mapping", {"command": "[python, {a: 1}]"}, "command[1]:", "got a mapping: {a: 1}"),
    ("metric is a number", {"metric": "3"}, "s.yaml:3: metric:", "got the number 3"),
    ("mode is empty", {"mode": ""}, "s.yaml:4: mode: must be min or max", "got no value"),
    ("n_trials is text", {"n_trials": "ten"}, "s.yaml:6: n_trials: must be a whole number", "got the text 'ten'"),
    ("n_trials is a list", {"n_trials": "[1]"}, "s.yaml:6: n_trials:", "got a list: [1]"),
    ("n_trials is true", {"n_trials": "true"}, "s.yaml:6: n_trials:", "got true"),
    ("timeout is text", {"timeout": "1h"}, "timeout: must be a number of seconds", "got the text '1h'"),
    ("target is text", {"target": "high"}, "target: must be a number", "got the text 'high'"),
    ("workers is text", {"workers": "two"}, "workers: must be a whole number", "got the text 'two'"),
    ("seed is a float", {"seed": "1.5"}, "seed: must be a whole number", "got the number 1.5"),
    ("storage is a list", {"storage": "[a]"}, "storage: must be text", "got a list: [a]"),
    ("env is a list", {"env": "[a]"}, "env: must be a mapping", "got a list: [a]"),
    ("env value is a mapping", {"env": "{A: {b: 1}}"}, "env.A: must be text", "got a mapping: {b: 1}"),
    ("enqueue is a mapping", {"enqueue": "{x: 1}"}, "enqueue: must be a list", "got a mapping: {x: 1}"),
    ("enqueue item is a number", {"enqueue": "[3]"}, "enqueue[0]: must be a mapping", "got the number 3"),
    ("report is empty", {"report": ""}, "report: must be json", "got no value"),
    ("regex is a number", {"report": "{regex: 3}"}, "report.regex: must be text", "got the number 3"),
    ("fidelity is a list", {"fidelity": "[1]"}, "fidelity: must be a mapping", "got a list: [1]"),
    ("fidelity range is a list", {"fidelity": "{epochs: [1, 2]}"}, "fidelity.epochs: needs min and max",
     "got a list: [1, 2]"),
    ("searcher is a number", {"searcher": "3"}, "searcher: must name a searcher", "got the number 3"),
    ("options are a list", {"searcher_options": "[1]"}, "searcher_options: must be a mapping", "got a list: [1]"),
    ("a key YAML reads as true", {"yes": "1"}, "yes: YAML reads this key as true/false", "'yes'"),
]
PYTHON = re.compile(r"\b(None|True|False|dict|NoneType|str|int|float|tuple|bool)\b|\['|\{'|'\]|: '[^']*'\}")


def study_text(changes: dict) -> str:
    data = {**BASE, **changes}
    return "".join(f"{key}: {value}\n" for key, value in data.items() if value is not None)


@pytest.mark.parametrize("label, changes, where, what", BAD, ids=[b[0] for b in BAD])
def test_errors_name_the_place_and_the_kind_in_the_files_terms(tmp_path, label, changes, where, what):
    (tmp_path / "s.yaml").write_text(study_text(changes))
    with pytest.raises(StudyFileError) as info:
        load_study_file(tmp_path / "s.yaml")
    message = str(info.value)
    assert where in message and what in message, message
    assert not PYTHON.search(message.replace(str(tmp_path), "")), message


def test_a_study_file_that_is_no_mapping(tmp_path):
    for text, what in (("[a, b]", "this one is a list: [a, b]"), ("hello", "this one is text: 'hello'")):
        (tmp_path / "s.yaml").write_text(text)
        with pytest.raises(StudyFileError, match=re.escape(what)):
            load_study_file(tmp_path / "s.yaml")


def test_toml_errors_speak_toml_and_name_the_line(tmp_path):
    (tmp_path / "s.toml").write_text(textwrap.dedent("""\
        command = "run {x}"
        metric = "acc"
        mode = "max"
        n_trials = [3]

        [space.x]
        uniform = [0, 1]
        """))
    with pytest.raises(StudyFileError, match=re.escape("s.toml:4: n_trials: must be a whole number, 1 or more; "
                                                       "got a list: [3]")):
        load_study_file(tmp_path / "s.toml")


def test_values_are_named_and_shown_as_a_study_file_writes_them():
    assert [kind(v) for v in ({}, [], 1.5, "a", True, None, dt.date(2024, 1, 2))] == [
        "a mapping", "a list", "a number", "text", "true/false", "no value", "a date"]
    assert written({"a": [1, "b c", None, False], "yes": "no"}) == "{a: [1, 'b c', null, false], 'yes': 'no'}"
    assert got(None) == "got no value" and got([]) == "got an empty list" and got("") == "got empty text"
    assert got("it's") == "got the text 'it''s'" and got(3) == "got the number 3"
    assert written("x" * 200).endswith("...") and len(written("x" * 200)) == 80
