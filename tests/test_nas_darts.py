"""DARTS on a tiny problem: it learns, its second-order gradient is sound, its result is recorded."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")
torch.set_num_threads(1)

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.darts import Architect  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    return nas.digits(batch_size=16, limit=240, fractions=(0.5, 0.25))


@pytest.mark.parametrize("order", ["first", "second"])
def test_darts_reduces_validation_loss(tiny, order):
    found = nas.darts_search(tiny, epochs=5, order=order, nodes=1, channels=4, layers=2, lr=0.1,
                             arch_lr=0.01, seed=0)
    losses = [point["valid_loss"] for point in found.curve]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.25
    assert found.genotype.nodes == 1
    assert "none" not in {op for kind in ("normal", "reduce") for _, _, op, _ in found.genotype.edges(kind)}


def batches(data):
    return next(iter(data.train)), next(iter(data.valid))


def test_second_order_with_zero_step_is_the_first_order_gradient(tiny):
    torch.manual_seed(0)
    network = nas.SearchNetwork(channels=4, layers=2, nodes=2)
    network.eval()  # batch statistics off, so both gradients see the same function
    train, valid = batches(tiny)
    unrolled = Architect(network, "second")._unrolled_gradient(train, valid, xi=0.0)
    direct = torch.autograd.grad(nas.darts._cross_entropy(network(valid[0]), valid[1]), network.arch_parameters())
    for a, b in zip(unrolled, direct):
        assert torch.allclose(a, b, atol=1e-6)


def test_second_order_gradient_matches_a_finite_difference_of_the_unrolled_loss(tiny):
    torch.manual_seed(0)
    network = nas.SearchNetwork(channels=4, layers=2, nodes=1)
    network.eval()
    train, valid = batches(tiny)
    architect = Architect(network, "second", network_weight_decay=0.0)
    xi = 0.5
    grad = architect._unrolled_gradient(train, valid, xi=xi)[0][0, 2]  # one entry of the normal alphas

    def unrolled_loss() -> float:
        weights = network.weight_parameters()
        grads = torch.autograd.grad(architect._loss(weights, train), list(weights.values()), allow_unused=True)
        stepped = {n: w - xi * (g if g is not None else 0.0) for (n, w), g in zip(weights.items(), grads)}
        return architect._loss(stepped, valid).item()

    alpha, h = network.alphas["normal"], 1e-3
    with torch.no_grad():
        alpha[0, 2] += h
    up = unrolled_loss()
    with torch.no_grad():
        alpha[0, 2] -= 2 * h
    down = unrolled_loss()
    assert grad.item() == pytest.approx((up - down) / (2 * h), rel=0.15, abs=2e-4)


def test_bad_order_is_refused(tiny):
    with pytest.raises(tl.ConfigError, match="order must be 'first' or 'second'"):
        nas.darts_search(tiny, epochs=1, order="third")


def test_found_cell_is_retrained_and_recorded_in_a_study(tiny):
    found = nas.darts_search(tiny, epochs=1, nodes=2, channels=4, layers=2, seed=2)
    result = nas.retrain(found.genotype, tiny, epochs=1, channels=4, layers=2)
    assert 0.0 <= result["accuracy"] <= 1.0
    study = tl.create_study(nas.cell_space(2), metric="accuracy", mode="max", seed=0)
    trial = found.record(study, result)
    assert trial.value == result["accuracy"]
    assert nas.Genotype.from_json(trial.user_attrs["genotype"]) == found.genotype
    assert nas.Genotype.from_config(trial.config) == found.genotype
    assert trial.user_attrs["search_method"] == "darts" and len(trial.user_attrs["search_curve"]) == 2
    assert torch.tensor(trial.user_attrs["alphas"]["normal"]).std().item() > 1e-2  # they started near 1e-3


def test_the_same_seed_trains_to_the_same_result_on_data_that_trained_before(tiny):
    """The loader's own generator, seeded once with the data, made a second run (or a resumed study)
    shuffle differently: 2.31954 then 2.31970 for one seed."""
    found = nas.darts_search(tiny, epochs=1, nodes=2, channels=4, layers=2, seed=3)
    again = nas.darts_search(tiny, epochs=1, nodes=2, channels=4, layers=2, seed=3)
    assert again.curve == found.curve
    first = nas.retrain(found.genotype, tiny, epochs=1, channels=4, layers=2, seed=5)
    assert nas.retrain(found.genotype, tiny, epochs=1, channels=4, layers=2, seed=5) == first


@pytest.mark.parametrize("call, message", [
    (lambda d: nas.ArchitectureObjective(None), r"data must be a DataSplits .* or a function returning one; got NoneType"),
    (lambda d: nas.ArchitectureObjective("digits"), r"data must be a DataSplits"),
    (lambda d: nas.ArchitectureObjective(d, epochs=1.5), r"epochs must be an integer >= 1; got 1.5"),
    (lambda d: nas.ArchitectureObjective(d, layers=1), r"layers must be an integer >= 2 \(a network needs a normal"),
    (lambda d: nas.retrain({}, d, layers=1), r"layers must be an integer >= 2"),
    (lambda d: nas.darts_search(None), r"data must be a DataSplits"),
    (lambda d: nas.darts_search(d, channels=0), r"channels must be an integer >= 1; got 0"),
    (lambda d: nas.digits(limit=-5), r"limit is how many images to keep"),
])
def test_bad_training_arguments_are_refused_up_front(tiny, call, message):
    """They failed inside torch, in every trial, or trained a network without a reduction cell."""
    with pytest.raises(tl.ConfigError, match=message):
        call(tiny)


def test_the_architecture_objective_trains_with_the_hyperparameters_mixed_into_the_space(tiny):
    """docs/nas.md mixes an lr into the space; the objective trained with its own lr whatever it was."""
    objective = nas.ArchitectureObjective(tiny, epochs=1, channels=4, layers=2)
    study = tl.create_study({**nas.cell_space(1), "lr": tl.loguniform(1e-3, 0.3)}, metric="accuracy", mode="max",
                            seed=0)
    cell = nas.cell_space(1)
    config = {name: study.space.params[name].from_unit(0.0) for name in cell}
    trial = study.ask({**config, "lr": 0.001})
    results = [objective({**config, "lr": lr}, trial) for lr in (0.001, 0.3)]  # one trial: one seed
    assert results[0]["loss"] != results[1]["loss"]


def test_the_recorded_search_says_how_to_run_it_again(tiny):
    """The record kept the genotype, alphas and curve but not the search's seed or settings (the
    trial's own seed is the study's), so the search could not be repeated from the study."""
    found = nas.darts_search(tiny, epochs=1, nodes=1, channels=4, layers=2, seed=7)
    study = tl.create_study(nas.cell_space(1), metric="accuracy", mode="max")
    trial = found.record(study, {"accuracy": 0.5})
    settings = trial.user_attrs["search_settings"]
    assert settings["seed"] == 7 and settings["nodes"] == 1 and settings["order"] == "first"
    assert trial.user_attrs["search_data"] == tiny.recipe
    again = nas.darts_search(tiny, **settings)
    assert again.alphas == found.alphas and again.genotype == found.genotype


@pytest.mark.parametrize("options, message", [
    ({"nodes": "3"}, r"darts_search: nodes must be a positive integer; got '3'"),
    ({"lr": -1}, r"darts_search: lr must be a positive number"),
    ({"momentum": 1.5}, r"darts_search: momentum must be a number in \[0, 1\)"),
    ({"seed": None}, r"seed must be an integer"),
    ({"max_seconds": -1}, r"max_seconds must be a positive number of seconds or None"),
])
def test_bad_search_options_are_refused_up_front(tiny, options, message):
    """nodes='3' was a TypeError inside the supernet, lr=-1 a ValueError inside torch's SGD, seed=None a
    ValueError from seed_everything, and max_seconds=-1 quietly stopped after one batch."""
    with pytest.raises(tl.TunelabError, match=message):
        nas.darts_search(tiny, epochs=1, **options)
