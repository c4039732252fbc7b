"""A study's files go beside the database file its storage URL names, however the URL spells it."""

from __future__ import annotations

import tunelab as tl


def _saves_a_file(config, trial):
    print("training")
    trial.artifact_path("model.txt").write_text(str(config["x"]))
    return config["x"]


def test_files_go_beside_a_database_whose_url_escapes_its_folder_name(tmp_path):
    """'my runs/' written 'my%20runs/' in the URL: the database went to 'my runs/' and its logs and
    artefacts to a new folder 'my%20runs/', so copying the database and its files missed them."""
    (tmp_path / "my runs #1").mkdir()
    url = f"sqlite:///{tmp_path}/my%20runs%20%231/lab.db?mode=rwc"
    study = tl.tune(_saves_a_file, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0,
                    storage=url, name="escaped", progress=False)
    folder = tmp_path / "my runs #1"
    assert (folder / "lab.db").is_file()
    trial_folder = folder / "tunelab-artifacts" / "escaped" / "0"
    assert (trial_folder / "model.txt").read_text() == str(study.trials[0].config["x"])
    assert (trial_folder / "stdout.txt").read_text() == "training\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my runs #1"]
