"""A study file's space: a contradiction or a likely slip is named at its line, not taken silently."""

from __future__ import annotations

import pytest

from tunelab.script.source import StudyFileError, read_document
from tunelab.script.spacefile import parse_space

pytest.importorskip("yaml")


def space_of(tmp_path, body: str):
    path = tmp_path / "study.yaml"
    path.write_text("space:\n" + body)
    return parse_space(read_document(path))


def test_loguniform_with_log_false_is_a_contradiction(tmp_path):
    with pytest.raises(StudyFileError, match=r"study.yaml:2: space.lr.log: loguniform is on a log scale; "
                                             r"write \{uniform: \[low, high\]\} for a linear one"):
        space_of(tmp_path, "  lr: {loguniform: [1.0e-5, 1.0e-1], log: false}\n")
    assert space_of(tmp_path, "  lr: {loguniform: [1.0e-5, 1.0e-1], log: true}\n")["lr"].log


def test_a_mapping_meant_as_a_constant_is_told_how_to_write_it(tmp_path):
    with pytest.raises(StudyFileError, match=r"space.norm.mean: unknown distribution or option 'mean'.*"
                                             r"a constant that is a mapping is written \{fixed: \{mean: 0.5\}\}"):
        space_of(tmp_path, "  norm: {mean: 0.5}\n")
    assert space_of(tmp_path, "  norm: {fixed: {mean: 0.5}}\n")["norm"].value == {"mean": 0.5}
