"""Values a space hands to the objective keep the type the user gave: constants that JSON would
change (dict keys), and the grid's values of an integer parameter that switches others on."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.errors import SpaceError
from tunelab.space import Space


@pytest.mark.parametrize("value", [{0: 1.0, 1: 2.0}, {"weights": {1: 2}}, {"a": [{None: "x"}]}, {1.5: "a"}, {True: 0}])
def test_a_constant_whose_dict_keys_json_would_turn_into_strings_is_refused(value):
    # class_weight={0: 1, 1: 2} would reach the model as {'0': 1, '1': 2}: every fit would fail or weigh nothing
    with pytest.raises(SpaceError, match="dict keys are strings.*give this value to the model directly"):
        tl.fixed(value)
    with pytest.raises(SpaceError, match="parameter 'class_weight': fixed values are kept as JSON"):
        Space({"C": tl.uniform(0.1, 1.0), "class_weight": value})


def test_a_constant_with_string_keys_is_kept_as_it_is():
    value = {"a": {"b": [1, 2]}, "c": None}
    assert tl.fixed(value).value == value
    assert Space({"opts": value}).sample(0)["opts"] == value


def test_the_grid_gives_an_integer_parameter_integers_also_where_a_condition_names_a_float():
    space = Space({"layers": tl.randint(1, 10), "width": tl.uniform(0.0, 1.0, when={"layers": 5.0})})
    grid = list(space.grid(3))
    assert all(type(config["layers"]) is int for config in grid), grid
    assert [c["layers"] for c in grid if "width" in c] == [5, 5, 5]
    assert all(space.validate(config) == config for config in grid)


def test_a_grid_search_over_such_a_space_hands_the_objective_integers():
    seen = []

    def objective(config, trial):
        seen.append(config["layers"])
        return float(config["layers"])

    space = {"layers": tl.randint(1, 10), "width": tl.uniform(0.0, 1.0, when={"layers": 5.0})}
    tl.tune(objective, space, metric="loss", mode="min", searcher="grid", searcher_options={"points": 3},
            n_trials=20, progress=False)
    assert sorted(seen) == [1, 5, 5, 5, 6, 10] and all(type(v) is int for v in seen)
