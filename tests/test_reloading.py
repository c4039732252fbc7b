"""While a script is loaded again to find its objective, no study may be made: loading it must
not start its tuning over (tl.tune and create_study refuse before they open any storage)."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.reloading import loading_script


def test_no_study_is_made_while_a_script_is_loaded_again_and_studies_are_made_after(tmp_path):
    url = f"sqlite:///{tmp_path / 'never.db'}"
    with loading_script("/somewhere/train.py"):
        with pytest.raises(ConfigError, match=r"/somewhere/train.py opens a study when it is loaded"):
            tl.tune(lambda config: config["x"], {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1,
                    storage=url)
        with pytest.raises(ConfigError, match="opens a study when it is loaded"):
            tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url)
        with pytest.raises(ConfigError, match="opens a study when it is loaded"):  # then ask and tell at the top
            tl.load_study("any", storage=url)
    assert not (tmp_path / "never.db").exists()
    study = tl.tune(lambda config: config["x"], {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1)
    assert len(study.trials) == 1
