"""Tests for the foundation searchers (random, sobol, grid): seeds, resuming, exhaustion, options,
coverage and conditional spaces, through tl.tune and through make_searcher."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import tunelab as tl
from tunelab.errors import ConfigError, SpaceError
from tunelab.history import History
from tunelab.searchers import SEARCHERS, make_searcher
from tunelab.searchers.grid import GridSearcher
from tunelab.searchers.random import RandomSearcher
from tunelab.searchers.sobol import SobolSearcher
from tunelab.space import Space, config_key

SPACE = {
    "lr": tl.loguniform(1e-5, 1e-1),
    "layers": tl.randint(1, 8),
    "momentum": tl.uniform(0.85, 0.98),
    "opt": tl.choice(["sgd", "adam"]),
    "epochs": 3,
}
COND_SPACE = {
    "optimizer": tl.choice(["sgd", "adam"]),
    "nesterov": tl.choice([True, False], when={"optimizer": "sgd"}),
    "lr": tl.loguniform(1e-4, 1e-1),
}
SAMPLING = ["random", "sobol"]


def objective(config):
    return sum(v for v in config.values() if isinstance(v, float))


def _tune(space=SPACE, **kwargs):
    options = {"metric": "loss", "mode": "min", "storage": None, "progress": False, "seed": 0, **kwargs}
    return tl.tune(objective, space, **options)


def _configs(study) -> list[dict]:
    return [t.config for t in sorted(study.trials, key=lambda t: t.number)]


def _keys(configs) -> list[str]:
    return [config_key(c) for c in configs]


def _empty_history() -> History:
    return History(lambda: [], ["loss"], ["min"])


# -- seeds --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("searcher", SAMPLING)
def test_same_seed_gives_the_same_configs_in_the_same_order(searcher):
    first = _configs(_tune(searcher=searcher, n_trials=8, seed=0))
    second = _configs(_tune(searcher=searcher, n_trials=8, seed=0))
    assert len(first) == 8 and first == second
    assert len(set(_keys(first))) == 8
    other = _configs(_tune(searcher=searcher, n_trials=8, seed=1))
    assert other != first
    assert not set(_keys(other)) & set(_keys(first))


def test_grid_order_is_reproducible():
    first = _configs(_tune(COND_SPACE, searcher="grid", searcher_options={"points": 3}, seed=0))
    second = _configs(_tune(COND_SPACE, searcher="grid", searcher_options={"points": 3}, seed=5))
    assert first == second == list(Space(COND_SPACE).grid(3))


@pytest.mark.parametrize("name", ["random", "sobol", "grid"])
def test_make_searcher_is_reproducible_from_its_seed(name):
    space = Space(SPACE)
    a = make_searcher(name, space, 123).suggest(_empty_history(), 6)
    b = make_searcher(name, space, 123).suggest(_empty_history(), 6)
    assert len(a) == 6 and a == b
    for config in a:
        assert space.validate(config) == config
    if name != "grid":
        assert make_searcher(name, space, 124).suggest(_empty_history(), 6) != a


def test_make_searcher_builds_the_registered_classes_and_passes_instances_through():
    space = Space(SPACE)
    assert isinstance(make_searcher("random", space, 0), RandomSearcher)
    assert isinstance(make_searcher("sobol", space, 0), SobolSearcher)
    grid = make_searcher("grid", space, 0, {"points": 2})
    assert isinstance(grid, GridSearcher) and grid.points == 2
    assert make_searcher(grid, space, 0) is grid
    assert {"random", "sobol", "grid"} <= set(SEARCHERS.names())
    assert make_searcher("Sobol ", space, 7).describe() == {"name": "sobol", "seed": 7}
    assert grid.describe() == {"name": "grid", "seed": 0, "points": 2}


# -- resuming a stored study -----------------------------------------------------------------------


@pytest.mark.parametrize("searcher", SAMPLING)
def test_resumed_study_continues_with_new_configs(tmp_path, searcher):
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    first = _configs(_tune(searcher=searcher, n_trials=5, storage=storage, name="s"))
    resumed = _tune(searcher=searcher, n_trials=10, storage=storage, name="s")
    configs = _configs(resumed)
    assert len(configs) == 10 and configs[:5] == first
    assert not set(_keys(configs[5:])) & set(_keys(first))
    assert len(set(_keys(configs))) == 10
    for config in configs:
        assert Space(SPACE).validate(config) == config


def test_resumed_sobol_study_continues_the_same_sequence(tmp_path):
    storage = f"sqlite:///{tmp_path / 'sobol.db'}"
    _tune(searcher="sobol", n_trials=4, storage=storage, name="s")
    resumed = _configs(_tune(searcher="sobol", n_trials=8, storage=storage, name="s"))
    straight = _configs(_tune(searcher="sobol", n_trials=8))
    assert resumed == straight


def test_random_searcher_proposes_new_configs_after_other_trials():
    """A fresh searcher on a study that already has trials does not replay the first draws."""
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=None, seed=0, searcher="random")
    first = [study.ask().config for _ in range(3)]
    fresh = make_searcher("random", study.space, study.searcher.seed).suggest(study.history(), 3)
    assert not set(_keys(first)) & set(_keys(fresh))


# -- grid ---------------------------------------------------------------------------------------------


def test_grid_covers_the_whole_grid_once_and_stops(tmp_path):
    space = Space(SPACE)
    size = space.grid_size(3)
    storage = f"sqlite:///{tmp_path / 'grid.db'}"
    study = _tune(searcher="grid", searcher_options={"points": 3}, storage=storage, name="g")
    configs = _configs(study)
    assert len(configs) == size == 3 * 3 * 3 * 2
    assert len(set(_keys(configs))) == size
    assert set(_keys(configs)) == set(_keys(space.grid(3)))
    assert study.counts() == {"completed": size}
    # running it again finds the grid used up and adds nothing
    again = _tune(searcher="grid", searcher_options={"points": 3}, storage=storage, name="g")
    assert len(again.trials) == size


def test_grid_stops_when_exhausted_even_with_a_larger_budget():
    study = _tune(COND_SPACE, searcher="grid", searcher_options={"points": 3}, n_trials=50)
    assert len(study.trials) == 9
    assert len(set(_keys(_configs(study)))) == 9


def test_grid_does_not_repeat_enqueued_grid_points():
    space = Space(COND_SPACE)
    grid = list(space.grid(3))
    enqueued = [grid[4], grid[0]]
    study = _tune(COND_SPACE, searcher="grid", searcher_options={"points": 3}, enqueue=enqueued)
    configs = _configs(study)
    assert configs[:2] == enqueued
    assert len(configs) == len(grid) == 9
    assert set(_keys(configs)) == set(_keys(grid))


def test_grid_searcher_skips_configs_in_the_history_and_then_proposes_nothing():
    space = Space(COND_SPACE)
    study = tl.create_study(space, metric="loss", mode="min", storage=None, seed=0)
    grid = list(space.grid(3))
    study.tell(config=grid[1], value=0.5)
    searcher = make_searcher("grid", space, 0, {"points": 3})
    assert searcher.size == 9
    proposed = searcher.suggest(study.history(), 100)
    assert len(proposed) == 8 and config_key(grid[1]) not in _keys(proposed)
    assert searcher.suggest(study.history(), 1) == []


def test_grid_points_option_per_parameter():
    points = {"lr": 2, "layers": 2, "momentum": 1}
    study = _tune(searcher="grid", searcher_options={"points": points})
    assert len(study.trials) == Space(SPACE).grid_size(points) == 2 * 2 * 1 * 2


def test_grid_with_bad_points_is_refused():
    with pytest.raises(SpaceError, match=r"grid points for 'lr' must be a positive integer; got 0"):
        _tune(searcher="grid", searcher_options={"points": 0})
    with pytest.raises(SpaceError, match=r"unknown parameters \['nope'\]"):
        make_searcher("grid", Space(SPACE), 0, {"points": {"nope": 2}})


# -- bad names and options ----------------------------------------------------------------------------


def test_unknown_searcher_name_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown searcher 'sobel'; did you mean 'sobol'\?.*Known: .*grid.*random.*sobol"):
        _tune(searcher="sobel", n_trials=2)
    with pytest.raises(ConfigError, match=r"unknown searcher 'xyz'; known: .*random"):
        make_searcher("xyz", Space(SPACE), 0)
    with pytest.raises(ConfigError, match=r"searcher must be a name"):
        make_searcher(42, Space(SPACE), 0)


@pytest.mark.parametrize("searcher, options, message", [
    ("grid", {"pionts": 3}, r"searcher 'grid' has no option 'pionts' \(did you mean 'points'\?\); options: points"),
    ("random", {"points": 3}, r"searcher 'random' has no option 'points'; options: \(none\)"),
    ("sobol", {"scramble": False}, r"searcher 'sobol' has no option 'scramble'"),
])
def test_bad_searcher_option_names_the_allowed_options(searcher, options, message):
    with pytest.raises(ConfigError, match=message):
        _tune(searcher=searcher, searcher_options=options, n_trials=2)


@pytest.mark.parametrize("searcher, options, message", [
    ("tpe", {"gamma": "0.2"}, r"searcher 'tpe': option 'gamma' must be a number \(default 0.1\); got '0.2'"),
    ("anneal", {"cooling": "0.9"}, r"option 'cooling' must be a number"),
    ("tpe", {"n_candidates": True}, r"option 'n_candidates' must be a number"),
    ("kde", {"random_fraction": float("nan")}, r"kde: random_fraction must be in \[0, 1\]; got nan"),
    ("kde", {"min_points": 2.9}, r"kde: min_points must be a positive integer"),
    ("kde", {"min_points": 1}, r"kde: min_points must be at least 2"),
    ("tpe", [("gamma", 0.2)], r"searcher_options must be a dict"),
])
def test_an_option_of_the_wrong_kind_is_refused_with_what_it_takes(searcher, options, message):
    """They raised TypeError or AttributeError from inside the searcher, or were quietly rounded."""
    with pytest.raises(ConfigError, match=message):
        _tune(searcher=searcher, searcher_options=options, n_trials=2)


# -- coverage and conditional spaces ------------------------------------------------------------------


def test_sobol_covers_the_square_more_evenly_than_random():
    space = Space({"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)})
    for seed in range(3):
        points = {}
        for name in SAMPLING:
            configs = make_searcher(name, space, seed).suggest(_empty_history(), 64)
            points[name] = np.array([space.encode(c) for c in configs])
            assert points[name].shape == (64, 2) and np.all((points[name] >= 0) & (points[name] <= 1))
        assert qmc.discrepancy(points["sobol"]) < qmc.discrepancy(points["random"])
        # stratification: every quarter of each axis holds exactly 16 Sobol points
        for axis in range(2):
            assert np.bincount((points["sobol"][:, axis] * 4).astype(int), minlength=4).tolist() == [16] * 4


@pytest.mark.parametrize("searcher", ["random", "sobol", "grid"])
def test_searchers_respect_conditional_spaces(searcher):
    space = Space({**COND_SPACE, "dampening": tl.uniform(0, 0.5, when={"nesterov": False}),
                   "beta2": tl.uniform(0.9, 0.999, when={"optimizer": "adam"})})
    options = {"points": 2} if searcher == "grid" else None
    study = _tune(space, searcher=searcher, n_trials=24, searcher_options=options)
    configs = _configs(study)
    assert configs and study.counts() == {"completed": len(configs)}
    shapes = set()
    for config in configs:
        assert space.validate(config) == config
        opt = config["optimizer"]
        assert ("nesterov" in config) == (opt == "sgd")
        assert ("beta2" in config) == (opt == "adam")
        assert ("dampening" in config) == (opt == "sgd" and config["nesterov"] is False)
        shapes.add(tuple(sorted(config)))
    assert len(shapes) == 3
    if searcher == "grid":
        assert len(configs) == space.grid_size(2) == (1 + 2 + 2) * 2  # (sgd+nesterov, sgd+dampening x2, adam+beta2 x2) x lr


@pytest.mark.parametrize("searcher", ["random", "sobol", "grid"])
def test_searchers_handle_a_space_of_constants_and_ints(searcher):
    space = Space({"k": tl.randint(1, 3), "tag": "x"})
    configs = make_searcher(searcher, space, 0).suggest(_empty_history(), 3)
    assert len(configs) == 3
    for config in configs:
        assert space.validate(config) == config
    if searcher == "grid":
        assert configs == [{"k": 1, "tag": "x"}, {"k": 2, "tag": "x"}, {"k": 3, "tag": "x"}]


def test_grid_covers_every_point_even_after_an_off_grid_baseline():
    """An enqueued baseline that is not a grid point must not take the place of a grid point."""
    space = {"o": tl.choice(["a", "b"]), "x": tl.uniform(0, 1)}
    study = _tune(space, searcher="grid", searcher_options={"points": 2}, enqueue=[{"o": "a", "x": 0.5}])
    configs = _configs(study)
    assert configs[0] == {"o": "a", "x": 0.5}
    assert set(_keys(Space(space).grid(2))) <= set(_keys(configs))
    assert len(configs) == 1 + 4


@pytest.mark.parametrize("searcher", ["tpe", "bo", "rf", "anneal", "genetic", "evolution", "kde"])
def test_a_space_of_constants_runs_with_every_searcher(searcher):
    """A baseline re-run through the same script: the learning searchers crashed at the second ask."""
    study = tl.tune(lambda config: 1.0, {"lr": 0.01, "epochs": 3}, metric="loss", mode="min", searcher=searcher,
                    n_trials=3, storage=None, progress=False, seed=0)
    assert [t.config for t in study.trials] == [{"lr": 0.01, "epochs": 3}] * 3


@pytest.mark.parametrize("searcher", ["tpe", "bo", "rf", "anneal", "genetic", "evolution"])
def test_no_start_of_random_trials_or_only_failed_ones_starts_from_a_random_point(searcher):
    """n_startup=0 is allowed; with no result to learn from, anneal, genetic and evolution ended
    the run with a numpy error (an empty population)."""
    fails = iter([True, True, False, False, False, False])

    def objective(config):
        if next(fails):
            raise RuntimeError("no result")
        return config["x"]

    study = tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", searcher=searcher,
                    searcher_options={"n_startup": 0}, n_trials=6, seed=0, progress=False)
    assert study.counts() == {"failed": 2, "completed": 4}


def test_bad_warm_starts_and_an_infinite_prior_weight_are_refused():
    with pytest.raises(ConfigError, match=r"warm_start\[0\]: \{'loss': 0.0\} lacks \['val_loss'\]; a study with "
                                          r"metrics \['val_loss'\] needs a dict with each"):  # when it is made
        tl.create_study(SPACE, metric="val_loss", mode="min", searcher="tpe", searcher_options={
            "warm_start": [({"lr": 0.01, "layers": 2, "momentum": 0.9, "opt": "sgd"}, {"loss": 0.0})]}).ask()
    with pytest.raises(ConfigError, match="prior_weight must be a positive finite number; got inf"):
        tl.create_study(SPACE, metric="loss", mode="min", searcher="tpe", searcher_options={"prior_weight": np.inf})


def test_a_warm_start_value_that_is_no_number_is_refused_before_the_study_is_stored(tmp_path):
    """Text for a metric was refused only at the first ask, after the study and its bad options
    were stored under the name (the corrected call then met the name taken)."""
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    config = {"lr": 0.01, "layers": 2, "momentum": 0.9, "opt": "sgd"}
    with pytest.raises(ConfigError, match=r"warm_start\[0\]: the value of 'loss' must be a number .*got str '0.25'"):
        tl.create_study(SPACE, metric="loss", mode="min", name="w", storage=url, searcher="tpe",
                        searcher_options={"warm_start": [(config, {"loss": "0.25"})]})
    assert tl.list_studies(url) == []


def test_a_searcher_object_with_its_own_seed_goes_on_with_it_when_the_study_is_resumed(tmp_path):
    """The rebuilt searcher took the study's derived seed: proposals changed from the resume on."""
    space = {"x": tl.uniform(0, 1)}

    def run(url, n_trials, searcher):
        return tl.tune(lambda c: c["x"], space, metric="loss", mode="min", n_trials=n_trials, searcher=searcher,
                       storage=url, name="own", seed=1, progress=False)

    whole = run(f"sqlite:///{tmp_path / 'a.db'}", 6, RandomSearcher(Space(space), seed=5))
    url = f"sqlite:///{tmp_path / 'b.db'}"
    run(url, 3, RandomSearcher(Space(space), seed=5))
    resumed = run(url, 6, None)
    assert _configs(resumed) == _configs(whole)


def test_a_searcher_object_built_on_another_space_is_refused():
    """Its proposals were stored as configurations outside the study's space."""
    other = RandomSearcher(Space({"x": tl.uniform(0, 2), "extra": tl.uniform(0, 1)}), seed=0)
    with pytest.raises(ConfigError, match=r"built on another space than the study's \(not in the study's space: "
                                          r"extra; other ranges or options: x\)"):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", searcher=other)


def test_processes_sharing_a_sobol_study_never_draw_the_same_point(tmp_path):
    """Each process drew the sequence on from where it started: the same points ran two and three times."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    one = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", searcher="sobol", storage=url, name="s")
    two = tl.load_study("s", storage=url)
    configs = [study.ask().config["x"] for _ in range(4) for study in (one, two)]
    assert len(set(configs)) == 8
    alone = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", searcher="sobol", seed=one.seed)
    assert [alone.ask().config["x"] for _ in range(8)] == configs  # trial n is point n, whoever asks


def test_a_grid_searcher_object_given_to_a_second_study_runs_its_whole_grid_there():
    """It remembered what it had proposed for the first study, and the second one ran no trial."""
    space = Space({"k": tl.randint(1, 4)})
    grid = GridSearcher(space, points=4)
    first = tl.tune(lambda c: c["k"], space, metric="loss", mode="min", searcher=grid, storage=None, progress=False)
    second = tl.tune(lambda c: -c["k"], space, metric="loss", mode="min", searcher=grid, storage=None,
                     progress=False)
    assert _configs(first) == _configs(second) == list(space.grid(4))


def test_grid_asked_for_no_configurations_proposes_none_and_keeps_its_grid():
    """suggest(history, 0) handed out, and so used up, the whole grid."""
    searcher = make_searcher("grid", Space(COND_SPACE), 0, {"points": 3})
    assert searcher.suggest(_empty_history(), 0) == []
    assert searcher.suggest(_empty_history(), 100) == list(Space(COND_SPACE).grid(3))


def test_an_option_named_as_optuna_names_it_is_told_its_name_here():
    with pytest.raises(tl.ConfigError, match=r"has no option 'n_startup_trials' \(the name it has elsewhere: here "
                                             r"it is 'n_startup'\)"):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", searcher="tpe",
                        searcher_options={"n_startup_trials": 5})


def test_numpy_numbers_for_options_and_the_trial_limit_are_taken_as_the_numbers_they_are(tmp_path):
    import numpy as np

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="np", seed=0,
                            storage=f"sqlite:///{tmp_path / 'np.db'}", searcher="tpe",
                            searcher_options={"n_startup": np.int64(3)}, scheduler="median",
                            scheduler_options={"min_trials": np.int32(2)})
    study.n_trials = np.int64(4)
    again = tl.load_study("np", storage=f"sqlite:///{tmp_path / 'np.db'}")
    assert again.n_trials == 4 and again.record.settings["searcher"]["n_startup"] == 3
