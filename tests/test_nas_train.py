"""Training found architectures: the objective of an architecture study (its record, its budget)
and retraining a found configuration."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")
torch.set_num_threads(1)

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.cli import main  # noqa: E402
from tunelab.nas.data import split_arrays  # noqa: E402

SMALL = {"channels": 4, "layers": 2}


@pytest.fixture(scope="module")
def tiny():
    return nas.digits(batch_size=32, limit=160, fractions=(0.5, 0.25))


class FakeTrial:
    """The parts of a trial handle the objective uses."""

    def __init__(self, seed: int = 0, budget: float | None = None):
        self.seed, self.budget, self.steps, self.user_attrs = seed, budget, [], {}

    def report(self, step, **metrics):
        self.steps.append(step)

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def test_tunelab_reproduce_reruns_a_trial_of_an_architecture_objective(tiny, tmp_path, capsys):
    """The study recorded no objective ('none recorded (ask/tell)'), so `tunelab reproduce` could not
    re-run any architecture trial: 'this study has no objective on record (got None)'."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    objective = nas.ArchitectureObjective(tiny, epochs=1, **SMALL)
    study = tl.tune(objective, nas.cell_space(1), metric="accuracy", mode="max", n_trials=2, seed=0,
                    storage=url, name="cells", searcher="random", progress=False)
    assert study.record.settings["objective"].startswith("tunelab.nas.train:ArchitectureObjective{")
    assert main(["reproduce", "cells", "1", "--storage", url]) == 0
    assert "reproduced exactly" in capsys.readouterr().out


def test_the_recorded_objective_has_the_same_settings_and_data(tiny):
    from tunelab.analysis import load_objective
    from tunelab.tracking.objective import objective_path

    objective = nas.ArchitectureObjective(tiny, epochs=2, lr=0.1, **SMALL)
    again = load_objective(objective_path(objective))
    assert again.settings == objective.settings and again.epochs == 2 and again.lr == 0.1
    for part in ("train", "valid", "test"):
        before, after = getattr(tiny, part).dataset.tensors, getattr(again.data, part).dataset.tensors
        assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert objective_path(nas.ArchitectureObjective(nas.digits)) is not None  # a data function records too


def test_splits_of_arrays_record_no_objective_rather_than_a_wrong_one():
    x, y = np.random.default_rng(0).random((40, 1, 8, 8)), np.arange(40) % 3
    from tunelab.tracking.objective import objective_path

    assert objective_path(nas.ArchitectureObjective(split_arrays(x, y), epochs=1)) is None


def test_the_objective_trains_to_the_trial_budget_under_a_fidelity(tiny):
    """It trained for `epochs` whatever budget its scheduler gave: under fidelity max=3 and epochs=1 a
    trial reported epoch 1 only and ended short of its rung."""
    objective = nas.ArchitectureObjective(tiny, epochs=1, **SMALL)
    trial = FakeTrial(budget=3)
    objective(nas.Genotype.from_config(tl.Space(nas.cell_space(1)).sample(0)).to_config(), trial)
    assert trial.steps == [1, 2, 3]
    plain = FakeTrial()
    objective(tl.Space(nas.cell_space(1)).sample(0), plain)
    assert plain.steps == [1]
    with pytest.raises(tl.ConfigError, match="whole epochs"):
        objective(tl.Space(nas.cell_space(1)).sample(0), FakeTrial(budget=0.25))


def test_retrain_trains_a_configuration_with_its_own_training_hyperparameters(tiny):
    """retrain(study.best.config) trained with lr=0.05 whatever lr the trial had been chosen with."""
    config = {**tl.Space(nas.cell_space(1)).sample(0), "lr": 0.3, "momentum": 0.5}
    genotype = nas.Genotype.from_config(config)
    own = nas.retrain(config, tiny, epochs=1, **SMALL)
    assert own != nas.retrain(genotype, tiny, epochs=1, **SMALL)  # the defaults: another result
    assert own == nas.retrain({**genotype.to_config(), "momentum": 0.5}, tiny, epochs=1, lr=0.3, **SMALL)


@pytest.mark.parametrize("call, message", [
    (lambda d, g: nas.retrain(g, d, seed=None), r"seed must be an integer"),
    (lambda d, g: nas.retrain(g, d, lr=0), r"retrain: lr must be a positive number; got 0"),
    (lambda d, g: nas.retrain("sep_conv_3x3", d), r"architecture must be a Genotype or a configuration"),
    (lambda d, g: nas.ArchitectureObjective(d, lr="0.1"), r"ArchitectureObjective: lr must be a positive number"),
])
def test_bad_arguments_are_refused_with_a_reason(tiny, call, message):
    """A traceback from inside torch or tracking (ValueError, TypeError), or a study whose every trial failed."""
    genotype = nas.Genotype.from_config(tl.Space(nas.cell_space(1)).sample(0))
    with pytest.raises(tl.ConfigError, match=message):
        call(tiny, genotype)
