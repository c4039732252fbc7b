"""One parameter at a time, on objectives whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import ConfigError

import lab_objectives as objectives

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1), "z": tl.choice(["a", "b"]), "k": 7}
BASELINE = {"x": 0.5, "y": 0.5, "z": "a"}


def test_spreads_are_the_known_ones_and_rank_the_parameters():
    result = tl.sensitivity(objectives.quadratic, BASELINE, SPACE, points=5, metric="loss")
    grid = np.linspace(0, 1, 5)
    assert result.sweeps["x"].values == pytest.approx(grid)
    assert result.sweeps["x"].metric == pytest.approx(10 * (grid - 0.3) ** 2)  # y stays at its baseline 0.5
    assert result.sweeps["y"].metric == pytest.approx(10 * 0.2 ** 2 + 0.1 * (grid - 0.5) ** 2)
    assert result.sweeps["z"].values == ["a", "b"] and result.sweeps["z"].spread == 0.0
    assert result.sweeps["x"].spread == pytest.approx(10 * 0.7 ** 2 - 10 * 0.05 ** 2)  # x=1 vs x=0.25
    assert result.ranking == ["x", "y", "z"]
    assert result.baseline_value == pytest.approx(0.4) and "k" not in result.sweeps


def test_the_seed_is_held_fixed_and_failures_are_kept():
    def objective(config, trial):
        if config["x"] > 0.9:
            raise RuntimeError("diverged")
        return {"loss": trial.seed + config["x"]}

    result = tl.sensitivity(objective, {"x": 0.5}, {"x": tl.uniform(0, 1)}, points=3, metric="loss", seed=11)
    assert result.sweeps["x"].metric == [11.0, 11.5, None]
    assert "diverged" in result.sweeps["x"].errors[2]


def test_conditional_children_appear_when_their_parent_switches_them_on():
    space = {"opt": tl.choice(["adam", "sgd"]), "momentum": tl.uniform(0.8, 1.0, when={"opt": "sgd"})}
    seen = []
    result = tl.sensitivity(lambda c: seen.append(dict(c)) or len(c), {"opt": "adam"}, space, points=3)
    assert {"opt": "sgd", "momentum": pytest.approx(0.9)} in seen
    assert list(result.sweeps) == ["opt"]
    assert result.inactive == ["momentum"] and result.to_json()["inactive"] == ["momentum"]  # said, not dropped
    with pytest.raises(ConfigError, match=r"the baseline switches \['momentum'\] off"):
        tl.sensitivity(lambda c: len(c), {"opt": "adam"}, space, points=3, params=["momentum"])


def test_bad_input_is_explained():
    with pytest.raises(ConfigError, match="points"):
        tl.sensitivity(objectives.quadratic, BASELINE, SPACE, points=1)
    with pytest.raises(ConfigError, match="metric='loss'"):
        tl.sensitivity(objectives.quadratic, BASELINE, SPACE)
    with pytest.raises(ConfigError, match="baseline itself failed"):
        tl.sensitivity(lambda c: 1 / 0, {"x": 0.5}, {"x": tl.uniform(0, 1)})
    with pytest.raises(tl.SpaceError):
        tl.sensitivity(objectives.quadratic, {"x": 2.0, "y": 0.5, "z": "a"}, SPACE, metric="loss")
    with pytest.raises(ConfigError, match=r"params must be a list of parameter names, e.g. \['lr'\]; got 'x'"):
        tl.sensitivity(objectives.quadratic, BASELINE, SPACE, metric="loss", params="x")  # not 'x' split in letters
    with pytest.raises(ConfigError, match="names a parameter twice"):
        tl.sensitivity(objectives.quadratic, BASELINE, SPACE, metric="loss", params=["x", "x"])


def test_the_baseline_counts_in_every_spread():
    """Around an optimum with an even number of points, the line's own points score alike: the
    parameter that matters most is the one that moves the metric off the baseline most."""
    def bowl(config):
        return (config["x"] - 0.5) ** 2 + 0.001 * config["y"]

    result = tl.sensitivity(bowl, {"x": 0.5, "y": 0.5}, {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}, points=2)
    assert result.sweeps["x"].metric == pytest.approx([0.2505, 0.2505])
    assert result.sweeps["x"].spread == pytest.approx(0.25) and result.ranking == ["x", "y"]
