"""Tests for what the learning searchers share (tunelab/searchers/_learning.py): the history
read as arrays, a searcher object used for more than one study, warm starts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.searchers import SEARCHERS
from tunelab.space import Space

SPACE = {"x": tl.uniform(0, 1), "c": tl.choice(["a", "b", "c"])}
LEARNING = ["bo", "rf", "tpe", "anneal", "genetic", "evolution"]


def _loss(config) -> float:
    return (config["x"] - 0.3) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[config["c"]]


def _options(name: str) -> dict:
    """A short start (and population), so that the model is at work within a few trials."""
    return {"n_startup": 3, "population": 3} if name in ("genetic", "evolution") else {"n_startup": 3}


@pytest.mark.parametrize("name", LEARNING)
def test_a_searcher_object_given_to_a_second_study_learns_from_that_study_alone(name):
    """Its per-trial caches were keyed by trial id, which each in-memory study numbers from 1:
    the second study's model was fitted to the first study's configurations and values."""
    space = Space(SPACE)
    options = _options(name)
    reused = SEARCHERS.create(name, space, 7, options=options)
    tl.tune(lambda c: -_loss(c), space, metric="loss", mode="min", searcher=reused, n_trials=6, storage=None,
            progress=False, seed=1)
    second = tl.create_study(space, metric="loss", mode="min", searcher=reused, storage=None, seed=1)
    told = [{"x": 0.9, "c": "c"}, {"x": 0.1, "c": "b"}, {"x": 0.5, "c": "a"}, {"x": 0.7, "c": "a"}]
    for config in told:
        second.tell(config=config, value=_loss(config))
    data = reused.observe(second.history())
    assert np.allclose(data.points, [space.encode(c) for c in told])
    assert np.allclose(data.scores[:, 0], [_loss(c) for c in told])
    # and it proposes what a fresh searcher with its seed proposes there
    fresh = SEARCHERS.create(name, space, 7, options=options)
    assert reused.suggest(second.history(), 3) == fresh.suggest(second.history(), 3)


@pytest.mark.parametrize("value", [np.float32(0.25), np.int64(2), {"loss": np.float32(0.25)}, {"loss": np.int64(2)}])
def test_a_warm_start_value_from_numpy_is_the_number_it_holds(value):
    """One inside a dict of metrics was taken for a failed configuration, and one given alone
    was refused as 'not a number'."""
    study = tl.create_study(SPACE, metric="loss", mode="min", searcher="tpe", storage=None,
                            searcher_options={"warm_start": [({"x": 0.5, "c": "a"}, value)]})
    number = float(value["loss"] if isinstance(value, dict) else value)
    assert study.searcher.observe(study.history()).scores.tolist() == [[number]]
    assert tl.Space(SPACE).validate(study.ask().config)


@pytest.mark.parametrize("value", ["0.25", True])
def test_a_warm_start_metric_that_is_no_number_is_refused_saying_what_it_takes(value):
    """Text (a value read from a CSV file) or True was taken for a failed configuration."""
    with pytest.raises(ConfigError, match=r"warm_start\[0\]: the value of 'loss' must be a number \(None or NaN "
                                          r"for a configuration that failed\); got "):
        tl.create_study(SPACE, metric="loss", mode="min", searcher="bo", storage=None,
                        searcher_options={"warm_start": [({"x": 0.5, "c": "a"}, {"loss": value})]})


def test_a_warm_start_metric_that_is_none_or_nan_is_a_failed_configuration():
    study = tl.create_study(SPACE, metric="loss", mode="min", searcher="tpe", storage=None, searcher_options={
        "warm_start": [({"x": 0.5, "c": "a"}, {"loss": None}), ({"x": 0.2, "c": "b"}, float("nan"))]})
    assert study.searcher.observe(study.history()).scores.tolist() == [[np.inf], [np.inf]]


@pytest.mark.parametrize("name", LEARNING)
def test_values_near_the_float_limit_neither_end_the_run_nor_warn(name):
    """-1e308 beside 1e308: the GP and the forest ended the run with a ValueError (their targets
    overflowed to inf), and annealing's spread overflowed with RuntimeWarnings (and it then
    accepted every move)."""
    def extreme(config) -> float:
        return (1.7e308 if config["x"] > 0.5 else -1.7e308) * (0.9 + 0.1 * config["x"])

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        study = tl.tune(extreme, SPACE, metric="loss", mode="min", searcher=name, searcher_options=_options(name),
                        n_trials=6, storage=None, progress=False, seed=0)
    assert study.counts() == {"completed": 6}
