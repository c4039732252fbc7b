"""Warm starts of the learning searchers: stored with the study and read back as given, and
their configurations, already evaluated, not spent again."""

from __future__ import annotations

import math

import pytest

import tunelab as tl
from tunelab.space import config_key

SPACE = {"x": tl.uniform(0.0, 1.0), "c": tl.choice(["a", "b"])}


@pytest.mark.parametrize("value", [float("nan"), {"loss": float("nan")}, {"loss": float("inf")}])
@pytest.mark.parametrize("searcher", ["tpe", "bo"])
def test_a_study_warm_started_with_a_failed_configuration_reopens(tmp_path, searcher, value):
    """A NaN (a failed configuration) is stored as the text "NaN", which the reopened study's
    searcher refused ("value must be a number"): the study could not be loaded again."""
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    good = ({"x": 0.25, "c": "b"}, 0.5)
    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0, searcher=searcher, storage=url, name="w",
                            searcher_options={"warm_start": [({"x": 0.5, "c": "a"}, value), good]})
    trial = study.ask()
    study.tell(trial, 1.0)
    again = tl.load_study("w", storage=url)
    scores = again.searcher.observe(again.history()).scores[:, 0].tolist()
    assert scores[:2] == [math.inf, 0.5]
    assert again.searcher.suggest(again.history(), 1) == study.searcher.suggest(study.history(), 1)


@pytest.mark.parametrize("searcher", ["evolution", "bo"])
def test_a_warm_start_configuration_is_not_proposed_again(searcher):
    """Its value is known: evolution, mutating one coordinate of a warm-start parent, landed on
    another warm-start configuration in 7 of its first 15 proposals here, each a trial spent on
    nothing new."""
    space = {"a": tl.choice(list("pqrs")), "b": tl.randint(1, 5), "x": tl.uniform(0.0, 1.0)}

    def loss(config) -> float:
        return "pqrs".index(config["a"]) + abs(config["b"] - 3) + config["x"]

    warm = [({"a": a, "b": b, "x": 0.0}, loss({"a": a, "b": b, "x": 0.0})) for a in "pqrs" for b in range(1, 6)]
    study = tl.create_study(space, metric="loss", mode="min", seed=0, searcher=searcher,
                            searcher_options={"warm_start": warm})
    known = {config_key(config) for config, _ in warm}
    for _ in range(15):
        trial = study.ask()
        assert config_key(trial.config) not in known, trial.config
        study.tell(trial, loss(trial.config))
