"""Regularised evolution over architecture spaces."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402


def test_mutation_changes_exactly_one_parameter():
    space = tl.Space(nas.cell_space(3))
    searcher = nas.RegularizedEvolution(space, seed=0)
    rng = np.random.default_rng(0)
    for seed in range(30):
        parent = space.sample(seed)
        child = searcher.mutate(parent, rng)
        assert space.validate(child) == child
        assert sum(child[k] != parent[k] for k in parent) == 1


def test_mutation_keeps_conditional_parameters_consistent():
    space = tl.Space(nas.macro_space("cnn", max_layers=3))
    searcher = nas.RegularizedEvolution(space, seed=0)
    rng = np.random.default_rng(1)
    config = space.sample(0)
    for _ in range(50):
        config = searcher.mutate(config, rng)
        assert space.validate(config) == config
        assert all(f"width_{i}" in config for i in range(config["layers"]))


def score(config: dict) -> float:
    ops = [v for k, v in config.items() if "_op" in k]
    return sum(op == "dil_conv_3x3" for op in ops) / len(ops)


def test_evolution_beats_its_random_start_on_a_synthetic_score():
    space = nas.cell_space(2)
    searcher = nas.RegularizedEvolution(space, seed=0, population=10, sample=3)
    study = tl.tune(score, space, metric="score", mode="max", searcher=searcher, n_trials=120, seed=0)
    values = [t.value for t in study.trials]
    assert np.mean(values[-30:]) > np.mean(values[:10]) + 0.25


def test_bad_options_are_refused():
    with pytest.raises(tl.ConfigError, match="sample <= population"):
        nas.RegularizedEvolution(nas.cell_space(1), population=3, sample=5)


def test_a_failed_architecture_is_the_worst_member_of_the_population():
    """Failed trials were left out: they did not count towards the population, so the random start
    went on (here: trial 3 was a fresh random cell) while failures piled up."""
    space = nas.cell_space(2)

    def objective(config, trial):
        if trial.number in (1, 2):
            raise RuntimeError("out of memory")
        return 1.0

    study = tl.tune(objective, space, metric="acc", mode="max", n_trials=4, seed=0, progress=False,
                    searcher=nas.RegularizedEvolution(space, seed=0, population=3, sample=3))
    states = [t.state.value for t in study.trials]
    assert states == ["completed", "failed", "failed", "completed"]
    parent, child = study.get_trial(0).config, study.get_trial(3).config
    assert sum(child[k] != parent[k] for k in parent) == 1  # a mutant of the one that worked


def test_when_every_member_drawn_failed_it_starts_afresh():
    space = tl.Space(nas.cell_space(2))
    searcher = nas.RegularizedEvolution(space, seed=0, population=2, sample=2)
    study = tl.create_study(space, metric="acc", mode="max", searcher=searcher, seed=0)
    failed = [space.sample(seed) for seed in range(2)]
    for config in failed:
        study.tell(config=config, value=None, state="failed", error="out of memory")
    child = searcher.suggest(study.history(), 1)[0]
    assert all(sum(child[k] != config[k] for k in config) > 1 for config in failed)
