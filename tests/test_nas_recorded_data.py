"""A study's recorded ArchitectureObjective finds the user's data function again from another
folder, as tunelab finds an ordinary objective from its recorded file."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.analysis import load_objective  # noqa: E402
from tunelab.tracking.objective import objective_path  # noqa: E402

def _objective_on_user_data(tmp_path, monkeypatch, module_name: str) -> str:
    """The recorded path of an objective on ``load`` of a new module of a project in tmp_path."""
    project = tmp_path / "project"
    project.mkdir()
    (project / f"{module_name}.py").write_text("from tunelab import nas\n\n\ndef load():\n"
                                          "    return nas.digits(batch_size=16, limit=60)\n")
    monkeypatch.syspath_prepend(str(project))
    module = __import__(module_name)
    path = objective_path(nas.ArchitectureObjective(module.load, epochs=1, channels=2, layers=2))
    assert path is not None
    # later, elsewhere: the project's folder is neither the working folder nor on sys.path
    monkeypatch.delitem(sys.modules, module_name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(project)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return path


def test_the_data_function_of_a_recorded_objective_imports_from_another_folder(tmp_path, monkeypatch):
    objective = load_objective(_objective_on_user_data(tmp_path, monkeypatch, "nas_user_splits_moved"))
    assert isinstance(objective.data, nas.DataSplits) and len(objective.data.train.dataset) == 36


def test_a_data_function_whose_file_is_gone_says_where_it_was(tmp_path, monkeypatch):
    path = _objective_on_user_data(tmp_path, monkeypatch, "nas_user_splits_gone")
    (tmp_path / "project" / "nas_user_splits_gone.py").unlink()
    with pytest.raises(tl.ConfigError, match=r"cannot import the module of this objective's data function "
                                             r"'nas_user_splits_gone' .*it was recorded in .*project.*which is no "
                                             r"longer there .*run from the folder that holds it"):
        load_objective(path).data
