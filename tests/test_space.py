"""Tests for tunelab.distributions and tunelab.space: building, validating, sampling, encoding,
grids and JSON. Statistical checks use fixed seeds and generous thresholds so they cannot flake."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import tunelab as tl
from tunelab.distributions import Categorical, Fixed, Float, Int, value_key
from tunelab.errors import SpaceError
from tunelab.space import Space, config_key

HYPOTHESIS = settings(max_examples=150, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


def _draws(dist, n: int, seed: int = 0) -> list:
    """n draws from one distribution's prior, through the Space (what users and searchers see)."""
    space = Space({"x": dist})
    rng = np.random.default_rng(seed)
    return [space.sample(rng)["x"] for _ in range(n)]


# -- random spaces for the property tests ------------------------------------------------------

_option = st.one_of(
    st.integers(-50, 50),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)


@st.composite
def distributions(draw, when=None):
    kind = draw(st.sampled_from(["uniform", "loguniform", "randint", "randint_log", "choice", "ordinal", "fixed"]))
    if kind == "uniform":
        low = draw(st.floats(-1e6, 1e6))
        return tl.uniform(low, low + draw(st.floats(1e-3, 1e6)), when=when)
    if kind == "loguniform":
        low = draw(st.floats(1e-9, 1e3))
        return tl.loguniform(low, low * draw(st.floats(1.01, 1e8)), when=when)
    if kind == "randint":
        low = draw(st.integers(-1000, 1000))
        return tl.randint(low, low + draw(st.integers(1, 5000)), when=when)
    if kind == "randint_log":
        low = draw(st.integers(1, 1000))
        return tl.randint(low, low + draw(st.integers(1, 100_000)), log=True, when=when)
    if kind in ("choice", "ordinal"):
        options = draw(st.lists(_option, min_size=1, max_size=6, unique_by=value_key))
        return (tl.choice if kind == "choice" else tl.ordinal)(options, when=when)
    return tl.fixed(draw(_option), when=when)


@st.composite
def spaces(draw) -> Space:
    """Spaces of 1-6 parameters, some conditional on an earlier categorical (nesting included)."""
    params: dict = {}
    for i in range(draw(st.integers(1, 6))):
        parents = [n for n, d in params.items() if isinstance(d, Categorical)]
        when = None
        if parents and draw(st.booleans()):
            parent = draw(st.sampled_from(parents))
            options = params[parent].options
            allowed = draw(st.lists(st.sampled_from(options), min_size=1, max_size=len(options), unique_by=value_key))
            when = {parent: allowed if len(allowed) > 1 else allowed[0]}
        params[f"p{i}"] = draw(distributions(when=when))
    return Space(params)


def _same_config(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9):
                return False
        elif value_key(x) != value_key(y) or type(x) is not type(y):
            return False
    return True


def _check_activity(space: Space, config: dict) -> None:
    """Active parameters present, inactive ones absent."""
    for name in space:
        assert (name in config) == space.is_active(name, config), (name, config)


# -- distributions: construction -----------------------------------------------------------------


def test_constructors_record_their_domain():
    assert (tl.uniform(0, 1).low, tl.uniform(0, 1).high, tl.uniform(0, 1).log) == (0.0, 1.0, False)
    lr = tl.loguniform(1e-6, 1e-1)
    assert isinstance(lr, Float) and lr.log and (lr.low, lr.high) == (1e-6, 1e-1)
    n = tl.randint(1, 1000, log=True)
    assert isinstance(n, Int) and n.log and (n.low, n.high) == (1, 1000)
    c, o = tl.choice(["a", "b"]), tl.ordinal([8, 16, 32])
    assert not c.ordered and o.ordered and o.options == [8, 16, 32]
    assert c.to_json()["type"] == "choice" and o.to_json()["type"] == "ordinal"
    assert tl.fixed(3).value == 3
    # numpy scalars become plain Python values, so configurations stay JSON-friendly
    assert tl.randint(np.int64(1), np.int64(5)).low == 1 and type(tl.randint(np.int64(1), 5).low) is int
    assert tl.choice([np.int64(2), 3]).options == [2, 3] and type(tl.choice([np.int64(2)]).options[0]) is int


@pytest.mark.parametrize("build, message", [
    (lambda: tl.uniform(1, 1), r"low < high.*low=1, high=1"),
    (lambda: tl.uniform(2, 1), r"low < high"),
    (lambda: tl.loguniform(1e-3, 1e-4), r"low < high"),
    (lambda: tl.randint(5, 5), r"randint needs low < high"),
    (lambda: tl.randint(6, 2), r"randint needs low < high"),
    (lambda: tl.loguniform(0, 1), r"loguniform needs 0 < low.*low=0"),
    (lambda: tl.loguniform(-1, 1), r"loguniform needs 0 < low"),
    (lambda: tl.randint(0, 10, log=True), r"randint\(log=True\) needs low >= 1"),
    (lambda: tl.uniform("a", 1), r"uniform: low and high must be finite numbers.*'a'"),
    (lambda: tl.uniform(0, None), r"must be finite numbers"),
    (lambda: tl.uniform(True, 2), r"must be finite numbers"),
    (lambda: tl.uniform(0, float("inf")), r"must be finite numbers"),
    (lambda: tl.loguniform(1e-3, float("nan")), r"loguniform: low and high must be finite"),
    (lambda: tl.randint(1.5, 3), r"randint: low and high must be integers.*1.5"),
    (lambda: tl.randint("1", 3), r"must be integers"),
    (lambda: tl.choice([]), r"choice needs at least one option"),
    (lambda: tl.ordinal([]), r"ordinal needs at least one option"),
    (lambda: tl.choice("abc"), r"needs a list of options"),
    (lambda: tl.choice(5), r"needs a list of options"),
    (lambda: tl.choice([1, 1.0]), r"duplicate option 1.0"),
    (lambda: tl.choice(["a", "b", "a"]), r"duplicate option 'a'"),
    (lambda: tl.ordinal([8, 16, 8]), r"ordinal has a duplicate option 8"),
    (lambda: tl.choice([[1, 2], 3]), r"options must be str, number, bool or None"),
    (lambda: tl.choice([1, float("nan")]), r"options must be finite"),
    (lambda: tl.fixed(object()), r"fixed values must be JSON-serialisable"),
    (lambda: tl.uniform(0, 1, when={}), r"when= must be a non-empty dict"),
    (lambda: tl.uniform(0, 1, when={"opt": []}), r"lists no allowed value"),
    (lambda: tl.uniform(0, 1, when={"a": {1, 2}}), r"several allowed values go in a list, e.g. \{'a': \[1, 2\]\}"),
    # beyond 2**53 floats skip integers: randint(2**62, 2**62 + 3) only ever drew its low end
    (lambda: tl.randint(2**62, 2**62 + 3), r"randint: integers must lie within \+-2\*\*53"),
    (lambda: tl.randint(0, 2**64 - 1), r"within \+-2\*\*53 .*got 18446744073709551615"),
    (lambda: tl.randint(0, 10**400), r"got 100000000000\.\.\. \(401 digits\)"),
    (lambda: tl.choice([2**53, 2**53 + 1]), r"choice: integers must lie within"),  # not 'a duplicate'
    (lambda: tl.choice([10**400, 1]), r"choice: integers must lie within"),
    (lambda: tl.uniform(0, 10**400), r"uniform: low and high must be finite numbers"),
])
def test_bad_distributions_are_refused_with_a_clear_message(build, message):
    with pytest.raises(SpaceError, match=message):
        build()


def test_true_and_one_are_distinct_options_but_one_and_one_point_zero_are_not():
    c = tl.choice([True, 1, 0, False])
    assert c.options == [True, 1, 0, False]
    assert c.normalize(1.0) == 1 and c.normalize(True) is True and c.normalize(False) is False
    assert c.index(1) != c.index(True)


def test_float_range_whose_width_overflows_is_refused():
    """A range as wide as the doubles allow would decode to NaN; it is refused up front."""
    with pytest.raises(SpaceError, match=r"uniform: the range \[-1e\+308, 1e\+308\] is wider than a float"):
        tl.uniform(-1e308, 1e308)
    dist = tl.uniform(-1e307, 1e307)
    for u in (0.0, 0.25, 0.5, 1.0):
        assert dist.contains(dist.from_unit(u))


# -- sampling ------------------------------------------------------------------------------------


@HYPOTHESIS
@given(dist=distributions(), seed=st.integers(0, 2**32 - 1))
def test_samples_stay_in_bounds_and_have_the_right_type(dist, seed):
    for value in _draws(dist, 20, seed):
        assert dist.contains(value)
        if isinstance(dist, Float):
            assert type(value) is float and dist.low <= value <= dist.high
        elif isinstance(dist, Int):
            assert type(value) is int and dist.low <= value <= dist.high
        elif isinstance(dist, Categorical):
            assert any(value_key(value) == value_key(o) and type(value) is type(o) for o in dist.options)
        else:
            assert value == dist.value


@HYPOTHESIS
@given(dist=distributions())
def test_unit_interval_ends_map_to_domain_ends(dist):
    if isinstance(dist, (Float, Int)):
        assert dist.from_unit(0.0) == dist.low and dist.from_unit(1.0) == dist.high
    elif isinstance(dist, Categorical):
        assert dist.from_unit(0.0) == dist.options[0] and dist.from_unit(1.0) == dist.options[-1]


def test_loguniform_is_uniform_in_log_space():
    values = np.array(_draws(tl.loguniform(1e-6, 1e-1), 4000, seed=1234))
    assert values.min() >= 1e-6 and values.max() <= 1e-1
    assert stats.kstest(np.log10(values), stats.uniform(loc=-6, scale=5).cdf).pvalue > 0.001
    # the same test tells a linear draw apart: it is not a test that always passes
    linear = np.array(_draws(tl.uniform(1e-6, 1e-1), 4000, seed=1234))
    assert stats.kstest(np.log10(linear), stats.uniform(loc=-6, scale=5).cdf).pvalue < 1e-6


def test_uniform_is_uniform_in_linear_space():
    values = np.array(_draws(tl.uniform(0.85, 0.98), 4000, seed=99))
    assert stats.kstest(values, stats.uniform(loc=0.85, scale=0.13).cdf).pvalue > 0.001


def test_randint_log_puts_half_the_mass_below_the_geometric_middle():
    values = np.array(_draws(tl.randint(1, 1000, log=True), 4000, seed=7))
    assert set(np.unique(values)) <= set(range(1, 1001))
    assert 0.45 < np.mean(values < 32) < 0.62
    linear = np.array(_draws(tl.randint(1, 1000), 4000, seed=7))
    assert np.mean(linear < 32) < 0.06
    dist = tl.randint(1, 1000, log=True)
    assert dist.from_unit(0.0) == 1 and dist.from_unit(1.0) == 1000


@pytest.mark.parametrize("low, high", [(1, 6), (-3, 3), (0, 1)])
def test_randint_reaches_both_ends_with_uniform_counts(low, high):
    values = _draws(tl.randint(low, high), 3000 * (high - low + 1) // 3, seed=42)
    counts = Counter(values)
    assert set(counts) == set(range(low, high + 1))
    observed = [counts[v] for v in range(low, high + 1)]
    assert stats.chisquare(observed).pvalue > 0.001


def test_choice_is_uniform_over_options():
    counts = Counter(_draws(tl.choice(["a", "b", "c", "d"]), 4000, seed=3))
    assert stats.chisquare([counts[k] for k in "abcd"]).pvalue > 0.001


def test_sample_is_reproducible_from_a_seed():
    space = Space({"lr": tl.loguniform(1e-5, 1), "n": tl.randint(1, 9), "o": tl.choice(["a", "b"])})
    assert space.sample(5) == space.sample(5)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [space.sample(rng_a) for _ in range(5)] == [space.sample(rng_b) for _ in range(5)]
    assert space.sample(5) != space.sample(6)


# -- spaces: plain dicts, fixed values, unknown kinds ---------------------------------------------


def test_plain_scalars_are_fixed_and_not_searched():
    space = Space({"lr": tl.uniform(0, 1), "epochs": 10, "name": "resnet", "flag": True, "none": None,
                   "ratio": 0.5, "opts": {"a": 1}, "explicit": tl.fixed([1, 2])})
    for name in ("epochs", "name", "flag", "none", "ratio", "opts", "explicit"):
        assert isinstance(space[name], Fixed)
    assert space.dimensions == ["lr"]
    config = space.sample(0)
    assert {k: v for k, v in config.items() if k != "lr"} == {
        "epochs": 10, "name": "resnet", "flag": True, "none": None, "ratio": 0.5,
        "opts": {"a": 1}, "explicit": [1, 2]}
    assert space.encode(config).shape == (1,)


def test_a_space_is_built_from_a_plain_dict_or_another_space():
    params = {"x": tl.uniform(0, 1), "k": tl.randint(1, 3)}
    space = Space(params)
    assert list(space) == ["x", "k"] and len(space) == 2 and "x" in space and "y" not in space
    assert Space(space) == space and Space.coerce(space) is space and Space.coerce(params) == space
    assert space["k"] == tl.randint(1, 3)


@pytest.mark.parametrize("spec, message", [
    ({1, 2}, r"parameter 'p': a plain set is ambiguous; use tl\.choice"),
    ([8, 16, 32], r"a plain list is ambiguous; use tl\.choice\(\[8, 16, 32\]\)"),
    ((8, 16), r"a plain tuple is ambiguous; use tl\.choice"),
    (lambda x: x, r"parameter 'p': unknown kind function; use .*tl\.choice"),
    (object(), r"unknown kind object"),
    (1 + 2j, r"unknown kind complex"),
    (float("nan"), r"parameter 'p': fixed values must be JSON-serialisable"),
])
def test_unknown_parameter_kinds_are_refused(spec, message):
    with pytest.raises(SpaceError, match=message):
        Space({"p": spec})


@pytest.mark.parametrize("params, message", [
    ({}, r"search space is empty"),
    ([("x", 1)], r"a search space is a dict"),
    ({"": tl.uniform(0, 1)}, r"parameter names must be non-empty strings"),
    ({3: tl.uniform(0, 1)}, r"parameter names must be non-empty strings"),
])
def test_bad_space_shapes_are_refused(params, message):
    with pytest.raises(SpaceError, match=message):
        Space(params)


# -- conditions -------------------------------------------------------------------------------------

OPT_SPACE = {
    "optimizer": tl.choice(["sgd", "adam", "rmsprop"]),
    "nesterov": tl.choice([True, False], when={"optimizer": "sgd"}),
    "momentum": tl.uniform(0.8, 0.99, when={"optimizer": ["sgd", "rmsprop"]}),
    "beta2": tl.loguniform(1e-4, 1e-1, when={"optimizer": "adam"}),
    "dampening": tl.uniform(0, 0.5, when={"nesterov": False}),   # nested: needs sgd and not nesterov
}


def test_conditional_params_are_present_exactly_when_active():
    space = Space(OPT_SPACE)
    assert space.is_conditional
    rng = np.random.default_rng(0)
    seen = Counter()
    for _ in range(600):
        config = space.sample(rng)
        opt = config["optimizer"]
        assert ("nesterov" in config) == (opt == "sgd")
        assert ("momentum" in config) == (opt in ("sgd", "rmsprop"))
        assert ("beta2" in config) == (opt == "adam")
        assert ("dampening" in config) == (opt == "sgd" and config["nesterov"] is False)
        _check_activity(space, config)
        assert space.validate(config) == config
        seen[tuple(sorted(config))] += 1
    assert len(seen) == 4  # adam; rmsprop; sgd+nesterov; sgd+no nesterov+dampening


def test_parents_are_ordered_before_children_whatever_the_dict_order():
    space = Space({"child": tl.uniform(0, 1, when={"mid": 1}), "mid": tl.randint(0, 2, when={"root": "a"}),
                   "root": tl.choice(["a", "b"])})
    assert list(space) == ["root", "mid", "child"]
    config = space.decode([0.0, 0.5, 0.3])
    assert config == {"root": "a", "mid": 1, "child": pytest.approx(0.3)}


def test_conditions_on_int_and_fixed_parents_match_numerically():
    space = Space({"layers": tl.randint(1, 3), "width": tl.randint(8, 64, when={"layers": [2, 3.0]}),
                   "mode": "fast", "turbo": tl.choice([1, 2], when={"mode": "fast"})})
    assert "width" not in space.validate({"layers": 1, "turbo": 1})
    assert space.validate({"layers": 3.0, "width": 10, "turbo": 2}) == {"layers": 3, "width": 10, "mode": "fast",
                                                                         "turbo": 2}


@pytest.mark.parametrize("params, message", [
    ({"opt": tl.choice(["sgd"]), "n": tl.choice([1, 2], when={"optimiser": "sgd"})},
     r"'n' is conditional on 'optimiser', which is not in the space"),
    ({"optimizer": tl.choice(["sgd"]), "n": tl.choice([1, 2], when={"optimiser": "sgd"})},
     r"did you mean 'optimizer'\?"),
    ({"lr": tl.uniform(0, 1), "n": tl.choice([1, 2], when={"lr": 0.5})},
     r"conditional on 'lr', a continuous parameter"),
    ({"opt": tl.choice(["sgd", "adam"]), "n": tl.choice([1, 2], when={"opt": "adamw"})},
     r"when=\{'opt': 'adamw'\} can never hold"),
    ({"opt": tl.choice(["sgd", "adam"]), "n": tl.choice([1, 2], when={"opt": ["sgd", "nadam"]})},
     r"'nadam'.*can never hold"),
    ({"k": tl.randint(1, 3), "n": tl.choice([1, 2], when={"k": 7})}, r"when=\{'k': 7\} can never hold"),
    ({"a": tl.choice([1, 2], when={"b": 1}), "b": tl.choice([1, 2], when={"a": 1})},
     r"conditions form a cycle: (a -> b -> a|b -> a -> b)"),
    ({"a": tl.choice([1, 2], when={"c": 1}), "b": tl.choice([1, 2], when={"a": 1}),
      "c": tl.choice([1, 2], when={"b": 2})}, r"cycle: .*->.*->.*->"),
    ({"a": tl.choice([1, 2], when={"a": 1})}, r"cannot be conditional on itself"),
])
def test_bad_conditions_are_refused(params, message):
    with pytest.raises(SpaceError, match=message):
        Space(params)


# -- validate --------------------------------------------------------------------------------------

VSPACE = {"lr": tl.loguniform(1e-5, 1e-1), "layers": tl.randint(1, 8), "bs": tl.ordinal([8, 16, 32]),
          "opt": tl.choice(["sgd", "adam"]), "nesterov": tl.choice([True, False], when={"opt": "sgd"}),
          "epochs": 10}


def test_validate_fills_fixed_values_and_normalises_numbers():
    space = Space(VSPACE)
    out = space.validate({"lr": 1e-3, "layers": 3.0, "bs": 16.0, "opt": "adam"})
    assert out == {"lr": 1e-3, "layers": 3, "bs": 16, "opt": "adam", "epochs": 10}
    assert type(out["layers"]) is int and type(out["bs"]) is int
    assert space.validate({"lr": 0.1, "layers": 1, "bs": 8, "opt": "adam", "epochs": 10.0})["epochs"] == 10
    as_float = Space({"x": tl.uniform(0, 10)}).validate({"x": 3})["x"]
    assert as_float == 3.0 and type(as_float) is float
    assert space.validate({"lr": np.float64(1e-2), "layers": np.int64(2), "bs": 8, "opt": "sgd",
                           "nesterov": np.bool_(True)}) == {"lr": 1e-2, "layers": 2, "bs": 8, "opt": "sgd",
                                                            "nesterov": True, "epochs": 10}


@pytest.mark.parametrize("config, message", [
    ({"lr": 1e-3, "layer": 3, "bs": 8, "opt": "adam"}, r"unknown parameter 'layer'; did you mean 'layers'\?"),
    ({"lr": 1e-3, "zzz": 3, "bs": 8, "opt": "adam"}, r"unknown parameter 'zzz' \(the space has: lr, layers"),
    ({"lr": 1e-3, "bs": 8, "opt": "adam"}, r"missing parameter 'layers'"),
    ({"lr": 1e-3, "layers": 3, "bs": 8, "opt": "sgd"}, r"missing parameter 'nesterov'"),
    ({"lr": 1.0, "layers": 3, "bs": 8, "opt": "adam"}, r"parameter 'lr': 1.0 is outside \[1e-05, 0.1\]"),
    ({"lr": 1e-3, "layers": 9, "bs": 8, "opt": "adam"}, r"parameter 'layers': 9 is outside \[1, 8\]"),
    ({"lr": 1e-3, "layers": 0, "bs": 8, "opt": "adam"}, r"outside \[1, 8\]"),
    ({"lr": 1e-3, "layers": 3, "bs": 12, "opt": "adam"}, r"parameter 'bs': 12 is not one of \[8, 16, 32\]"),
    ({"lr": 1e-3, "layers": 3, "bs": 8, "opt": "adam", "nesterov": True},
     r"'nesterov' is only used when opt == 'sgd'; leave it out"),
    ({"lr": "0.001", "layers": 3, "bs": 8, "opt": "adam"}, r"parameter 'lr': expected a number"),
    ({"lr": float("nan"), "layers": 3, "bs": 8, "opt": "adam"}, r"parameter 'lr': expected a number"),
    ({"lr": True, "layers": 3, "bs": 8, "opt": "adam"}, r"parameter 'lr': expected a number"),
    ({"lr": 1e-3, "layers": 2.5, "bs": 8, "opt": "adam"}, r"parameter 'layers': expected an integer"),
    ({"lr": 1e-3, "layers": "3", "bs": 8, "opt": "adam"}, r"expected an integer"),
    ({"lr": 1e-3, "layers": 3, "bs": 8, "opt": 1}, r"parameter 'opt': 1 is not one of \['sgd', 'adam'\]"),
    ({"lr": 1e-3, "layers": 3, "bs": 8, "opt": "sgd", "nesterov": 1}, r"1 is not one of \[True, False\]"),
    ({"lr": 1e-3, "layers": 3, "bs": 8, "opt": "adam", "epochs": 11}, r"11 differs from the fixed value 10"),
    ({"lr": 1e-3, "layers": 3, "bs": [8], "opt": "adam"}, r"parameter 'bs': \[8\] is not one of"),
    ({"lr": 10**400, "layers": 3, "bs": 8, "opt": "adam"}, r"parameter 'lr': expected a number"),  # no OverflowError
    ({"lr": 1e-3, "layers": 10**400, "bs": 8, "opt": "adam"}, r"parameter 'layers': expected an integer"),
])
def test_validate_reports_what_is_wrong(config, message):
    with pytest.raises(SpaceError, match=message):
        Space(VSPACE).validate(config)


def test_validate_names_where_the_config_came_from_and_refuses_non_dicts():
    with pytest.raises(SpaceError, match=r"^enqueue: missing parameter"):
        Space(VSPACE).validate({}, where="enqueue")
    with pytest.raises(SpaceError, match=r"a configuration is a dict"):
        Space(VSPACE).validate([("lr", 1e-3)])


# -- encode / decode --------------------------------------------------------------------------------


@HYPOTHESIS
@given(space=spaces(), seed=st.integers(0, 2**32 - 1))
def test_encode_decode_round_trip(space, seed):
    config = space.sample(seed)
    _check_activity(space, config)
    assert space.validate(config) == config
    unit = space.encode(config)
    assert unit.shape == (len(space.dimensions),)
    for name, u in zip(space.dimensions, unit):
        if name in config:
            assert 0.0 <= u <= 1.0
        else:
            assert math.isnan(u)
    back = space.decode(unit)
    assert _same_config(back, config), (config, back)


@HYPOTHESIS
@given(space=spaces(), data=st.data())
def test_any_point_of_the_cube_decodes_to_a_valid_config(space, data):
    d = len(space.dimensions)
    point = data.draw(st.lists(st.floats(0.0, 1.0), min_size=d, max_size=d))
    config = space.decode(point)
    _check_activity(space, config)
    assert space.validate(config) == config
    for name, value in config.items():
        dist = space[name]
        if isinstance(dist, (Float, Int)):
            assert dist.low <= value <= dist.high
    # and its encoding lies in the cube again (NaN only where inactive)
    unit = space.encode(config)
    assert all((0.0 <= u <= 1.0) if n in config else math.isnan(u) for n, u in zip(space.dimensions, unit))


def test_encode_marks_inactive_params_with_nan_and_decode_ignores_them():
    space = Space(OPT_SPACE)
    config = {"optimizer": "adam", "beta2": 1e-2}
    unit = space.encode(config)
    dims = space.dimensions
    assert math.isnan(unit[dims.index("nesterov")]) and math.isnan(unit[dims.index("momentum")])
    assert unit[dims.index("optimizer")] == pytest.approx(0.5)
    assert unit[dims.index("beta2")] == pytest.approx(2 / 3)
    assert space.decode(unit) == pytest.approx(config)


def test_decode_refuses_a_vector_of_the_wrong_length():
    with pytest.raises(SpaceError, match=r"vector of length 2"):
        Space({"a": tl.uniform(0, 1), "b": tl.uniform(0, 1)}).decode([0.5])


def test_ordinal_encoding_keeps_the_order():
    dist = tl.ordinal([8, 16, 32, 64])
    positions = [dist.to_unit(v) for v in dist.options]
    assert positions == sorted(positions) and positions[0] > 0 and positions[-1] < 1


# -- grid --------------------------------------------------------------------------------------------


def test_grid_enumerates_categoricals_fully_and_numbers_on_points():
    space = Space({"opt": tl.choice(["sgd", "adam", "rmsprop"]), "x": tl.uniform(0, 1),
                   "lr": tl.loguniform(1e-6, 1e-1), "epochs": 5})
    configs = list(space.grid(4))
    assert len(configs) == space.grid_size(4) == 3 * 4 * 4
    assert {c["opt"] for c in configs} == {"sgd", "adam", "rmsprop"}
    assert sorted({c["x"] for c in configs}) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    lrs = sorted({c["lr"] for c in configs})
    assert lrs == pytest.approx(list(np.geomspace(1e-6, 1e-1, 4)), rel=1e-12)
    assert lrs[0] == 1e-6 and lrs[-1] == 1e-1
    assert np.allclose(np.diff(np.log10(lrs)), 5 / 3)
    assert all(c["epochs"] == 5 for c in configs)


def test_grid_of_ints_is_deduplicated_and_log_spaced_for_log():
    assert tl.randint(1, 4).grid(10) == [1, 2, 3, 4]
    assert tl.randint(0, 100).grid(5) == [0, 25, 50, 75, 100]
    assert tl.randint(1, 1000, log=True).grid(4) == [1, 10, 100, 1000]
    small = tl.randint(1, 10, log=True).grid(8)
    assert small == sorted(set(small)) and small[0] == 1 and small[-1] == 10 and len(small) < 8
    space = Space({"k": tl.randint(1, 10, log=True), "c": tl.choice(["a", "b"])})
    configs = list(space.grid(8))
    assert len(configs) == space.grid_size(8) == 2 * len(small)
    assert len({config_key(c) for c in configs}) == len(configs)


def test_grid_points_per_parameter():
    space = Space({"a": tl.uniform(0, 1), "b": tl.uniform(0, 1), "c": tl.randint(0, 100)})
    configs = list(space.grid({"a": 2, "b": 3}))
    assert len(configs) == space.grid_size({"a": 2, "b": 3}) == 2 * 3 * 5
    assert len({c["a"] for c in configs}) == 2 and len({c["b"] for c in configs}) == 3
    assert len({c["c"] for c in configs}) == 5


@pytest.mark.parametrize("points, message", [
    ({"zz": 3}, r"unknown parameters \['zz'\]"),
    (0, r"must be a positive integer; got 0"),
    ({"a": -1}, r"'a' must be a positive integer"),
    (2.5, r"must be a positive integer"),
    (True, r"must be a positive integer"),
])
def test_bad_grid_points_are_refused(points, message):
    with pytest.raises(SpaceError, match=message):
        Space({"a": tl.uniform(0, 1)}).grid_size(points)


def test_conditional_grid_does_not_multiply_inactive_params():
    space = Space({"optimizer": tl.choice(["sgd", "adam"]),
                   "nesterov": tl.choice([True, False], when={"optimizer": "sgd"}),
                   "lr": tl.loguniform(1e-4, 1e-1)})
    configs = list(space.grid(3))
    assert len(configs) == space.grid_size(3) == (2 + 1) * 3
    assert len({config_key(c) for c in configs}) == 9
    for config in configs:
        assert space.validate(config) == config
        _check_activity(space, config)


@HYPOTHESIS
@given(space=spaces(), points=st.integers(1, 3))
def test_grid_is_complete_valid_and_without_duplicates(space, points):
    size = space.grid_size(points)
    if size > 3000:
        return
    configs = list(space.grid(points))
    assert len(configs) == size
    assert len({config_key(c) for c in configs}) == size
    for config in configs:
        _check_activity(space, config)
        assert space.validate(config) == config
    if not space.is_conditional:
        assert size == math.prod(len(space[n].grid(points)) for n in space)


# -- JSON ----------------------------------------------------------------------------------------------


def test_json_round_trip_keeps_everything():
    space = Space({**OPT_SPACE, "bs": tl.ordinal([8, 16, 32]), "kind": tl.choice([8, 16, 32]),
                   "layers": tl.randint(1, 1000, log=True), "width": tl.randint(4, 9), "epochs": 10,
                   "tag": tl.fixed({"a": [1, 2]}), "flags": tl.choice([True, 1, None, 2.5, "x"])})
    text = json.dumps(space.to_json())
    back = Space.from_json(json.loads(text))
    assert back == space and back.to_json() == space.to_json()
    assert back["bs"].ordered and not back["kind"].ordered and back["bs"] != back["kind"]
    assert back["layers"].log and isinstance(back["layers"], Int) and back["layers"].low == 1
    assert back["nesterov"].when == {"optimizer": ("sgd",)}
    assert back["momentum"].when == {"optimizer": ("sgd", "rmsprop")}
    assert back["epochs"] == tl.fixed(10) and back["tag"].value == {"a": [1, 2]}
    assert back["flags"].options == [True, 1, None, 2.5, "x"] and back["flags"].options[0] is True
    assert back.sample(3) == space.sample(3)
    assert list(back.grid(2)) == list(space.grid(2))


def test_space_equality_depends_on_the_domain():
    assert Space({"x": tl.uniform(0, 1)}) == Space({"x": tl.uniform(0.0, 1.0)})
    assert Space({"x": tl.uniform(0, 1)}) != Space({"x": tl.loguniform(0.1, 1)})
    assert Space({"x": tl.ordinal([1, 2])}) != Space({"x": tl.choice([1, 2])})
    assert Space({"x": tl.randint(1, 9)}) != Space({"x": tl.randint(1, 9, log=True)})
    assert Space({"o": tl.choice([1, 2]), "x": tl.uniform(0, 1, when={"o": 1})}) != \
        Space({"o": tl.choice([1, 2]), "x": tl.uniform(0, 1, when={"o": 2})})


@HYPOTHESIS
@given(space=spaces())
def test_json_round_trip_of_random_spaces(space):
    back = Space.from_json(json.loads(json.dumps(space.to_json())))
    assert back == space
    assert back.dimensions == space.dimensions


@pytest.mark.parametrize("data, message", [
    ("garbage", r"a stored space is a dict with a 'params' list"),
    (None, r"a stored space is a dict"),
    ({"params": "x"}, r"'params' list"),
    ({"params": []}, r"search space is empty"),
    ({"params": [{"type": "float", "low": 0, "high": 1}]}, r"needs a 'name'"),
    ({"params": [["x"]]}, r"needs a 'name'"),
    ({"params": [{"name": "x", "low": 0}]}, r"must be a dict with a 'type'"),
    ({"params": [{"name": "x", "type": "gaussian", "mu": 0}]}, r"unknown parameter type 'gaussian'; known: float"),
    ({"params": [{"name": "x", "type": "float", "low": 0}]}, r"type 'float' lacks field 'high'"),
    ({"params": [{"name": "x", "type": "choice"}]}, r"lacks field 'options'"),
    ({"params": [{"name": "x", "type": "float", "low": "a", "high": 1}]}, r"must be finite numbers"),
    ({"params": [{"name": "x", "type": "choice", "options": 5}]}, r"needs a list of options"),
    ({"params": [{"name": "x", "type": "float", "low": 0, "high": 1, "when": "o"}]}, r"when= must be"),
    ({"params": [{"name": "x", "type": "float", "low": 0, "high": 1, "when": {"o": ["a"]}}]},
     r"conditional on 'o', which is not in the space"),
])
def test_from_json_of_garbage_raises_space_error(data, message):
    with pytest.raises(SpaceError, match=message):
        Space.from_json(data)


def test_a_grid_takes_the_integer_values_that_switch_a_parameter_on():
    """layers=randint(1, 10) on 5 points is 1, 3, 6, 8, 10: dropout (when layers == 5) was never tried."""
    space = Space({"layers": tl.randint(1, 10), "dropout": tl.uniform(0, 0.5, when={"layers": 5})})
    grid = list(space.grid(5))
    assert sorted({c["layers"] for c in grid}) == [1, 3, 5, 6, 8, 10]
    assert sum("dropout" in c for c in grid) == 5 and space.grid_size(5) == len(grid) == 10
