"""Opening, listing and deleting studies, and the files a study and its trials keep."""

from __future__ import annotations

import pathlib
import shutil

import pytest

import tunelab as tl

SPACE = {"x": tl.uniform(0.0, 1.0)}


def create(tmp_path, **kwargs):
    options = {"metric": "loss", "mode": "min", "name": "s", "storage": f"sqlite:///{tmp_path / 'a.db'}"}
    return tl.create_study(SPACE, **{**options, **kwargs})


def test_listing_or_deleting_in_a_database_that_is_not_there_makes_no_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert tl.list_studies(url) == []
    with pytest.raises(tl.StudyNotFound, match="no database at"):
        tl.delete_study("s", url)
    assert list(tmp_path.iterdir()) == []  # no empty database, no lock file beside it


def test_a_study_reopened_with_another_artifact_dir_is_refused_while_its_files_are_there(tmp_path):
    """The new trials' files went to the new folder and a paused trial resumed without its
    checkpoint, which stayed in the first."""
    study = create(tmp_path, artifact_dir=tmp_path / "first")
    trial = study.ask()
    trial.save_checkpoint({"epoch": 3})
    with pytest.raises(tl.ConfigError, match=r"keeps its trials' files in .*first/s.*would split them"):
        create(tmp_path, artifact_dir=tmp_path / "second", load_if_exists=True)
    again = create(tmp_path, artifact_dir=tmp_path / "first", load_if_exists=True)  # the same folder: fine
    assert again.trial_dir(trial.number) == study.trial_dir(trial.number)
    shutil.move(tmp_path / "first", tmp_path / "moved")  # the files moved away: pointed at their new place
    moved = create(tmp_path, artifact_dir=tmp_path / "moved", load_if_exists=True)
    assert (moved.trial_dir(trial.number) / "checkpoint").is_dir()


def test_artifact_path_takes_a_pathlib_path(tmp_path):
    trial = create(tmp_path).ask()
    path = trial.artifact_path(pathlib.Path("plots") / "curve.txt")
    assert path == trial.artifact_path("plots/curve.txt") and path.parent.is_dir()
    with pytest.raises(tl.ConfigError, match="must stay inside the trial's folder"):
        trial.artifact_path(pathlib.Path("..") / "elsewhere.txt")
