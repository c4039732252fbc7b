"""study.tell and trial.report in a user's own loop: a told result ends the run as the tuner would,
whichever process or Study object tells it, and misuse gets a clear answer, never a wrong record."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import warnings

import pytest

import tunelab as tl
from tunelab.storage import MemoryStorage
from tunelab.trial import Decision, TrialState

from mf_objectives import EPOCHS, SPACE, SUBSAMPLE, loss_at


def _study(tmp_path=None, **options):
    storage = f"sqlite:///{tmp_path / 't.db'}" if tmp_path is not None else None
    options = {"scheduler": "asha", "fidelity": EPOCHS, **options}
    return tl.create_study(SPACE, metric="loss", mode="min", seed=0, storage=storage, name="t", **options)


def _paused(study):
    """A trial paused at the lowest rung (epoch 1 of 9), and its handle."""
    trial = study.ask()
    assert trial.report(trial.budget, loss=0.5) is Decision.PAUSE
    return study.tell(trial), trial


def test_a_paused_trial_told_twice_stays_paused_and_a_new_value_is_refused():
    study = _study()
    record, handle = _paused(study)
    assert record.state is TrialState.PAUSED and record.budget == 1.0
    assert study.tell(handle).state is TrialState.PAUSED  # the same result again: fine
    assert study.tell(handle, 0.5).state is TrialState.PAUSED
    with pytest.raises(tl.ConfigError, match=r"trial 0 is paused at budget 1 \(a rung\); a later ask\(\) resumes it"):
        study.tell(handle, 0.1)
    assert study.get_trial(0).state is TrialState.PAUSED and study.get_trial(0).value == 0.5


def test_a_study_reloaded_between_report_and_tell_still_pauses_the_trial(tmp_path):
    study = _study(tmp_path)
    trial = study.ask()
    assert trial.report(1, loss=0.5) is Decision.PAUSE
    again = tl.load_study("t", storage=study.storage)  # another process, or the same after a restart
    told = again.tell(trial.number)
    assert told.state is TrialState.PAUSED and told.budget == 1.0
    assert tl.load_study("t", storage=study.storage).get_trial(0).state is TrialState.PAUSED


def test_a_handle_from_an_earlier_run_of_a_resumed_trial_cannot_tell_it_nor_report_to_it(tmp_path):
    study = _study(tmp_path)
    handles = [study.ask() for _ in range(3)]
    for handle, loss in zip(handles, (0.1, 0.5, 0.6)):
        handle.save_checkpoint({"epoch": 1})
        handle.report(handle.budget, loss=loss)
        study.tell(handle)
    # The told run's handle is closed: nothing it says can reach the run that goes on.
    told = r"trial 0 was told already \(paused\), so this handle's run is over; a later ask\(\) resumes it"
    with pytest.raises(tl.ConfigError, match=r"trial.save_checkpoint: " + told):
        handles[0].save_checkpoint({"epoch": 999})
    resumed = study.ask()  # the best of rung 1 goes on to 3 epochs
    assert resumed.number == handles[0].number and resumed.budget == 3.0
    assert resumed.load_checkpoint() == {"epoch": 1}
    with pytest.raises(tl.ConfigError, match=r"this handle is from an earlier run of trial 0 \(budget 1\)"):
        study.tell(handles[0], 0.2)
    with pytest.raises(tl.ConfigError, match=r"trial.report: " + told):
        handles[0].report(2, loss=0.9)
    with pytest.raises(tl.ConfigError, match=r"trial.save_checkpoint: " + told):
        handles[0].save_checkpoint({"epoch": 555})
    assert [r.step for r in study.get_trial(0).reports] == [1.0] and resumed.load_checkpoint() == {"epoch": 1}
    assert resumed.report(2, loss=0.08) is Decision.CONTINUE
    resumed.report(3, loss=0.05)
    assert [r.metrics["loss"] for r in study.get_trial(0).reports] == [0.1, 0.08, 0.05]
    assert study.tell(resumed).state is TrialState.PAUSED and study.get_trial(0).budget == 3.0


_ANOTHER_PROCESS = """
import pathlib, sys, time
import tunelab as tl
folder = pathlib.Path(sys.argv[1])
study = tl.load_study("t", storage=f"sqlite:///{folder / 't.db'}")
trial = study.ask()
(folder / "asked").touch()
while not (folder / "go").exists():
    time.sleep(0.05)
time.sleep(1.0)
trial.report(trial.budget, loss=0.9)
study.tell(trial)
"""


def _until(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the other process did not get there"
        time.sleep(0.05)


def test_at_the_limit_ask_waits_for_the_trial_of_another_process_that_completes_a_rung(tmp_path):
    """Two processes share a synchronous study. This one's last ask comes while the other still
    runs the trial that completes the rung: ending the loop there, as both may at once, would
    leave the rung's best paused for good. ask waits for that result and hands out the promotion
    (a trial this process holds itself never makes it wait)."""
    study = _study(tmp_path, scheduler="sh", scheduler_options={"n": 3}, n_trials=3)
    other = subprocess.Popen([sys.executable, "-c", _ANOTHER_PROCESS, str(tmp_path)])
    try:
        _until(lambda: (tmp_path / "asked").exists() or other.poll() is not None)
        mine = [study.ask(), study.ask()]
        for trial, loss in zip(mine, (0.1, 0.5)):
            trial.report(trial.budget, loss=loss)
            study.tell(trial)
        with pytest.raises(tl.TrialLimitReached, match=r"1 running trial\(s\) may be promoted once told"):
            study.ask(wait=False)
        (tmp_path / "go").touch()
        promoted = study.ask()
        assert (promoted.number, promoted.budget) == (mine[0].number, 3 * mine[0].budget)
    finally:
        other.wait(timeout=60)
    assert other.returncode == 0
    with pytest.raises(tl.TrialLimitReached, match=r"1 running trial"):  # its own: no wait
        study.ask()


class _ToldWhileAsking(MemoryStorage):
    """Another process tells its trial just as this one's ask looks for running trials, after
    it read the study (``on_running`` does the telling)."""

    on_running = None

    def running_trials(self, study_id):
        if self.on_running is not None:
            act, self.on_running = self.on_running, None
            act()
        return super().running_trials(study_id)


def test_at_the_limit_ask_sees_a_trial_told_after_it_read_the_study():
    store = _ToldWhileAsking()
    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0, storage=store, name="t", scheduler="sh",
                            scheduler_options={"n": 3}, fidelity=EPOCHS, n_trials=3)
    other = tl.load_study("t", storage=store)
    other.owner = "another process"
    theirs = other.ask()
    mine = [study.ask(), study.ask()]
    for trial, loss in zip(mine, (0.1, 0.5)):
        trial.report(trial.budget, loss=loss)
        study.tell(trial)

    def tell_theirs():
        theirs.report(theirs.budget, loss=0.9)
        other.tell(theirs)

    store.on_running = tell_theirs
    promoted = study.ask(wait=False)  # the rung completed meanwhile: its best goes on
    assert (promoted.number, promoted.budget) == (mine[0].number, 3 * mine[0].budget)


def test_at_the_limit_ask_says_whether_the_running_trials_may_be_promoted():
    study = _study(n_trials=1)  # a ladder trimmed to one trial: it runs at the full budget
    trial = study.ask()
    assert trial.budget == EPOCHS.max
    with pytest.raises(tl.TrialLimitReached, match=r"no paused trial is to be resumed; 1 running trial\(s\) still "
                                                   r"to be told; to go on"):
        study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(tl.TrialLimitReached, match=r"no paused trial is to be resumed; to go on"):
        study.ask()


@pytest.mark.parametrize("scheduler", ["asha", "sh", "hyperband", None])
def test_a_result_told_without_a_report_is_the_report_at_the_trials_budget(scheduler):
    """A loop that fits at trial.budget and tells the score (no report) is tuned as one that
    reports: the scheduler pauses it at its rung, and the best trial is a full run."""
    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0, scheduler=scheduler, fidelity=SUBSAMPLE,
                            n_trials=30)
    with pytest.raises(tl.TrialLimitReached):
        while True:
            trial = study.ask()
            study.tell(trial, trial.config["x"] + 0.1 / trial.budget)
    trials = study.trials
    assert all(t.reports and t.reports[-1].step == t.budget for t in trials)
    assert any(len(t.reports) > 1 for t in trials)  # some were promoted and fitted again
    assert study.best.budget == 1.0 and not [t for t in trials if t.state is TrialState.COMPLETED and t.budget < 1]


def test_a_stop_stands_for_the_rest_of_the_run_and_the_trial_is_pruned():
    study = _study(scheduler_options={"promotion": False}, n_trials=30)
    stopped = None
    while stopped is None:
        trial = study.ask()
        for epoch in range(1, 10):
            if trial.report(epoch, loss=loss_at(trial.config, epoch)) is Decision.STOP:
                stopped = trial
                break
        else:
            study.tell(trial)
    with pytest.warns(UserWarning, match="after the scheduler answered STOP"):
        assert stopped.report(5, loss=0.0) is Decision.STOP  # a better value later does not undo it
    assert stopped.should_stop()
    assert study.tell(stopped, 0.0).state is TrialState.PRUNED
    assert study.best.number != stopped.number


@pytest.mark.parametrize("value", ["oops", [0.1], {"acc": 0.3}, True])
def test_a_paused_trials_result_is_checked_like_any_other(value):
    study = _study()
    trial = study.ask()
    trial.report(trial.budget, loss=0.5)
    with pytest.raises(tl.ConfigError, match="tell: "):
        study.tell(trial, value)
    assert study.get_trial(trial.number).state is TrialState.RUNNING  # nothing was recorded
    with pytest.warns(UserWarning, match="failed"):
        assert study.tell(trial, math.nan).state is TrialState.FAILED


@pytest.mark.parametrize("scheduler", ["median", "percentile", "asha"])
def test_a_report_without_the_metric_its_scheduler_judges_is_refused(scheduler):
    """Taken quietly, such reports left every run "completed" at the lowest rung, never judged."""
    study = _study(scheduler=scheduler)
    trial = study.ask()
    with pytest.raises(tl.ConfigError, match=r"judges each report on 'loss'; got only \['val_loss'\]"):
        trial.report(0.5, val_loss=0.3)
    trial.report(0.5, loss=0.4, val_loss=0.3)  # other metrics may come with it
    assert [r.metrics for r in study.get_trial(trial.number).reports] == [{"loss": 0.4, "val_loss": 0.3}]
    fifo = tl.create_study(SPACE, metric="loss", mode="min")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing judges reports: other metrics are just kept
        fifo.ask().report(1, val_loss=0.3)


def test_reports_after_a_stop_are_not_kept_and_a_nan_at_the_last_step_still_stops_the_run():
    study = _study(scheduler="threshold", scheduler_options={"threshold": 0.5})
    trial = study.ask()
    assert trial.report(1, loss=0.9) is Decision.STOP
    with pytest.warns(UserWarning, match="after the scheduler answered STOP"):
        trial.report(9, loss=0.01)  # the full budget, with a better value: the run is over all the same
    assert [r.step for r in study.get_trial(trial.number).reports] == [1.0]
    assert study.tell(trial, 0.01).state is TrialState.PRUNED
    other = study.ask()
    assert other.report(8, loss=0.1) is Decision.CONTINUE
    assert other.report(9, loss=math.nan) is Decision.STOP  # diverged at the end: no full run to keep
    ended = study.tell(other, 0.2)
    assert ended.state is TrialState.FAILED and "nan" in ended.error


def test_steps_must_increase_and_may_not_be_negative():
    study = _study(scheduler="median")
    trial = study.ask()
    trial.report(1, loss=0.9)
    trial.report(2, loss=0.8)
    with pytest.warns(UserWarning, match="reports step 2 after step 2: steps must increase, so the report is ignored"):
        trial.report(2, loss=0.7)
    trial.report(1, loss=0.6)
    trial.report(3, loss=0.5)
    stored = study.get_trial(trial.number).reports
    assert [(r.step, r.metrics["loss"]) for r in stored] == [(1, 0.9), (2, 0.8), (3, 0.5)]
    for bad in (-1, math.inf):
        with pytest.raises(tl.ConfigError, match="step must be a finite number >= 0"):
            trial.report(bad, loss=0.1)


@pytest.mark.parametrize("scheduler", ["median", "asha"])
def test_budgets_have_one_type_on_every_storage(scheduler, tmp_path):
    """The record's budget is a float; the handle's an int where whole (epochs), on every storage."""
    for study in (_study(scheduler=scheduler), _study(tmp_path, scheduler=scheduler)):
        trial = study.ask()
        assert isinstance(trial.budget, int) and isinstance(study.get_trial(trial.number).budget, float)


def test_ask_resumes_paused_trials_after_a_grid_runs_out_and_ends_with_none_paused():
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS, searcher="grid",
                            searcher_options={"points": 5})
    asked = 0
    with pytest.raises(tl.SearchExhausted):
        while asked < 50:
            trial = study.ask()
            asked += 1
            start = int(trial.load_checkpoint() or 0)
            for epoch in range(start + 1, int(trial.budget) + 1):
                trial.save_checkpoint(epoch)
                trial.report(epoch, loss=loss_at(trial.config, epoch))
            study.tell(trial)
    assert asked > 5 and study.counts().get("paused", 0) == 0  # paused trials were handed out again
    assert study.best.budget == 9.0


def test_a_nan_reported_at_a_rung_stops_the_run_and_fails_the_trial_saying_why():
    """A diverged run is a failure with its reason, not a pruned trial like any other."""
    study = _study()
    trial = study.ask()
    assert trial.report(1, loss=math.nan) is Decision.STOP
    ended = study.tell(trial, state="pruned")
    assert ended.state is TrialState.FAILED and ended.error == "reported loss=nan at step 1 (the run diverged)"

    def objective(config, trial):
        for epoch in range(1, int(trial.budget) + 1):
            trial.report(epoch, loss=math.nan if config["x"] < 0.3 and epoch == 2 else config["x"] + 1.0 / epoch)

    tuned = tl.tune(objective, SPACE, metric="loss", mode="min", fidelity=EPOCHS, searcher="random", n_trials=40,
                    seed=1, progress=False)
    diverged = [t for t in tuned.trials if any(math.isnan(r.metrics["loss"]) for r in t.reports)]
    assert diverged and all(t.state is TrialState.FAILED and "loss=nan at step 2" in t.error for t in diverged)
    assert {t.number for t in diverged} == {t.number for t in tuned.trials if t.config["x"] < 0.3
                                            and t.last_step is not None and t.last_step >= 2}
    assert tuned.best.config["x"] >= 0.3


def test_a_report_past_the_runs_budget_is_refused_saying_what_the_budget_is():
    """A rung is placed by step: a report past the budget would be judged at a rung it never ran for."""
    study = _study()  # ASHA: a new trial runs to the lowest rung, epoch 1 of 9
    trial = study.ask()
    assert trial.budget == 1
    with pytest.raises(tl.ConfigError, match=r"step 3 is past this run's budget 1; .*stop at trial.budget"):
        trial.report(3, loss=0.5)
    trial.report(1, loss=0.5)
    assert [r.step for r in study.get_trial(trial.number).reports] == [1]  # the refused report left no trace

    def overshoots(config, trial):
        for epoch in range(1, 12):  # never reads trial.budget
            trial.report(epoch, loss=loss_at(config, epoch))

    tuned = tl.tune(overshoots, SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="fifo", n_trials=2,
                    seed=0, progress=False, max_failures=None)
    assert [t.state for t in tuned.trials] == [TrialState.FAILED] * 2
    assert all("step 10 is past this run's budget 9" in t.error for t in tuned.trials)
    assert all(t.last_step == 9 for t in tuned.trials)


def test_a_run_that_ends_below_its_budget_unasked_is_recorded_at_its_budget_and_says_so():
    study = _study(scheduler="fifo")  # the full budget: 9 epochs
    trial = study.ask()
    trial.report(1, loss=0.8)
    trial.report(2, loss=0.7)
    with pytest.warns(UserWarning, match=r"ended at step 2 of its budget 9 although the scheduler let it go on"):
        ended = study.tell(trial, 0.7)
    assert ended.state is TrialState.COMPLETED and ended.reports[-1].step == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a result told without reports (a fit at trial.budget) is no misuse
        assert study.tell(study.ask(), 0.6).reports[-1].step == 9

    def quits_early(config, trial):
        for epoch in (1, 2):
            trial.report(epoch, loss=loss_at(config, epoch))
        return loss_at(config, 2)

    with pytest.warns(UserWarning, match=r"ended at step 2 of its budget 9"):
        tl.tune(quits_early, SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="fifo", n_trials=1,
                progress=False)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_value_told_after_the_run_diverged_fails_it_naming_the_report(bad):
    study = _study()
    trial = study.ask()
    assert trial.report(1, loss=bad) is Decision.STOP  # inf ranks nowhere either
    why = f"reported loss={bad} at step 1 (the run diverged)"
    with pytest.warns(UserWarning, match=re.escape(why)):
        ended = study.tell(trial, bad)
    assert ended.state is TrialState.FAILED and ended.error == why
    with pytest.warns(UserWarning, match=re.escape("told nan for 'loss' (the run diverged)")):
        assert study.tell(study.ask(), math.nan).error == "told nan for 'loss' (the run diverged)"


def test_one_number_told_to_a_study_of_two_metrics_says_a_dict_of_both_is_needed():
    study = tl.create_study(SPACE, metric=["loss", "acc"], mode=["min", "max"])
    trial = study.ask()
    with pytest.raises(tl.ConfigError, match=r"one number, but the study has 2 metrics \(loss, acc\); give a dict"):
        study.tell(trial, 0.5)
    for ordered in ([0.5, 0.9], (0.5, 0.9)):  # was also "one number"
        with pytest.raises(tl.ConfigError, match=r"the result is (list|tuple) .*\(a list or tuple is not read by position"):
            study.tell(trial, ordered)
    assert study.tell(trial, {"loss": 0.5, "acc": 0.9}).state is TrialState.COMPLETED


def test_a_value_told_for_a_paused_trial_gives_way_to_what_it_reported_at_its_rung():
    """The rung ranked it on its report while `show` and `.value` said the told value."""
    study = _study()
    trial = study.ask()
    assert trial.report(1, loss=1.0) is Decision.PAUSE
    with pytest.warns(UserWarning, match=r"told loss=0.05, but its scheduler answered PAUSE at step 1, where it "
                                         r"reported 1; it is recorded paused with that value"):
        paused = study.tell(trial, 0.05)
    assert paused.state is TrialState.PAUSED and paused.value == 1.0


def test_of_two_processes_given_one_configuration_at_the_same_moment_the_later_gives_way(tmp_path):
    """Both proposed from the same view of the study: a shared grid ran more trials than it has points."""
    from tunelab import telling

    url = f"sqlite:///{tmp_path / 'g.db'}"
    space = {"x": tl.choice([1, 2, 3])}
    first_process = tl.create_study(space, metric="loss", mode="min", searcher="grid", storage=url, name="g")
    other_process = tl.load_study("g", storage=url)
    stale = other_process.history()
    assert stale.trials == []  # what the other process read before the first one's trial existed
    first = first_process.ask()
    twin = other_process.storage.create_trial(other_process.record.id, first.config, other_process._seed_for,
                                              TrialState.RUNNING, owner=other_process.owner)
    assert telling.cancel_if_twin(other_process, twin, stale)
    cancelled = other_process.get_trial(twin.number)
    assert cancelled.state is TrialState.FAILED and not cancelled.failed_itself
    assert other_process.counted_trials() == 1  # its place in n_trials came back
    assert other_process.ask().config != first.config
    assert not telling.cancel_if_twin(first_process, first_process.get_trial(first.number), stale)


def test_a_trial_of_another_study_is_refused_even_where_its_id_is_taken_here(tmp_path):
    space = {"x": tl.uniform(0, 1)}
    for urls in (("memory", "memory"), (f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")):
        a = tl.create_study(space, metric="loss", mode="min", name="a", storage=urls[0], seed=0)
        b = tl.create_study(space, metric="loss", mode="min", name="b", storage=urls[1], seed=1)
        from_a, from_b = a.ask(), b.ask()
        assert from_a.id == from_b.id  # ids are only unique within one database
        with pytest.raises(tl.ConfigError, match="trial 0 .of study 'a'. is not a trial of study 'b'"):
            b.tell(from_a, 0.123)
        with pytest.raises(tl.ConfigError, match="is not a trial of study 'b'"):
            b.tell(a.get_trial(0), 0.123)  # a stored record of a's
        assert b.get_trial(0).state is TrialState.RUNNING and a.get_trial(0).state is TrialState.RUNNING
        assert b.tell(from_b, 0.5).value == 0.5 and a.tell(from_a, 0.25).value == 0.25


def test_ask_with_a_configuration_runs_that_one_as_a_new_trial_of_the_study():
    """``study.ask({...})`` was taken for ``wait`` (a dict is true) and ran the searcher's choice."""
    study = _study()
    config = {name: study.space.params[name].from_unit(0.25) for name in study.space.params}
    trial = study.ask(config)
    assert trial.config == config and trial.budget == 1.0  # a new trial's budget: ASHA's lowest rung
    assert trial.report(trial.budget, loss=0.5) is Decision.PAUSE
    assert study.tell(trial).state is TrialState.PAUSED
    assert study.trials[0].config == config
    plain = tl.create_study(SPACE, metric="loss", mode="min", n_trials=1)
    plain.ask()
    with pytest.raises(tl.TrialLimitReached, match="n_trials=1"):  # it spends one of them
        plain.ask({"x": 0.5})


@pytest.mark.parametrize("bad, said", [(False, r"got False \(to not wait at the trial limit: study.ask\(wait=False\)\)"),
                                       ([0.5], r"got \[0.5\]$")])
def test_ask_refuses_what_is_no_configuration_saying_what_it_takes(bad, said):
    study = _study()
    with pytest.raises(tl.ConfigError, match=r"ask: config must be a dict of parameter values, e.g. .*" + said):
        study.ask(bad)
    with pytest.raises(tl.ConfigError, match="ask: wait must be True or False; got 'no'"):
        study.ask(wait="no")
    assert study.trials == []


@pytest.mark.parametrize("value, said", [(None, "tell: told None and never reported 'loss'"),
                                         ("0.5", "tell: tell takes a number or a dict of metrics; got str '0.5'")])
def test_a_value_tell_cannot_take_is_said_in_tells_words(value, said):
    """It spoke of what the objective returned, in a loop with no objective."""
    study = tl.create_study(SPACE, metric="loss", mode="min")
    with pytest.raises(tl.ConfigError, match=re.escape(said)):
        study.tell(study.ask(), value)
