"""Study files as editors and hands write them: a byte-order mark, a command or a regex that
YAML reads otherwise than meant, an empty result_file; each read, or refused with the cause."""

from __future__ import annotations

import textwrap

import pytest

from tunelab.script.source import StudyFileError
from tunelab.script.studyfile import load_study_file

HEAD = """\
    metric: acc
    mode: max
    space:
      lr: {uniform: [0.1, 0.9]}
    n_trials: 2
    """


def load(tmp_path, text: str):
    (tmp_path / "study.yaml").write_text(textwrap.dedent(HEAD) + textwrap.dedent(text))
    return load_study_file(tmp_path / "study.yaml")


def test_a_toml_study_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    text = 'command = "{python} train.py {lr}"\nmetric = "acc"\nmode = "max"\nn_trials = 2\n'
    text += '[space]\nlr = {uniform = [0.1, 0.9]}\n'
    (tmp_path / "study.toml").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    study_file = load_study_file(tmp_path / "study.toml")
    assert study_file.metrics == ["acc"] and list(study_file.space) == ["lr"]


def test_an_empty_result_file_is_refused_when_the_file_is_read(tmp_path):
    with pytest.raises(StudyFileError, match=r"study.yaml:7: result_file: must be text, a file name"):
        load(tmp_path, """\
            command: "{python} train.py {lr}"
            result_file: ''
            """)


@pytest.mark.parametrize("key, value", [("command", "{python} train.py --lr {lr}  # the script"),
                                        ("result_file", "{trial_dir}/result.json")])
def test_a_value_that_starts_with_a_placeholder_unquoted_says_to_quote_it(tmp_path, key, value):
    command = "" if key == "command" else 'command: "{python} train.py {lr}"\n'
    with pytest.raises(StudyFileError) as err:
        load(tmp_path, f"{command}{key}: {value}\n")
    assert "not valid YAML" in str(err.value)
    assert f"write {key}'s value in quotes, e.g. {key}: \"{value.split(' #')[0].strip()}\"" in str(err.value)


def test_a_regex_in_double_quotes_says_why_its_backslash_fails(tmp_path):
    with pytest.raises(StudyFileError, match=r"study.yaml:7: not valid YAML: found unknown escape character 'd' "
                                             r"\(in double quotes a backslash starts an escape"):
        load(tmp_path, """\
            command: "{python} train.py {lr}"
            report: {regex: "acc (?P<acc>\\d+)"}
            """)
