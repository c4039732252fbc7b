"""Fidelity declared with the study, checkpoints as files, pause and resume, ask/tell with rungs."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import tunelab as tl
from tunelab.trial import Decision, TrialState

from mf_objectives import EPOCHS, SPACE, SUBSAMPLE, by_epochs, by_subsample


def test_fidelity_is_validated():
    with pytest.raises(tl.ConfigError, match="0 < min < max"):
        tl.fidelity("epochs", min=5, max=1)
    with pytest.raises(tl.ConfigError, match="finite number"):
        tl.fidelity("epochs", min=1, max=float("inf"))
    with pytest.raises(tl.ConfigError, match="resumable must be True or False; got 'no'"):
        tl.fidelity("epochs", min=1, max=9, resumable="no")
    with pytest.raises(tl.ConfigError, match="unknown key.s. resumeable; allowed: name, min, max, resumable"):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity={"name": "epochs", "min": 1, "max": 9,
                                                                    "resumeable": True})
    assert EPOCHS.integer and not SUBSAMPLE.integer
    assert EPOCHS.level(4.4) == 4.0 and EPOCHS.level(100) == 9.0


@pytest.mark.parametrize("scheduler, options, error", [
    ("asha", {"promotion": "false"}, "asha: promotion must be True or False; got 'false'"),
    ("asha", {"adaptive": "no"}, "asha: adaptive must be True or False"),
    ("asha", {"max_budget": 81}, r"asha: max_budget must lie in the fidelity's range \[1, 9\] \(epochs\); got 81"),
    ("hyperband", {"min_budget": 0.1}, r"hyperband: min_budget must lie in the fidelity's range"),
    ("curve", {"threshold": "0.1"}, r"curve: threshold must be a probability in \(0, 1\); got '0.1'"),
    ("curve", {"max_step": -3}, "curve: max_step must be a positive number"),
    ("curve", {"max_step": 100}, r"curve: max_step=100 lies beyond the fidelity's max 9 \(epochs\)"),
    ("median", {"warmup_steps": "2x"}, "median: warmup_steps must be a step >= 0; got '2x'"),
    ("threshold", {"threshold": 1, "warmup_steps": None}, "threshold: warmup_steps must be a step >= 0"),
    ("asha", [("eta", 3)], "scheduler_options must be a dict of option names to values"),
])
def test_scheduler_options_are_checked_against_their_type_and_the_fidelity(scheduler, options, error):
    with pytest.raises(tl.ConfigError, match=error):
        tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler=scheduler,
                        scheduler_options=options)


def test_an_eta_that_leaves_one_rung_says_nothing_will_be_cut_short():
    with pytest.warns(UserWarning, match=r"asha: with eta=100, the budgets 1..9 leave one rung, the full budget") \
            as caught:
        study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha",
                                scheduler_options={"eta": 100})
    assert study.scheduler.levels == [9.0] and {w.filename for w in caught} == {__file__}


def test_whole_number_rungs_are_kept_once_when_a_small_eta_rounds_them_together():
    from tunelab.schedulers.rungs import ladder

    assert ladder(1, 27, 1.5, integer=True) == [1.0, 2.0, 4.0, 5.0, 8.0, 12.0, 18.0, 27.0]
    assert ladder(1, 81, 3, integer=True) == [1.0, 3.0, 9.0, 27.0, 81.0]
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=tl.fidelity("epochs", min=1, max=9),
                            scheduler="sh", scheduler_options={"eta": 1.2})
    assert len(set(study.scheduler.levels)) == len(study.scheduler.levels)


def test_fidelity_is_recorded_and_checked_on_reopen(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    tl.create_study(SPACE, metric="loss", mode="min", name="s", storage=url, fidelity=EPOCHS, scheduler="asha")
    study = tl.load_study("s", storage=url)
    assert study.fidelity == EPOCHS and study.record.settings["fidelity"]["resumable"] is True
    assert study.scheduler.name == "asha" and study.scheduler.levels == [1.0, 3.0, 9.0]
    with pytest.raises(tl.ConfigError, match="created with"):
        tl.create_study(SPACE, metric="loss", mode="min", name="s", storage=url, load_if_exists=True,
                        fidelity=tl.fidelity("epochs", min=1, max=27))


def test_a_rung_scheduler_without_fidelity_says_what_to_add():
    with pytest.raises(tl.ConfigError, match="needs a fidelity"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler="hyperband")


def test_checkpoints_are_files_next_to_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    study = tl.create_study(SPACE, metric="loss", mode="min", name="ck", storage=url)
    trial = study.ask()
    assert trial.load_checkpoint() is None
    path = trial.save_checkpoint({"epoch": 3, "weights": [0.5, 1.5]})
    assert path == str(tmp_path / "tunelab-artifacts" / "ck" / "0" / "checkpoint" / "checkpoint.json")
    assert trial.load_checkpoint() == {"epoch": 3, "weights": [0.5, 1.5]}
    trial.save_checkpoint(b"\x00raw")
    assert trial.load_checkpoint() == b"\x00raw" and not os.path.exists(path)
    assert os.path.isdir(trial.checkpoint_dir)
    with pytest.raises(tl.ConfigError, match="JSON-able"):
        trial.save_checkpoint(object())
    # what training loops keep: the best value so far (inf at first), numpy numbers
    state = {"best_val": math.inf, "last": math.nan, "lr": np.float32(0.5), "w": np.arange(3), "(1, 2)": (1, 2)}
    trial.save_checkpoint(state)
    back = trial.load_checkpoint()
    assert back["best_val"] == math.inf and math.isnan(back["last"]) and 0.3 < back["best_val"]
    assert (back["lr"], back["w"], back["(1, 2)"]) == (0.5, [0, 1, 2], [1, 2])
    # a key JSON would turn into a string is refused where it is made, not found missing on resume
    with pytest.raises(tl.ConfigError, match=r"checkpoint\['layers'\]\[0\] has the key 3 \(int\).*load as '3'"):
        trial.save_checkpoint({"layers": [{3: 0.5}]})
    assert trial.load_checkpoint()["w"] == [0, 1, 2]  # the last good checkpoint stays
    with pytest.raises(tl.ConfigError, match="key True \\(bool\\); JSON keys are strings, so it would load as 'true'"):
        trial.save_checkpoint({True: 1})


def test_paused_trials_resume_from_their_checkpoint_and_their_steps_continue(tmp_path):
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=12, seed=3, storage=f"sqlite:///{tmp_path / 'a.db'}", name="a", progress=False)
    completed = [t for t in study.trials if t.state is TrialState.COMPLETED]
    assert completed, study.counts()
    for trial in completed:
        assert [r.step for r in trial.reports] == [float(e) for e in range(1, 10)]  # no epoch trained twice
        state = tl.checkpoints.load(study.checkpoint_dir(trial))
        assert state["starts"] == [1, 2, 4] and state["epoch"] == 9  # three runs: to 1, to 3, to 9
    promoted_then_paused = [t for t in study.trials if t.state is TrialState.PAUSED and t.budget == 3.0]
    for trial in promoted_then_paused:
        assert [r.step for r in trial.reports] == [1.0, 2.0, 3.0]


def test_checkpoints_of_pruned_and_retired_trials_are_deleted(tmp_path):
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="sh", scheduler_options={"n": 9},
                    fidelity=EPOCHS, n_trials=9, seed=1, storage=f"sqlite:///{tmp_path / 'd.db'}", name="d",
                    progress=False)
    assert study.counts() == {"pruned": 8, "completed": 1}
    for trial in study.trials:
        exists = os.path.isdir(study.checkpoint_dir(trial))
        assert exists == (trial.state is TrialState.COMPLETED), trial


def remembers_its_levels(config, trial):
    """Saves the levels it ran at; a fresh-run level must find nothing to go on from."""
    seen = trial.load_checkpoint()
    trial.save_checkpoint({"levels": [trial.budget], "found": seen})
    return by_subsample(config, trial)


def test_fresh_run_fidelity_reruns_at_the_higher_level():
    study = tl.tune(remembers_its_levels, SPACE, metric="loss", mode="min", scheduler="sh",
                    scheduler_options={"n": 9}, fidelity=SUBSAMPLE, n_trials=9, seed=2, progress=False)
    best = study.best
    assert [round(r.step, 6) for r in best.reports] == [round(1 / 9, 6), round(1 / 3, 6), 1.0]
    assert best.value == pytest.approx(best.config["x"] + 0.1)
    # trained again from scratch: the promoted run found no checkpoint of the level below
    assert tl.checkpoints.load(study.checkpoint_dir(best)) == {"levels": [1.0], "found": None}


def by_width(config, trial):
    """A model built afresh at each size (hidden units): wider fits better, and costs more."""
    width = trial.budget
    loss = config["x"] + 4.0 / width
    trial.report(width, loss=loss)
    return loss


def test_a_model_size_fidelity_runs_whole_sizes_afresh_at_each_level():
    width = tl.fidelity("model_size", min=16, max=432)  # hidden units; not resumable
    study = tl.tune(by_width, SPACE, metric="loss", mode="min", fidelity=width, n_trials=30, seed=3,
                    progress=False)
    assert study.scheduler.name == "asha" and study.scheduler.levels == [16.0, 48.0, 144.0, 432.0]
    runs = {t.number: [r.step for r in t.reports] for t in study.trials}
    # One report per size a trial was built at, each a whole ladder level, climbing one rung at a time.
    assert all(steps == [16.0, 48.0, 144.0, 432.0][:len(steps)] for steps in runs.values())
    assert study.best.reports[-1].step == 432.0 and study.best.value == pytest.approx(study.best.config["x"] + 4 / 432)


def test_ask_tell_hands_out_budgets_and_tell_closes_a_rung():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="sh", fidelity=EPOCHS, seed=0,
                            scheduler_options={"n": 3})
    first = [study.ask() for _ in range(3)]
    assert [t.budget for t in first] == [1.0, 1.0, 1.0]
    for trial in first:
        decision = trial.report(1, loss=trial.config["x"])
        assert decision is Decision.PAUSE and trial.should_stop()
        assert study.tell(trial, trial.config["x"]).state is TrialState.PAUSED
    promoted = study.ask()
    best = min(first, key=lambda t: t.config["x"])
    assert promoted.number == best.number and promoted.budget == 3.0
    assert promoted.report(2, loss=0.5) is Decision.CONTINUE and not promoted.should_stop()
    assert promoted.report(3, loss=0.4) is Decision.PAUSE
    study.tell(promoted, 0.4)
    final = study.ask()
    assert final.number == best.number and final.budget == 9.0
    final.report(9, loss=0.3)
    assert study.tell(final, 0.3).state is TrialState.COMPLETED
    assert study.counts() == {"completed": 1, "pruned": 2}


def test_a_whole_number_budget_is_an_int_so_range_counts_epochs():
    def objective(config, trial):
        done = trial.last_step or 0
        assert isinstance(trial.budget, int)
        for epoch in range(int(done) + 1, trial.budget + 1):  # no int() needed
            trial.report(epoch, loss=config["x"] + 1 / epoch)
        return config["x"] + 1 / trial.budget

    study = tl.tune(objective, SPACE, metric="loss", mode="min", fidelity=EPOCHS, n_trials=12, seed=0,
                    progress=False)
    assert study.counts()["completed"] >= 1 and not study.counts().get("failed")
    asked = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, seed=0).ask()
    assert isinstance(asked.budget, int) and asked.budget == asked._spec.budget
    share = tl.create_study(SPACE, metric="loss", mode="min", fidelity=SUBSAMPLE, seed=0).ask()
    assert isinstance(share.budget, float) and 0 < share.budget < 1


def test_ask_tell_with_a_stopping_scheduler_records_the_pruning():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="threshold", seed=0,
                            scheduler_options={"threshold": 1.0})
    trial = study.ask()
    assert trial.report(1, loss=2.0) is Decision.STOP and trial.should_stop()
    assert study.tell(trial, 2.0).state is TrialState.PRUNED


def test_the_default_setup_follows_the_fidelity():
    plain = tl.create_study(SPACE, metric="loss", mode="min")
    assert (plain.scheduler.name, plain.searcher.name) == ("fifo", "auto")
    epochs = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS)
    assert (epochs.scheduler.name, epochs.searcher.name) == ("asha", "kde") and epochs.scheduler.promotion
    fresh = tl.create_study(SPACE, metric="loss", mode="min", fidelity=SUBSAMPLE, searcher="sobol")
    assert (fresh.scheduler.name, fresh.searcher.name) == ("asha", "sobol") and fresh.scheduler.promotion
    auto = tl.create_study(SPACE, metric="loss", mode="min", fidelity=tl.fidelity("epochs", min=1, max=81),
                           scheduler="auto")
    assert (auto.scheduler.name, auto.searcher.name) == ("asha", "kde")
    assert auto.scheduler.levels == [3.0, 9.0, 27.0, 81.0]  # no rung at 1 epoch of 81
    assert auto.scheduler.adaptive and epochs.scheduler.adaptive  # a misleading rung stops deciding
    assert auto.scheduler.forecast and epochs.scheduler.forecast  # rungs rank by where curves end
    manual = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler_options={"adaptive": False})
    assert manual.scheduler.name == "asha" and not manual.scheduler.adaptive
    assert tl.create_study(SPACE, metric="loss", mode="min", scheduler="auto").scheduler.name == "fifo"
    with pytest.raises(tl.ConfigError, match=r"scheduler_options \['eta'\] are for a multi-fidelity scheduler, "
                                             r"and without a fidelity"):
        tl.create_study(SPACE, metric="loss", mode="min", scheduler_options={"eta": 2})


def test_a_stopping_scheduler_gets_the_full_budget_of_the_fidelity():
    study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="median", fidelity=EPOCHS,
                    n_trials=2, seed=0, progress=False)
    assert [t.budget for t in study.trials] == [9.0, 9.0]
    assert [len(t.reports) for t in study.trials] == [9, 9]


def fits_a_subsample(config, trial):
    """Fits on a share trial.budget of the data and returns the score: no report."""
    return config["x"] + 0.1 / trial.budget


@pytest.mark.parametrize("scheduler", ["hyperband", "sh", "asha"])
def test_an_objective_that_returns_without_reporting_is_judged_at_its_budget(scheduler):
    study = tl.tune(fits_a_subsample, SPACE, metric="loss", mode="min", scheduler=scheduler, fidelity=SUBSAMPLE,
                    n_trials=20, seed=0, progress=False)
    trials = study.trials
    assert all(t.reports and t.reports[-1].step == t.budget for t in trials)  # its result, at its level
    assert any(len(t.reports) > 1 for t in trials)  # promoted: fitted again on a larger share
    assert study.best.budget == 1.0
    assert not [t for t in trials if t.state is TrialState.COMPLETED and t.budget < 1.0]


def test_a_fidelity_of_numpy_whole_numbers_is_a_whole_number_fidelity():
    """np.int64 bounds (from np.arange, a config) were refused as not numbers."""
    import numpy as np

    declared = tl.fidelity("epochs", min=np.int64(1), max=np.int64(27))
    assert declared == tl.fidelity("epochs", min=1, max=27) and declared.integer
    assert type(declared.to_json()["max"]) is int
