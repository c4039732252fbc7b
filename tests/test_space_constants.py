"""Constants handed in from numpy, and configurations checked against a constant: a value that is
not the constant is refused with the parameter's name, never with a crash from deep inside."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunelab as tl
from tunelab.errors import SpaceError
from tunelab.space import Space


def test_a_list_constant_matches_the_same_numbers_however_they_are_written():
    space = Space({"lr": tl.uniform(0.0, 1.0), "sizes": tl.fixed([1, 2])})
    for written in ([1, 2], (1, 2), [1.0, 2.0], [np.int64(1), 2], np.array([1, 2]), np.array([1.0, 2.0])):
        assert space.validate({"lr": 0.5, "sizes": written}) == {"lr": 0.5, "sizes": [1, 2]}
    assert Space({"opts": {"a": [1, 2]}}).validate({"opts": {"a": np.array([1, 2])}}) == {"opts": {"a": [1, 2]}}


@pytest.mark.parametrize("value", [{1, 2}, object(), [1, {2}], {"a": object()}])
def test_a_value_json_cannot_hold_is_refused_as_not_the_constant(value):
    with pytest.raises(SpaceError, match=r"parameter 'sizes': .* differs from the fixed value \[1, 2\]"):
        Space({"lr": tl.uniform(0.0, 1.0), "sizes": tl.fixed([1, 2])}).validate({"lr": 0.5, "sizes": value})
    with pytest.raises(SpaceError, match="parameter 'depth': .* differs from the fixed value 3"):
        Space({"depth": 3}).validate({"depth": value})


def test_a_true_is_still_not_the_constant_one_inside_a_list():
    with pytest.raises(SpaceError, match="differs from the fixed value"):
        Space({"flags": tl.fixed([1, 0])}).validate({"flags": [True, False]})


def test_numpy_arrays_and_numbers_inside_a_constant_become_plain_values():
    weights = tl.fixed(np.array([[0.5, 1.0], [2.0, 4.0]]))
    assert weights.value == [[0.5, 1.0], [2.0, 4.0]]
    nested = tl.fixed({"mean": [np.float64(0.25), np.int64(3)], "shape": (np.int32(28), 28)})
    assert nested.value == {"mean": [0.25, 3], "shape": [28, 28]}
    assert all(type(v) in (int, float) for v in nested.value["mean"] + nested.value["shape"])
    config = Space({"norm": {"mean": [np.float32(0.5)]}}).sample(0)
    assert json.loads(json.dumps(config)) == config == {"norm": {"mean": [0.5]}}


def test_a_plain_array_in_a_space_is_ambiguous_like_a_plain_list():
    with pytest.raises(SpaceError, match=r"parameter 'bs': a plain ndarray is ambiguous; use tl.choice\(\[8, 16\]\)"):
        Space({"bs": np.array([8, 16])})


def test_a_configuration_changed_in_place_leaves_the_space_and_other_configurations_alone():
    space = Space({"k": tl.choice(["a", "b"]), "sizes": tl.fixed([64, 32]), "opts": {"momentum": 0.9}})
    handed_out = [space.sample(0), space.validate({"k": "a"}), space.validate({"k": "a", "sizes": [64, 32]}),
                  *space.grid(2), space.decode([0.5])]
    for config in handed_out:
        config["sizes"].append(16)  # building the layers from the list in place
        config["opts"]["lr"] = 0.1
    assert space["sizes"].value == [64, 32] and space["opts"].value == {"momentum": 0.9}
    assert space.sample(1)["sizes"] == [64, 32] and list(space.grid(2))[1]["opts"] == {"momentum": 0.9}
    assert Space.from_json(space.to_json()) == Space({"k": tl.choice(["a", "b"]), "sizes": tl.fixed([64, 32]),
                                                      "opts": {"momentum": 0.9}})


def test_a_dict_constant_keeps_the_order_it_was_written_in():
    # a model built layer by layer from the dict's items: an alphabetical order is another model
    layers = {"conv": 32, "bn": True, "act": "relu", "pool": 2}
    space = Space({"lr": tl.uniform(0.0, 1.0), "layers": layers})
    for config in (space.sample(0), space.validate({"lr": 0.5}), next(space.grid(2)),
                   Space.from_json(space.to_json()).sample(0)):
        assert list(config["layers"]) == ["conv", "bn", "act", "pool"]
    assert space == Space({"lr": tl.uniform(0.0, 1.0), "layers": dict(sorted(layers.items()))})  # the same space
