"""Synchronous successive halving: the rung arithmetic, exactly."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.schedulers.brackets import make_bracket
from tunelab.schedulers.sh import SuccessiveHalvingScheduler
from tunelab.trial import TrialState

from mf_objectives import EPOCHS, SPACE, by_epochs, loss_at


def sh(**options):
    scheduler = SuccessiveHalvingScheduler("loss", "min", **options)
    scheduler.bind(tl.fidelity("epochs", min=1, max=81, resumable=True))
    return scheduler


def test_default_bracket_lets_exactly_one_configuration_reach_the_full_budget():
    bracket, = sh().brackets
    assert bracket.levels == (1.0, 3.0, 9.0, 27.0, 81.0)
    assert bracket.n == 81 and bracket.sizes == (81, 27, 9, 3, 1)


def test_n_and_m_given():
    bracket, = sh(n=20, min_budget=3).brackets
    assert bracket.levels == (3.0, 9.0, 27.0, 81.0) and bracket.sizes == (20, 6, 2, 1)


def test_n_derived_from_a_total_budget_is_the_largest_that_fits():
    scheduler = sh(budget=1000)
    n = scheduler.brackets[0].n
    cost = lambda k: scheduler.cost(make_bracket(k, scheduler.levels, 3))  # noqa: E731
    assert cost(n) <= 1000 < cost(n + 1)
    # resumable: rung i pays only the extra epochs; a fresh-run fidelity pays each level in full
    assert cost(81) == 81 * 1 + 27 * 2 + 9 * 6 + 3 * 18 + 1 * 54
    fresh = SuccessiveHalvingScheduler("loss", "min", budget=1000)
    fresh.bind(tl.fidelity("size", min=1, max=81))
    assert fresh.cost(make_bracket(81, fresh.levels, 3)) == 81 * 1 + 27 * 3 + 9 * 9 + 3 * 27 + 1 * 81
    assert fresh.brackets[0].n < n
    with pytest.raises(tl.ConfigError, match="cannot pay"):
        sh(budget=50)
    fresh = SuccessiveHalvingScheduler("loss", "min", budget=39)
    with pytest.raises(tl.ConfigError, match=r"costs 40 \(1 \+ 3 \+ 9 \+ 27: each rung run afresh\)"):
        fresh.bind(tl.fidelity("size", min=1, max=27))  # one run to 27 alone would cost 27


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_run_promotes_exactly_the_best_third_at_each_rung(mode):
    metric = "loss" if mode == "min" else "accuracy"
    study = tl.tune(by_epochs, SPACE, metric=metric, mode=mode, scheduler="sh", scheduler_options={"n": 9},
                    fidelity=EPOCHS, n_trials=9, seed=4, progress=False)
    trials = study.trials
    reached = {level: [t for t in trials if t.reports and t.reports[-1].step >= level] for level in (1, 3, 9)}
    assert [len(reached[level]) for level in (1, 3, 9)] == [9, 3, 1]
    by_x = sorted(trials, key=lambda t: t.config["x"])  # the smallest x has the best curve
    assert {t.number for t in reached[3]} == {t.number for t in by_x[:3]}
    assert [t.number for t in reached[9]] == [by_x[0].number]
    assert study.best.number == by_x[0].number
    assert study.best.value == pytest.approx(loss_at(by_x[0].config, 9) if mode == "min" else 1 - loss_at(by_x[0].config, 9))
    assert all(t.state is TrialState.PRUNED for t in trials if t.number != by_x[0].number)


def test_brackets_repeat_and_a_cut_short_bracket_closes_with_what_it_has():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="sh", scheduler_options={"n": 9},
                    fidelity=EPOCHS, n_trials=15, seed=5, progress=False)
    second = study.trials[9:]
    assert len(second) == 6
    at3 = [t for t in second if t.reports[-1].step >= 3]
    at9 = [t for t in second if t.reports[-1].step >= 9]
    assert len(at3) == 2 and len(at9) == 1  # floor(6/3) = 2 promoted, then one goes on
    assert study.counts() == {"completed": 2, "pruned": 13}


@pytest.mark.parametrize("scheduler, limits", [("sh", (3, 9)), ("hyperband", (10, 20, 25))])
def test_a_study_continued_with_a_larger_limit_leaves_no_trial_paused(tmp_path, scheduler, limits):
    """The first run's limit closes a bracket early and prunes all but its best; a larger limit
    reopens it, and a pruned trial among the reopened rung's best must not hold its rung forever
    (the next best goes in its place)."""
    for n_trials in limits:
        study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=EPOCHS,
                        searcher="random", n_trials=n_trials, seed=0, storage=f"sqlite:///{tmp_path / 's.db'}",
                        name="grown", progress=False)
        assert len(study.trials) == n_trials and TrialState.PAUSED not in {t.state for t in study.trials}
        assert study.best.budget == EPOCHS.max


_CRASHED: list[int] = []


def _crashes_after_its_first_promotion(config, trial):
    """The first trial promoted past the first epoch crashes there."""
    state = trial.load_checkpoint()
    for epoch in range((state or 0) + 1, trial.budget + 1):
        if epoch == 2 and not _CRASHED or _CRASHED == [trial.number]:
            _CRASHED[:] = [trial.number]
            raise RuntimeError("crashed on its way up")
        trial.save_checkpoint(epoch)
        trial.report(epoch, loss=config["x"] + 1.0 / epoch)


@pytest.mark.parametrize("scheduler", ["sh", "hyperband", "bohb"])
def test_a_promoted_trial_that_fails_is_replaced_by_the_next_best(scheduler):
    """The failed run tells the rung above nothing: without the next best in its place, a short
    study ended with no full run at all."""
    space = {"x": tl.uniform(0, 1)}
    epochs = tl.fidelity("epochs", min=1, max=27, resumable=True)
    _CRASHED.clear()
    study = tl.tune(_crashes_after_its_first_promotion, space, metric="loss", mode="min", fidelity=epochs,
                    scheduler=scheduler, n_trials=3, seed=0, progress=False)
    assert study.counts() == {"failed": 1, "pruned": 1, "completed": 1}, study.counts()
    assert study.best.last_step == 27 and [t.number for t in study.trials if t.state is TrialState.FAILED] == _CRASHED


@pytest.mark.parametrize("budget", [float("inf"), float("nan")])
def test_a_budget_that_is_not_a_finite_number_is_refused(budget):
    # inf has no largest bracket that fits (the search for one never ended); NaN fits none
    with pytest.raises(tl.ConfigError, match=r"sh: budget must be a positive finite number .*got (inf|nan)"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="sh", scheduler_options={"budget": budget},
                        fidelity=EPOCHS)


def test_a_large_budget_derives_its_bracket_at_once():
    # A billion epochs on 1..81 (a fidelity counted in iterations gets there): hundreds of millions
    # of configurations, found without costing each count in turn (that took hours)
    scheduler = sh(budget=1e9)
    n = scheduler.brackets[0].n
    cost = lambda k: scheduler.cost(make_bracket(k, scheduler.levels, 3))  # noqa: E731
    assert cost(n) <= 1e9 < cost(n + 1)


@pytest.mark.parametrize("scheduler", ["sh", "hyperband"])
def test_the_retry_of_a_killed_trial_competes_in_its_place_in_the_bracket(scheduler, tmp_path, monkeypatch):
    """By its own number a retry fell into the next bracket, where, at the trial limit, it was
    alone and went to the full budget unchallenged: the worst configuration of nine finished."""
    from objectives import the_worst_dies_once

    monkeypatch.setenv("DIES_ONCE_DIR", str(tmp_path))
    xs = [0.1, 0.2, 0.3, 0.4, 0.99, 0.5, 0.6, 0.7, 0.8]
    epochs = tl.fidelity("epochs", min=1, max=9, resumable=True)
    options = {"n": 9} if scheduler == "sh" else {}
    study = tl.tune(the_worst_dies_once, SPACE, metric="loss", mode="min", fidelity=epochs, scheduler=scheduler,
                    scheduler_options=options, n_trials=9, workers=2, enqueue=[{"x": x} for x in xs],
                    storage=f"sqlite:///{tmp_path / 'retry.db'}", name="retry", seed=0, progress=False)
    retries = [t for t in study.trials if "retry_of" in t.system_attrs]
    assert len(retries) == 1 and retries[0].config == {"x": 0.99}
    assert retries[0].state is TrialState.PRUNED and retries[0].budget == 1.0
    finished = [t.config["x"] for t in study.trials if t.state is TrialState.COMPLETED]
    assert 0.99 not in finished and 0.1 in finished
