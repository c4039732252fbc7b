"""ASHA: promotions never exceed the rung quotas, stopping decisions for min and max metrics,
retired trials lose their checkpoints."""

from __future__ import annotations

import os
import random
import warnings

import pytest

import tunelab as tl
from tunelab.schedulers.asha import ASHAScheduler
from tunelab.schedulers.rungs import TRUST_PAIRS, reached
from tunelab.trial import Decision, TrialState

from mf_objectives import EPOCHS, SPACE, by_epochs, late_blooming, loss_at, train_by_epochs

LEVELS = (1.0, 3.0, 9.0)


def drive(study, trial):
    """Train an asked trial from its checkpoint up to its budget, as a user's own loop would."""
    start = trial.load_checkpoint() or 0
    loss = None
    for epoch in range(start + 1, int(trial.budget) + 1):
        loss = loss_at(trial.config, epoch)
        trial.save_checkpoint(epoch)
        if trial.report(epoch, loss=loss) is not Decision.CONTINUE:
            break
    study.tell(trial, loss)


def assert_quotas(study):
    for level in LEVELS[:-1]:
        at_rung = [t for t in study.trials if reached(t, level)]
        promoted = [t for t in at_rung if t.budget is not None and t.budget > level]
        assert len(promoted) <= len(at_rung) // 3, (level, len(promoted), len(at_rung))


@pytest.mark.parametrize("in_flight", [1, 3])
def test_promotions_never_exceed_the_rung_quotas(in_flight):
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=in_flight)
    running = [study.ask() for _ in range(in_flight)]
    for _ in range(60):
        drive(study, running.pop(0))
        assert_quotas(study)
        running.append(study.ask())
    top = [t for t in study.trials if t.state is TrialState.COMPLETED]
    assert top and all(t.reports[-1].step == 9.0 for t in top)


@pytest.mark.parametrize("metric,mode", [("loss", "min"), ("accuracy", "max")])
def test_stopping_mode_stops_trials_outside_the_top_third_of_their_rung(metric, mode):
    xs = [0.1, 0.9, 0.5, 0.05, 0.95, 0.2]
    study = tl.tune(by_epochs, SPACE, metric=metric, mode=mode, scheduler="asha", fidelity=EPOCHS,
                    scheduler_options={"promotion": False}, n_trials=6, seed=0, progress=False,
                    enqueue=[{"x": x} for x in xs])
    assert [t.config["x"] for t in study.trials] == xs
    assert [t.state for t in study.trials] == [TrialState.COMPLETED, TrialState.PRUNED, TrialState.PRUNED,
                                               TrialState.COMPLETED, TrialState.PRUNED, TrialState.PRUNED]
    assert [t.reports[-1].step for t in study.trials] == [9.0, 1.0, 1.0, 9.0, 1.0, 1.0]
    assert all(t.budget == 9.0 for t in study.trials)  # stopping mode starts every trial for the full budget


def test_trials_that_can_no_longer_be_promoted_are_retired_and_their_checkpoints_deleted(tmp_path):
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=12, seed=9, storage=f"sqlite:///{tmp_path / 'r.db'}", name="r", progress=False)
    trials = study.trials
    scores = {level: sorted(t.reports[[r.step for r in t.reports].index(level)].metrics["loss"]
                            for t in trials if reached(t, level)) for level in LEVELS}
    # at most 12 trials at rung 1 -> at most 4 ever promoted; at most 4 at rung 3 -> 1 promoted
    for trial in trials:
        if trial.state is TrialState.PAUSED:
            level = trial.budget
            rank = scores[level].index(loss_at(trial.config, level))
            assert rank < (4 if level == 1.0 else 1)
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned
    assert all(not os.path.exists(study.checkpoint_dir(t)) for t in pruned)
    assert all(os.path.exists(study.checkpoint_dir(t)) for t in trials if t.state is TrialState.PAUSED)


@pytest.mark.parametrize("where", ["sqlite", "postgres"])
def test_promoted_trials_resume_from_their_checkpoints_on_each_database(where, tmp_path, request):
    """Resuming a paused trial reads it back by id (on PostgreSQL an id bound past its 4-byte
    INTEGER failed every promotion with "integer out of range")."""
    url = f"sqlite:///{tmp_path / 'p.db'}" if where == "sqlite" else request.getfixturevalue("postgres_url")
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, n_trials=9,
                    seed=9, storage=url, name="p", artifact_dir=tmp_path / "artifacts", progress=False)
    promoted = [t for t in study.trials if t.budget > EPOCHS.min]
    assert promoted and all(t.state is not TrialState.FAILED for t in study.trials)
    assert all([r.step for r in t.reports] == list(range(1, int(t.budget) + 1)) for t in promoted)


def test_without_a_trial_limit_max_paused_bounds_the_checkpoints_and_the_lowest_standing_go_first(tmp_path):
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=5,
                            scheduler_options={"max_paused": 6}, storage=f"sqlite:///{tmp_path / 'u.db'}", name="u")
    retired_any = False
    for _ in range(60):
        before = {t.id for t in study.trials if t.state is TrialState.PAUSED}
        trial = study.ask()
        trials = study.trials
        paused = [t for t in trials if t.state is TrialState.PAUSED]
        assert len(paused) <= 6
        for gone in (t for t in trials if t.id in before and t.state is TrialState.PRUNED):
            retired_any = True
            assert not os.path.exists(study.checkpoint_dir(gone))
            level = gone.budget  # every trial kept at its rung stands higher than the one retired
            assert all(loss_at(t.config, level) < loss_at(gone.config, level) for t in paused if t.budget == level)
        drive(study, trial)
        assert_quotas(study)
    assert retired_any and all(os.path.exists(study.checkpoint_dir(t)) for t in paused)
    assert [t for t in study.trials if t.state is TrialState.COMPLETED]


def test_the_cap_holds_when_every_new_trial_beats_the_old_ones_and_the_promotion_quota_is_used_up():
    # As with a searcher that keeps improving: each trial ranks first at its rung, so the rung's
    # top third fills with trials that wait for its quota to grow; all but those it promotes
    # next may go.
    def improving(config, epoch):
        return 1.0 - improving.number / 100 + 1.0 / epoch

    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=0,
                            scheduler_options={"max_paused": 3})
    for _ in range(45):
        trial = study.ask()
        assert sum(t.state is TrialState.PAUSED for t in study.trials) <= 3
        improving.number = trial.number
        drive_with(improving, study, trial)
    assert_quotas(study)


def test_without_a_trial_limit_at_most_a_hundred_trials_stay_paused_by_default():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=6)
    most = 0
    for _ in range(220):
        trial = study.ask()
        most = max(most, sum(t.state is TrialState.PAUSED for t in study.trials))
        drive(study, trial)
    assert most == 100
    # With a trial limit, only trials that can no longer be promoted go (the cap is not the default).
    limited = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=6,
                              n_trials=1000)
    for _ in range(220):
        drive(limited, limited.ask())
    assert sum(t.state is TrialState.PAUSED for t in limited.trials) > 100


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_paused_must_be_a_positive_integer(bad):
    with pytest.raises(tl.ConfigError, match="max_paused must be a positive integer"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                        scheduler_options={"max_paused": bad})


@pytest.mark.parametrize("n_trials, levels", [(None, [1, 3, 9, 27]), (27, [1, 3, 9, 27]), (26, [3, 9, 27]),
                                               (3, [9, 27]), (2, [27])])
def test_a_trial_limit_too_small_to_climb_the_ladder_drops_its_lowest_rungs(n_trials, levels):
    scheduler = ASHAScheduler("loss", "min", min_budget=1, max_budget=27)
    scheduler.plan(n_trials)
    assert scheduler.levels == levels and scheduler.min_budget == levels[0]
    scheduler.plan(None)  # the limit lifted (a study run again without one): the whole ladder is back
    assert scheduler.levels == [1, 3, 9, 27]
    stopping = ASHAScheduler("loss", "min", min_budget=1, max_budget=27, promotion=False)
    stopping.plan(2)  # stopping mode starts every trial for the full budget: nothing to trim
    assert stopping.levels == [1, 3, 9, 27]


@pytest.mark.parametrize("n_trials, levels", [(None, [1, 3, 9, 27]), (81, [1, 3, 9, 27]), (80, [3, 9, 27]),
                                               (8, [9, 27]), (6, [9, 27]), (5, [27])])
def test_a_trial_limit_trims_the_ladder_so_that_every_bracket_can_reach_the_top(n_trials, levels):
    # Asynchronous Hyperband: a bracket gets a share of the trials, and its lowest rung must see
    # eta**(rungs - 1) of them for one to reach the top (81 / 3 brackets = 27 = 3**3).
    scheduler = ASHAScheduler("loss", "min", min_budget=1, max_budget=27, brackets=3)
    scheduler.plan(n_trials)
    assert scheduler.levels == levels and scheduler.n_brackets == min(3, len(levels))
    assert scheduler.options()["brackets"] == 3  # what the user asked for, as stored and reloaded
    scheduler.plan(None)
    assert scheduler.levels == [1, 3, 9, 27] and scheduler.n_brackets == 3


def test_ask_keeps_to_the_trial_limit_and_leaves_nothing_paused(tmp_path):
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, seed=3, n_trials=10,
                            storage=f"sqlite:///{tmp_path / 'a.db'}", name="a")
    asks = 0
    with pytest.raises(tl.TrialLimitReached, match="n_trials=10 and no paused trial"):
        while asks < 100:
            drive(study, study.ask())
            asks += 1
    trials = study.trials
    assert len(trials) == 10 and asks > 10  # promoted trials were handed out again
    assert not [t for t in trials if t.state is TrialState.PAUSED]
    assert [t.reports[-1].step for t in trials if t.state is TrialState.COMPLETED] == [9.0]
    # Raising the limit on the stored study lets it go on.
    more = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, seed=3, n_trials=11,
                           storage=f"sqlite:///{tmp_path / 'a.db'}", name="a", load_if_exists=True)
    assert more.ask().number == 10


def test_raising_the_limit_grows_the_ladder_and_the_old_trials_leave_its_new_rung_to_the_new_ones(tmp_path):
    # 8 trials: rungs 3 and 9; raised to 30: rungs 1, 3 and 9. The 8 first trials started at 3,
    # past the new rung without being promoted from it, so they do not use up its quota.
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=4, n_trials=8,
                            storage=f"sqlite:///{tmp_path / 'g.db'}", name="g")
    for limit in (8, 30):
        study.n_trials = limit
        with pytest.raises(tl.TrialLimitReached):
            while True:
                drive(study, study.ask())
    old, new = study.trials[:8], study.trials[8:]
    at_one = sorted(loss_at(t.config, 1) for t in study.trials)
    past_one = [t for t in new if t.reports[-1].step > 1]
    # The new trials in the top third at 1 epoch went on, as many as the quota left them.
    assert len(past_one) == 10 - sum(loss_at(t.config, 1) <= at_one[9] for t in old)
    assert all(loss_at(t.config, 1) <= at_one[9] for t in past_one)
    assert {t.system_attrs["lowest_rung"] for t in old} == {3.0} and {t.system_attrs["lowest_rung"] for t in new} == {1.0}
    # Rung 3 holds the old trials and the promoted new ones, and promotes a third of all of them
    # (the old trials entered it without passing rung 1: its quota counts them as they are).
    at_three = [t for t in study.trials if t.reports[-1].step >= 3]
    assert len([t for t in study.trials if t.reports[-1].step >= 9]) == len(at_three) // 3


def diverges_below_half(config, trial):
    if config["x"] < 0.5:
        raise RuntimeError("diverged")
    return by_epochs(config, trial)


def test_a_rung_no_more_trials_can_reach_promotes_its_best_so_failures_still_leave_a_full_run():
    # 6 of 10 fail: 4 reach 1 epoch and one goes on to 3, where it stays alone. A rung of fewer
    # than eta trials promotes nobody while more may come; once none can, it promotes its best.
    xs = [0.1, 0.2, 0.6, 0.3, 0.7, 0.4, 0.8, 0.15, 0.9, 0.25]
    study = tl.tune(diverges_below_half, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=10, seed=2, progress=False, enqueue=[{"x": x} for x in xs])
    assert study.counts() == {"failed": 6, "pruned": 3, "completed": 1}
    assert study.best.config == {"x": 0.6} and study.best.reports[-1].step == 9.0


def crashes_long_below_015(config, trial):
    if config["x"] < 0.15 and trial.budget > 3:
        raise RuntimeError("out of memory in a long run")
    return by_epochs(config, trial)


@pytest.mark.parametrize("scheduler", ["asha", None])
def test_a_promoted_run_that_fails_is_replaced_by_the_next_best_kept_as_a_standby(scheduler):
    # Rung 3 holds 0.1, 0.2 and 0.3 and promotes one: 0.1, which then fails. Had its runners-up
    # been retired once it was chosen, no full run would be left at all.
    xs = [0.1, 0.5, 0.6, 0.2, 0.7, 0.8, 0.3, 0.9, 0.95]
    study = tl.tune(crashes_long_below_015, SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=EPOCHS,
                    searcher="random", n_trials=9, seed=0, progress=False, enqueue=[{"x": x} for x in xs])
    assert study.counts() == {"failed": 1, "pruned": 7, "completed": 1}
    assert study.best.config == {"x": 0.2} and study.best.reports[-1].step == 9.0


def test_a_short_study_still_ends_with_full_runs():
    # 8 trials on rungs 1, 3, 9 would promote 2 to rung 3 and none to 9; on rungs 3 and 9, 2 finish.
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=8, seed=1, progress=False)
    assert sorted({t.reports[0].step for t in study.trials if t.reports}) == [1.0]  # every run reports each epoch
    assert min(t.budget for t in study.trials) == 3.0
    assert len([t for t in study.trials if t.state is TrialState.COMPLETED]) == 2


class KeepsEveryPausedTrial(ASHAScheduler):
    """ASHA that never retires: what would have been promoted had nothing been pruned."""

    def retired(self, history):
        return []


def crossing_by_epochs(config, trial):
    return train_by_epochs(crossing_loss, config, trial)


def noisy_by_epochs(config, trial):
    def noisy(config, epoch):
        return (config["x"] - 0.3) ** 2 + 1.0 / epoch + 0.2 * random.Random(f"{config['x']}-{epoch}").random()
    return train_by_epochs(noisy, config, trial)


@pytest.mark.parametrize("objective, adaptive, n_trials, epochs, seed", [
    (by_epochs, False, 30, EPOCHS, 5), (late_blooming, True, 30, EPOCHS, 5), (crossing_by_epochs, True, 90, EPOCHS, 5),
    (noisy_by_epochs, True, 50, tl.fidelity("epochs", min=1, max=27, resumable=True), 7)])
def test_retiring_takes_only_trials_that_would_never_be_promoted_and_leaves_none_paused(tmp_path, objective, adaptive,
                                                                                        n_trials, epochs, seed):
    """With crossing curves, adaptive ASHA soon starts new trials at rung 3, which then holds
    more trials than rung 1 could ever promote: its quota grows with them, and the best of them
    must not be retired as if the rung were full. With noisy ones, every rung comes to mislead
    late, and the trials paused at the rung below the top, which adaptive ASHA then finishes,
    must still be there. (Random search: a model would read a paused
    trial and a retired one differently, and the two runs would part for that reason alone.)"""
    def run(scheduler_class, name):
        scheduler = scheduler_class("loss", "min", adaptive=adaptive, max_rungs=3)
        return tl.tune(objective, SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=epochs,
                       searcher="random", n_trials=n_trials, seed=seed, storage=f"sqlite:///{tmp_path / 'r.db'}",
                       name=name, progress=False)

    kept, retiring = run(KeepsEveryPausedTrial, "kept"), run(ASHAScheduler, "retiring")
    # The same runs go as far either way: no retired trial would ever have been resumed.
    assert [(t.config, t.reports[-1].step) for t in retiring.trials] == \
        [(t.config, t.reports[-1].step) for t in kept.trials]
    assert any(t.state is TrialState.PAUSED for t in kept.trials)  # there was something to retire
    # At the end nothing waits for a promotion that cannot come, and only full runs keep checkpoints.
    assert not [t for t in retiring.trials if t.state is TrialState.PAUSED]
    assert {t.number for t in retiring.trials if os.path.exists(retiring.checkpoint_dir(t))} == \
        {t.number for t in retiring.trials if t.state is TrialState.COMPLETED}


def test_asha_with_worker_processes(tmp_path):
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=10, seed=2, workers=2, storage=f"sqlite:///{tmp_path / 'w.db'}", name="w",
                    progress=False)
    assert_quotas(study)
    for trial in study.trials:
        steps = [r.step for r in trial.reports]
        assert steps == [float(e) for e in range(1, len(steps) + 1)]  # resumed runs continue the count


def crossing_loss(config, epoch: float) -> float:
    """Curves that cross after the first epoch: the best at epoch 1 end worst."""
    return config["x"] if epoch < 2 else 1.0 - config["x"] + 1.0 / epoch


def drive_with(loss_of, study, trial):
    loss = None
    for epoch in range(int(trial.load_checkpoint() or 0) + 1, int(trial.budget) + 1):
        loss = loss_of(trial.config, epoch)
        trial.save_checkpoint(epoch)
        if trial.report(epoch, loss=loss) is not Decision.CONTINUE:
            break
    study.tell(trial, loss)


@pytest.mark.parametrize("crossing", [False, True])
def test_adaptive_asha_starts_above_a_rung_whose_order_does_not_hold(crossing):
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=4,
                            scheduler_options={"adaptive": True})
    loss_of = crossing_loss if crossing else loss_at
    starts, left_at_rung_1 = [], None
    for _ in range(140):
        trial = study.ask()
        if trial.number == len(starts):  # a new trial, not a promoted one
            starts.append(trial.budget)
            if trial.budget == 3.0 and left_at_rung_1 is None:
                left_at_rung_1 = [t.id for t in study.trials if t.state is TrialState.PAUSED and t.budget == 1.0]
        drive_with(loss_of, study, trial)
        at_rung = [t for t in study.trials if reached(t, 1.0) and starts[t.number] == 1.0]
        promoted = [t for t in at_rung if t.budget > 1.0]
        assert len(promoted) <= len(at_rung) // 3
    # no rung is judged on fewer than TRUST_PAIRS promotions, each out of three trials at the rung
    assert starts[:3 * TRUST_PAIRS] == [1.0] * (3 * TRUST_PAIRS)
    if crossing:
        assert starts[-10:] == [3.0] * 10  # rung 1 misleads: new trials start at rung 3
        assert study.scheduler.first_trusted(study.history()) == 1
        # nothing is promoted from the distrusted rung once the move is made
        assert left_at_rung_1
        assert all(t.budget == 1.0 for t in study.trials if t.id in left_at_rung_1)
    else:
        assert set(starts) == {1.0}


def twice_crossing_loss(config, epoch: float) -> float:
    """Curves whose order flips after the first epoch and back after the third: rungs 1 and 3
    both mislead, only full runs (9 epochs) rank them as they end."""
    if epoch < 2:
        return config["x"]
    return 1.0 - config["x"] + 1.0 / epoch if epoch < 4 else config["x"] + 1.0 / epoch


def test_once_only_full_runs_are_trusted_the_trials_paused_below_the_top_are_finished_first():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, seed=5,
                            scheduler_options={"adaptive": True})
    finished_from_3 = 0
    for _ in range(400):
        full_runs_only = study.scheduler.first_trusted(study.history()) == 2
        before = study.trials
        waiting = {t.id: t.reports[2].metrics["loss"] for t in before
                   if t.state is TrialState.PAUSED and t.budget == 3.0}
        if full_runs_only and waiting and not finished_from_3:
            # they are kept for finishing even where a trial limit would retire a rung's low ranks
            study.scheduler.plan(len(before))
            assert not [t for t in study.scheduler.retired(study.history()) if t.budget == 3.0]
            study.scheduler.plan(None)
        trial = study.ask()
        resumed = trial.number < len(before)
        if full_runs_only and waiting:
            # the best of them at rung 3 (the lowest loss there) goes on to 9, before any new trial
            assert resumed and trial.budget == 9.0
            assert waiting.get(trial.id) == min(waiting.values())
            finished_from_3 += 1
        elif full_runs_only and not resumed:
            assert trial.budget == 9.0  # nothing left to finish: new trials are full runs
        drive_with(twice_crossing_loss, study, trial)
        if finished_from_3 and full_runs_only and not waiting:
            break
    assert finished_from_3 > 0, "rung 3 was never found misleading"
    assert not [t for t in study.trials if t.state is TrialState.PAUSED and t.budget == 3.0]


def test_rung_agreement_looks_at_the_trials_a_rung_would_promote():
    from tunelab.schedulers.rungs import rung_agreement

    rung = {i: float(i) for i in range(30)}
    same = {i: 10.0 + i for i in range(30)}
    assert rung_agreement(rung, same, 3) == (pytest.approx(1.0), 10)
    reversed_best = {i: -i if i < 10 else i for i in range(30)}  # the best ten swap their order
    assert rung_agreement(rung, reversed_best, 3) == (pytest.approx(-1.0), 10)
    tau, pairs = rung_agreement(rung, {0: 1.0, 1: 2.0}, 3)
    assert pairs == 2 and tau != tau  # too few to tell: NaN
    with pytest.raises(tl.ConfigError, match="adaptive"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                        scheduler_options={"adaptive": True, "brackets": 2})


def test_a_rung_above_the_first_needs_more_trials_to_be_found_misleading():
    from tunelab.schedulers.rungs import TRUST_PAIRS_ABOVE, misleads

    assert TRUST_PAIRS_ABOVE > TRUST_PAIRS
    # a reversed order on TRUST_PAIRS trials condemns the lowest rung, not one above it
    assert misleads(-1.0, TRUST_PAIRS, rung=0)
    assert not misleads(-1.0, TRUST_PAIRS, rung=1)
    assert misleads(-1.0, TRUST_PAIRS_ABOVE, rung=2)
    # an order that holds is trusted on any number of trials, at any rung
    assert not any(misleads(0.9, n, rung=k) for n in (6, 10, 40) for k in (0, 1, 2))
    assert not misleads(-1.0, TRUST_PAIRS - 1, rung=0)


@pytest.mark.parametrize("scheduler", ["asha", "hyperband", None])
def test_a_grid_that_runs_out_still_promotes_and_leaves_nothing_paused(scheduler):
    """Once the grid has no new point, the study's size is known: the rungs close on the trials
    there are, the best go on to the full budget, and the rest are retired with their checkpoints."""
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler=scheduler,
                    searcher="grid", searcher_options={"points": 9}, progress=False, seed=0)
    counts = study.counts()
    assert counts.get("paused", 0) == 0 and sum(counts.values()) == 9  # every grid point, once
    assert study.best.budget == 9.0 and study.best.config["x"] == 0.0
    kept = [t for t in study.trials if os.path.exists(study.checkpoint_dir(t))]
    assert all(t.state is TrialState.COMPLETED for t in kept)


def test_the_default_setup_in_stopping_mode_drops_its_own_adaptive_default():
    """adaptive needs promotion: a user who asks for stopping should not hear about a default they never set."""
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler_options={"promotion": False})
    assert study.scheduler.name == "asha" and not study.scheduler.promotion and not study.scheduler.adaptive
    with pytest.raises(tl.ConfigError, match="adaptive=True needs promotion=True"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS,
                        scheduler_options={"promotion": False, "adaptive": True})


def test_contradictory_options_are_refused_and_a_stopping_rule_on_a_fresh_run_fidelity_is_warned_about():
    from mf_objectives import SUBSAMPLE

    with pytest.raises(tl.ConfigError, match="max_paused caps the trials paused at rungs, and with promotion=False"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha",
                        scheduler_options={"promotion": False, "max_paused": 5})
    with pytest.raises(tl.ConfigError, match=r"sh: give n .* or budget .*, not both"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="sh",
                        scheduler_options={"n": 9, "budget": 1000})
    with pytest.raises(tl.ConfigError, match="asha: needs numbers 0 < min_budget < max_budget; got min_budget=9"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha",
                        scheduler_options={"min_budget": 9, "max_budget": 3})
    for scheduler, options in (("median", None), ("curve", {"max_step": 1.0}), ("asha", {"promotion": False})):
        with pytest.warns(tl.SetupWarning, match=rf"scheduler '{scheduler}' stops a run between .* is never stopped"):
            tl.create_study(SPACE, metric="loss", mode="min", fidelity=SUBSAMPLE, scheduler=scheduler,
                            scheduler_options=options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # promotion chooses each run's level: nothing to warn about
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=SUBSAMPLE, scheduler="asha")
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="median")


def test_more_brackets_than_rungs_says_how_many_are_used():
    scheduler = ASHAScheduler("loss", "min", brackets=10)
    with pytest.warns(UserWarning, match=r"brackets=10, and the fidelity's range holds 4 rungs \(1, 3, 9, 27\).* 4 "
                                         "brackets are used"):
        scheduler.bind(tl.fidelity("epochs", min=1, max=27, resumable=True))
    assert scheduler.n_brackets == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ASHAScheduler("loss", "min", brackets=4).bind(tl.fidelity("epochs", min=1, max=27, resumable=True))


@pytest.mark.parametrize("scheduler, option, ours", [("asha", "grace_period", "min_budget"),
                                                     ("asha", "reduction_factor", "eta"),
                                                     ("median", "grace_period", "warmup_steps"),
                                                     ("median", "n_startup_trials", "min_trials"),
                                                     ("hyperband", "max_t", "max_budget")])
def test_an_option_named_as_ray_tune_or_optuna_name_it_is_told_its_name_here(scheduler, option, ours):
    with pytest.raises(tl.ConfigError, match=rf"has no option '{option}' \(the name it has elsewhere: here it is "
                                             rf"'{ours}'\)"):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler=scheduler,
                        scheduler_options={option: 1}, fidelity=tl.fidelity("epochs", min=1, max=9))


def test_a_mistyped_option_is_told_the_close_one():
    with pytest.raises(tl.ConfigError, match=r"has no option 'min_budgt' \(did you mean 'min_budget'\?\)"):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha",
                        scheduler_options={"min_budgt": 1}, fidelity=tl.fidelity("epochs", min=1, max=9))
