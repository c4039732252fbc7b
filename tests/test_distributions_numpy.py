"""Bounds, options and values read from numpy: a float32 stands for the decimal its user wrote,
and a condition's allowed values may come as a range or an array."""

from __future__ import annotations

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import SpaceError
from tunelab.space import Space


def test_float32_bounds_and_options_are_the_decimals_they_stand_for():
    assert tl.uniform(np.float32(0.1), np.float32(0.9)).low == 0.1
    rates = tl.choice(np.array([0.1, 0.2, 0.3], dtype=np.float32))
    assert rates.options == [0.1, 0.2, 0.3]
    space = Space({"rate": rates, "x": tl.uniform(np.float32(0.1), 1.0)})
    # a hand-written configuration (an enqueued baseline) names the values as written
    assert space.validate({"rate": 0.2, "x": 0.1}) == {"rate": 0.2, "x": 0.1}
    assert space.validate({"rate": np.float32(0.3), "x": np.float32(0.7)}) == {"rate": 0.3, "x": 0.7}
    assert Space({"x": tl.uniform(0.0, 0.1)}).validate({"x": np.float32(0.1)}) == {"x": 0.1}


@pytest.mark.parametrize("allowed", [range(3, 9), np.arange(3, 9), [3, 4, 5, 6, 7, 8]])
def test_a_condition_takes_its_allowed_values_as_a_range_or_an_array(allowed):
    space = Space({"layers": tl.randint(1, 8), "w3": tl.randint(8, 64, when={"layers": allowed})})
    assert space["w3"].when == {"layers": (3, 4, 5, 6, 7, 8)}
    assert all(("w3" in c) == (c["layers"] >= 3) for c in (space.sample(seed) for seed in range(30)))


def test_a_condition_on_an_array_still_names_values_that_can_never_hold():
    with pytest.raises(SpaceError, match=r"when=\{'layers': 9\} can never hold"):
        Space({"layers": tl.randint(1, 8), "w": tl.uniform(0.0, 1.0, when={"layers": np.arange(7, 10)})})
