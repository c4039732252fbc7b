"""Cost accounting: resources x prices x wall time, per trial and study, and the max_cost budget."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.tracking.cost import CostMeter, Prices, Resources, study_cost, trial_cost
from tunelab.trial import Trial, TrialState

import lab_objectives as objectives


def _trial(seconds: float) -> Trial:
    return Trial(id=1, number=0, config={}, seed=0, state=TrialState.COMPLETED, started_at=1000.0,
                 finished_at=1000.0 + seconds)


def test_trial_cost_is_hours_times_the_price_of_what_it_held():
    prices = Prices(cpu_hour=0.10, gpu_hour=3.00)
    assert trial_cost(_trial(1800), Resources(cpus=4, gpus=1), prices) == pytest.approx(0.5 * (0.4 + 3.0))
    assert trial_cost(_trial(3600), Resources(cpus=8), prices) == pytest.approx(0.80)
    running = Trial(id=2, number=1, config={}, seed=0, state=TrialState.RUNNING, started_at=0.0)
    assert trial_cost(running, Resources(), prices, now=7200.0) == pytest.approx(0.20)


def test_defaults_are_written_in_one_place():
    assert Prices().per_hour(Resources()) == pytest.approx(Prices().cpu_hour)
    assert Prices().gpu_hour > 10 * Prices().cpu_hour > 0


@pytest.mark.parametrize("bad", [dict(cpus=-1), dict(cpus=0, gpus=0), dict(gpus=float("nan")), dict(cpus="2")])
def test_bad_resources_are_refused(bad):
    with pytest.raises(ConfigError):
        Resources(**bad)


def test_bad_prices_and_budgets_are_refused():
    with pytest.raises(ConfigError):
        Prices(cpu_hour=-0.1)
    with pytest.raises(ConfigError, match="Prices knows"):
        Prices.coerce({"tpu_hour": 1})
    with pytest.raises(ConfigError, match="max_cost"):
        tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", max_cost=0)


def test_max_cost_stops_the_study_and_costs_are_recorded():
    # 3600 per core-hour = 1 per core-second; a trial sleeps 0.02 s on 2 cores: at least 0.04 each
    study = tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=200,
                    max_cost=0.2, resources=tl.Resources(cpus=2), prices=tl.Prices(cpu_hour=3600, currency="EUR"),
                    seed=0)
    cost = study_cost(study)
    assert cost.currency == "EUR" and cost.resources == Resources(cpus=2)
    assert 1 <= len(study.trials) <= 5
    assert cost.total >= 0.2
    assert cost.total == pytest.approx(sum(cost.per_trial.values()))
    assert all(c >= 0.04 for c in cost.per_trial.values())
    assert CostMeter(study).spent([]) == pytest.approx(cost.total)


def test_reopened_study_keeps_its_pricing(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, storage=url,
            name="c", resources={"cpus": 1, "gpus": 2}, prices={"gpu_hour": 1.5})
    study = tl.load_study("c", storage=url)
    cost = study_cost(study)
    assert cost.prices.gpu_hour == 1.5 and cost.resources.gpus == 2
    assert cost.total == pytest.approx(study.trials[0].duration / 3600 * (0.05 + 3.0))


def test_show_prints_the_study_cost_and_a_cost_column(tmp_path, capsys):
    from tunelab.cli import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, storage=url,
            name="c", prices={"cpu_hour": 7.0, "currency": "EUR"})
    assert main(["show", "c", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "EUR (a trial holds 1 CPU cores and 0 GPUs at 7/2.5 per hour)" in out and "cost" in out.split("┃")[5]
