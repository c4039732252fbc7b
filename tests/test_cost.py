"""Cost accounting: resources x prices x the time trials ran, per trial and study, and the max_cost
budget; a trial paused at a rung costs nothing while it waits."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.tracking.cost import CostMeter, Prices, Resources, study_cost, trial_cost
from tunelab.trial import Trial, TrialState

import lab_objectives as objectives


def _trial(seconds: float) -> Trial:
    return Trial(id=1, number=0, config={}, seed=0, state=TrialState.COMPLETED, started_at=1000.0,
                 finished_at=1000.0 + seconds, held=seconds)


def test_trial_cost_is_hours_times_the_price_of_what_it_held():
    prices = Prices(cpu_hour=0.10, gpu_hour=3.00)
    assert trial_cost(_trial(1800), Resources(cpus=4, gpus=1), prices) == pytest.approx(0.5 * (0.4 + 3.0))
    assert trial_cost(_trial(3600), Resources(cpus=8), prices) == pytest.approx(0.80)
    running = Trial(id=2, number=1, config={}, seed=0, state=TrialState.RUNNING, started_at=0.0, running_since=0.0)
    assert trial_cost(running, Resources(), prices, now=7200.0) == pytest.approx(0.20)
    # ran 1800 s, paused for a day, resumed 1800 s ago: an hour, not a day
    resumed = Trial(id=3, number=2, config={}, seed=0, state=TrialState.RUNNING, started_at=0.0, held=1800.0,
                    running_since=86400.0)
    assert trial_cost(resumed, Resources(), prices, now=86400.0 + 1800) == pytest.approx(0.10)
    paused = Trial(id=4, number=3, config={}, seed=0, state=TrialState.PAUSED, started_at=0.0, held=1800.0)
    assert trial_cost(paused, Resources(), prices, now=10 ** 6) == pytest.approx(0.05)


def test_paused_trials_cost_only_the_time_they_ran(tmp_path):
    """An ASHA run leaves trials paused at its rungs: the study cost stays what the workers were
    held for (before, each paused trial was billed from its start until now, so the bill of a
    finished run kept growing), and max_cost counts a resumed trial's earlier stretches once."""
    import time

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, scheduler="asha",
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True),
                            prices={"cpu_hour": 3600.0}, storage=f"sqlite:///{tmp_path / 'c.db'}")
    started = time.time()
    for _ in range(40):  # no trial limit: trials stay paused at the rungs
        trial = study.ask()
        for epoch in range((trial.load_checkpoint() or 0) + 1, int(trial.budget) + 1):
            time.sleep(0.005)
            trial.save_checkpoint(epoch)
            if trial.report(epoch, loss=trial.config["x"] + 1.0 / epoch) is not tl.Decision.CONTINUE:
                break
        study.tell(trial, trial.config["x"] + 1.0 / epoch)
    wall = time.time() - started
    paused = [t for t in study.trials if t.state is TrialState.PAUSED]
    resumed = [t for t in study.trials if t.state.finished and t.budget > 1]
    assert paused and resumed
    epochs = sum(1 for t in study.trials for _ in t.reports)
    cost = study_cost(study)
    assert epochs * 0.005 <= cost.total <= wall  # one worker: never more than the run's wall time
    assert cost.total == pytest.approx(sum(cost.per_trial.values()))
    time.sleep(0.3)
    assert study_cost(study).total == pytest.approx(cost.total)  # the paused trials hold no worker
    assert CostMeter(study).spent([]) == pytest.approx(cost.total)
    for trial in resumed:  # a resumed trial ran from its start to its end minus its wait in between
        assert trial.duration < trial.finished_at - trial.started_at

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
    with pytest.raises(ConfigError, match=r"Prices in JPY need gpu_hour in JPY too \(the defaults, .* are USD\)"):
        Prices(cpu_hour=7, currency="JPY")  # the default GPU price is dollars: read as yen it would be wrong
    assert Prices(cpu_hour=7, gpu_hour=300, currency="JPY").gpu_hour == 300 and Prices().gpu_hour == 2.5
    with pytest.raises(ConfigError, match="max_cost"):
        tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", max_cost=0)


def test_max_cost_stops_the_study_and_costs_are_recorded():
    # 3600 per core-hour = 1 per core-second; a trial sleeps 0.02 s on 2 cores: at least 0.04 each
    study = tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=200,
                    max_cost=0.2, resources=tl.Resources(cpus=2), prices=tl.Prices(cpu_hour=3600, gpu_hour=2, currency="EUR"),
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


def test_a_resume_with_other_prices_is_refused_rather_than_re_pricing_the_trials_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    run = dict(metric="loss", mode="min", storage=url, name="p", seed=0)
    tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=1, prices=tl.Prices(cpu_hour=3600), **run)
    before = study_cost(tl.load_study("p", storage=url)).total
    with pytest.raises(ConfigError, match="would re-price the trials it has run"):
        tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=2, prices=tl.Prices(cpu_hour=36000, gpu_hour=400, currency="JPY"),
                **run)
    with pytest.raises(ConfigError, match="resources=.* would re-price"):
        tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=2, resources=tl.Resources(cpus=2), **run)
    assert study_cost(tl.load_study("p", storage=url)).total == pytest.approx(before)
    same = tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=2, prices=tl.Prices(cpu_hour=3600), **run)
    assert len(same.trials) == 2  # the same prices, or none, go on
    unpriced = dict(run, name="u")
    tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=1, **unpriced)
    priced = tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, n_trials=2, prices=tl.Prices(cpu_hour=7), **unpriced)
    assert study_cost(priced).prices.cpu_hour == 7  # a study at the default prices may be priced later


def test_show_prints_the_study_cost_and_a_cost_column(tmp_path, capsys):
    from tunelab.cli import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    tl.tune(objectives.slow, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, storage=url,
            name="c", prices={"cpu_hour": 7.0, "gpu_hour": 2.5, "currency": "EUR"})
    assert main(["show", "c", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "EUR (a trial holds 1 CPU cores and 0 GPUs at 7/2.5 per hour)" in out and "cost" in out.split("┃")[5]
