"""Hyperband: the bracket table, the rungs of a synchronous run, and the asynchronous variant."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.schedulers.hyperband import HyperbandScheduler
from tunelab.trial import Decision, TrialState

from mf_objectives import EPOCHS, SPACE, SUBSAMPLE, by_epochs, by_subsample, loss_at


def test_bracket_table_matches_the_paper():
    scheduler = HyperbandScheduler("loss", "min")
    scheduler.bind(tl.fidelity("epochs", min=1, max=81, resumable=True))
    table = [(b.n, b.levels[0], b.sizes) for b in scheduler.brackets]
    assert table == [
        (81, 1.0, (81, 27, 9, 3, 1)),
        (34, 3.0, (34, 11, 3, 1)),
        (15, 9.0, (15, 5, 1)),
        (8, 27.0, (8, 2)),
        (5, 81.0, (5,)),
    ]


def test_synchronous_run_fills_each_rung_exactly():
    # eta=3, epochs 1..9: brackets (9 at 1 -> 3 at 3 -> 1 at 9), (5 at 3 -> 1 at 9), (3 at 9)
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS,
                    n_trials=17, seed=6, progress=False)
    trials = study.trials
    final = [t.reports[-1].step for t in trials]
    assert [t.budget for t in trials[14:]] == [9.0] * 3
    assert [final[:9].count(s) for s in (1.0, 3.0, 9.0)] == [6, 2, 1]
    assert [final[9:14].count(s) for s in (3.0, 9.0)] == [4, 1]
    assert final[14:] == [9.0, 9.0, 9.0]
    assert [t.budget for t in trials[9:14] if t.state is TrialState.PRUNED] == [3.0] * 4
    assert study.counts() == {"completed": 5, "pruned": 12}


def test_a_trial_that_started_below_its_brackets_first_rung_is_brought_up_to_it():
    """Two processes asking at once: one works out the budget of the next trial (number 8, the
    last of the first bracket, 1 epoch), the other creates trial 8 first, so the first one's is
    trial 9, of the second bracket (3 epochs), at 1 epoch. Left at its 1-epoch pause, the second
    bracket would wait for its report at 3 for good, holding its paused trials; brought up to 3
    epochs, the study ends with every bracket decided and nothing paused."""
    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0, scheduler="hyperband", fidelity=EPOCHS,
                            n_trials=17)
    handles = [study.ask() for _ in range(9)]  # the first bracket, trial 8 the other process's
    raced = study.storage.create_trial(study.record.id, {"x": 0.05}, study._seed_for, TrialState.RUNNING,
                                       owner=study.owner, budget=1.0)
    assert raced.number == 9 and [h.budget for h in handles] == [1.0] * 9
    handles.append(tl.trial.RunningTrial(study.spec(raced), sink=study))
    runs = []
    while True:
        for trial in handles:
            start = 0 if trial.last_step is None else int(trial.last_step)
            for epoch in range(start + 1, int(trial.budget) + 1):
                if trial.report(epoch, loss=loss_at(trial.config, epoch)) is not Decision.CONTINUE:
                    break
            study.tell(trial)
            runs.append((trial.number, trial.budget))
        try:
            handles = [study.ask()]
        except tl.TrialLimitReached:
            break
    assert (9, 3.0) in runs  # the raced trial went on to its bracket's first rung
    assert TrialState.PAUSED.value not in study.counts()
    assert sorted(t.reports[-1].step for t in study.trials if t.state is TrialState.COMPLETED) == [9.0] * 5


def test_fresh_run_hyperband_by_subsample():
    study = tl.tune(by_subsample, SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=SUBSAMPLE,
                    n_trials=17, seed=7, progress=False)
    assert study.counts() == {"completed": 5, "pruned": 12}
    assert study.best.reports[-1].step == 1.0


def test_asynchronous_hyperband_spreads_trials_over_brackets():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS,
                    scheduler_options={"asynchronous": True}, n_trials=30, seed=8, progress=False)
    budgets = {t.number % 3: set() for t in study.trials}
    for t in study.trials:
        budgets[t.number % 3].add(t.budget)
    assert min(budgets[0]) == 1.0 and min(budgets[1]) == 3.0 and budgets[2] == {9.0}  # brackets start at 1, 3, 9
    assert study.best.reports[-1].step == 9.0


def test_asynchronous_hyperband_with_fewer_trials_than_brackets_still_ends_with_full_runs():
    # Trial n joins bracket n % 3; the full-budget bracket is the last, so 2 trials on the whole
    # ladder would both pause at a rung that nothing else ever reaches.
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS,
                    scheduler_options={"asynchronous": True}, n_trials=2, seed=8, progress=False)
    assert study.counts() == {"completed": 2}
    assert [t.budget for t in study.trials] == [9.0, 9.0]


def test_asynchronous_hyperband_passes_max_paused_on_and_synchronous_refuses_it():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS, seed=2,
                            scheduler_options={"asynchronous": True, "max_paused": 4})
    for _ in range(40):
        trial = study.ask()
        assert sum(t.state is TrialState.PAUSED for t in study.trials) <= 4
        start = trial.load_checkpoint() or 0
        for epoch in range(start + 1, int(trial.budget) + 1):
            trial.save_checkpoint(epoch)
            if trial.report(epoch, loss=loss_at(trial.config, epoch)) is not Decision.CONTINUE:
                break
        study.tell(trial, loss_at(trial.config, epoch))
    assert sum(t.state is TrialState.PRUNED for t in study.trials) > 0
    with pytest.raises(tl.ConfigError, match="max_paused needs asynchronous=True"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS,
                        scheduler_options={"max_paused": 4})


@pytest.mark.parametrize("scheduler", ["hyperband", "bohb"])
def test_a_bad_max_paused_is_refused_in_the_schedulers_own_name(scheduler):
    # It is handed to an ASHA inside; the error named that ("asha: max_paused ..."), an option
    # the user never set.
    with pytest.raises(tl.ConfigError, match=rf"^{scheduler}: max_paused must be a positive integer or None; got 0$"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=EPOCHS,
                        scheduler_options={"asynchronous": True, "max_paused": 0})


def test_asynchronous_hyperband_speaks_of_itself_in_its_warnings():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.tune(lambda c, t: c["x"], {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, seed=0,
                fidelity=tl.fidelity("epochs", min=1, max=9), scheduler="hyperband",
                scheduler_options={"asynchronous": True}, progress=False)
    said = [str(w.message) for w in caught if "rung" in str(w.message)]
    assert said and all(text.startswith("hyperband:") for text in said), said
