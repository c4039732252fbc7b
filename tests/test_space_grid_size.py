"""The size of a grid is counted, not listed: the grid searcher asks for it when it is made and
the tuner before it starts, and warns with it when n_trials leaves part of the grid untried."""

from __future__ import annotations

import numpy as np

import tunelab as tl
from tunelab.space import Space


def test_a_conditional_grid_beyond_ten_million_points_is_counted_exactly():
    # nine numbers on 5 points each, and one more switched on by half of the choice: 5**9 * (5 + 1)
    params = {"optimizer": tl.choice(["sgd", "adam"]), **{f"p{i}": tl.uniform(0.0, 1.0) for i in range(9)},
              "momentum": tl.uniform(0.8, 0.99, when={"optimizer": "sgd"})}
    assert Space(params).grid_size(5) == 5**9 * 6


def test_the_counted_size_is_the_number_of_configurations_the_grid_lists():
    space = Space({
        "optimizer": tl.choice(["sgd", "adam", "rmsprop"]),
        "nesterov": tl.choice([True, False], when={"optimizer": "sgd"}),
        "dampening": tl.uniform(0.0, 0.5, when={"nesterov": False}),         # nested
        "layers": tl.randint(1, 6),
        "width3": tl.randint(8, 64, log=True, when={"layers": [3, 6], "optimizer": ["adam", "sgd"]}),  # two parents
        "lr": tl.loguniform(1e-4, 1e-1),
        "epochs": 10,
        "beta": tl.fixed(0.9, when={"optimizer": "adam"}),
    })
    for points in (2, 3, {"lr": 1, "layers": 2}):
        listed = list(space.grid(points))
        assert space.grid_size(points) == len(listed) == len({repr(sorted(c.items())) for c in listed})


def test_a_float_range_a_few_floats_wide_gives_each_grid_point_once():
    narrow = tl.uniform(1.0, float(np.nextafter(1.0, 2.0)))
    assert narrow.grid(5) == [1.0, float(np.nextafter(1.0, 2.0))]
    space = Space({"x": narrow, "k": tl.choice(["a", "b"])})
    assert space.grid_size(5) == len(list(space.grid(5))) == 4
