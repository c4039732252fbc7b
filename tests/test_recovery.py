"""Trials cut short go on from their checkpoints: a worker killed mid-trial, a run stopped by
Ctrl-C or a timeout. The trial keeps its number, budget, reports and place in the rungs, and is
claimed first by the next start; one that had already reported at its budget is settled as its
scheduler answers, and a trial that cannot go on gives its checkpoint back."""

from __future__ import annotations

import os
import random

import pytest

import tunelab as tl
from tunelab import checkpoints
from tunelab.recovery import INTERRUPTED, stop_trial
from tunelab.storage import open_storage
from tunelab.storage.base import RETRY_OF
from tunelab.trial import TrialState

from faults import dead_owner, kill_busy_workers, start_worker
from objectives import SPACE

DEADLINE = 120.0
EPOCHS = tl.fidelity("epochs", min=1, max=9, resumable=True)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def steps(trial) -> list[float]:
    return [r.step for r in trial.reports]


def test_a_trial_whose_worker_was_killed_goes_on_from_its_checkpoint(url, tmp_path):
    """kill -9 of the worker after epoch 3 of trial 0; the next worker runs epochs 4-6 of the
    same trial, not a new trial from epoch 1."""
    tl.create_study(SPACE, metric="loss", mode="min", name="killed", storage=url, seed=0, n_trials=3,
                    artifact_dir=tmp_path / "artifacts")  # (a server database's default is the working folder)
    first = start_worker(url, "killed", objective="objectives:dies_once_at_epoch_3")
    first.communicate(timeout=DEADLINE)
    assert first.returncode == -9
    second = start_worker(url, "killed", objective="objectives:dies_once_at_epoch_3")
    _, err = second.communicate(timeout=DEADLINE)
    assert second.returncode == 0, err
    assert "trial 0 was abandoned by a dead process; it goes on from its checkpoint" in err
    study = tl.load_study("killed", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETED] * 3  # no failed trial, no retry
    trial = study.trials[0]
    assert steps(trial) == [1, 2, 3, 4, 5, 6]
    assert trial.value == pytest.approx((trial.config["x"] - 1.0) ** 2 + 1.0 / 6)
    assert trial.system_attrs["attempt"] == 2 and RETRY_OF not in trial.system_attrs
    [interruption] = trial.system_attrs[INTERRUPTED]
    assert interruption["step"] == 3 and interruption["reason"].endswith("is gone")
    assert study.counted_trials() == 3


def test_a_trial_whose_worker_process_died_under_the_tuner_goes_on_from_its_checkpoint(tmp_path):
    """The tuner lives, one of its worker processes is killed (an out-of-memory kill, say): the
    trial goes on from its checkpoint in a fresh worker instead of failing."""
    from objectives import dies_once_at_epoch_3

    study = tl.tune(dies_once_at_epoch_3, SPACE, metric="loss", mode="min", n_trials=3, workers=2, seed=0,
                    storage=f"sqlite:///{tmp_path / 'w.db'}", name="w", progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETED] * 3
    trial = study.trials[0]
    assert steps(trial) == [1, 2, 3, 4, 5, 6] and trial.system_attrs["attempt"] == 2
    assert trial.system_attrs[INTERRUPTED][0]["reason"] == "worker process died (SIGKILL) while running the trial"


def test_random_kill_9_of_asha_workers_loses_no_epoch_and_reports_none_twice(url, tmp_path):
    """Four kill -9 at random moments of `tunelab worker` processes running an ASHA study whose
    trials pause at rungs and go on from checkpoints: the budget is spent exactly, every trial
    ends, and no trial reports a step twice or goes back in its steps."""
    tl.create_study(SPACE, metric="loss", mode="min", name="asha", storage=url, seed=0, n_trials=16,
                    scheduler="asha", fidelity=EPOCHS, artifact_dir=tmp_path / "artifacts")
    store, rng = open_storage(url), random.Random(3)
    study_id = store.get_study("asha").id
    start = lambda *extra: start_worker(url, "asha", "--max-retries", "10", *extra,  # noqa: E731
                                        objective="objectives:epochs_with_checkpoints")
    procs = [start(), start("--workers", "2")]
    assert kill_busy_workers(procs, store, study_id, 4, rng, start) >= 1
    for proc in procs:
        proc.communicate(timeout=DEADLINE)
    final = start()
    _, err = final.communicate(timeout=DEADLINE)
    assert final.returncode == 0, err
    trials = tl.load_study("asha", storage=url).trials
    assert store.counted_trials(study_id) == 16 and all(t.state.finished for t in trials)
    assert any(t.state is TrialState.COMPLETED for t in trials)
    for trial in trials:
        assert steps(trial) == sorted(set(steps(trial))), (trial.number, steps(trial))
    store.close()


def test_a_run_stopped_by_ctrl_c_goes_on_from_the_checkpoint_of_its_running_trial(tmp_path, recwarn):
    """Ctrl-C two epochs after an ASHA trial was resumed from its rung: it waits with its
    reports and checkpoint; the next tl.tune goes on with it before anything else, and its steps
    continue without a repeat (no warning about a trial starting over)."""
    url, armed = f"sqlite:///{tmp_path / 'c.db'}", [True]

    def train(config, trial):
        start = trial.load_checkpoint() or 0
        loss = None
        for epoch in range(start + 1, int(trial.budget) + 1):
            loss = config["x"] ** 2 + 1.0 / epoch
            trial.save_checkpoint(epoch)
            trial.report(epoch, loss=loss)
            if armed[0] and start > 0 and epoch == start + 2:
                armed[0] = False
                raise KeyboardInterrupt
        return loss

    options = dict(metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", n_trials=12, storage=url,
                   name="c", seed=0, executor="inline", progress=False)
    with pytest.raises(KeyboardInterrupt):
        tl.tune(train, SPACE, **options)
    study = tl.load_study("c", storage=url)
    [waiting] = [t for t in study.trials if t.state is TrialState.WAITING]
    before = steps(waiting)
    assert before == list(range(1, len(before) + 1)) and waiting.budget > before[-1]
    assert waiting.system_attrs[INTERRUPTED][0]["reason"] == "stopped: interrupted"
    assert checkpoints.load(study.checkpoint_dir(waiting)) == before[-1]
    assert not [t for t in study.trials if t.state is TrialState.FAILED]
    counted = study.counted_trials()

    study = tl.tune(train, SPACE, **options)
    trial = study.get_trial(waiting.number)
    assert trial.state in (TrialState.COMPLETED, TrialState.PRUNED)  # ran on to its budget, then decided
    assert steps(trial)[:len(before)] == before and steps(trial) == list(range(1, len(steps(trial)) + 1))
    assert steps(trial)[-1] >= waiting.budget
    assert counted <= study.counted_trials() == 12
    assert not [t for t in study.trials if t.state in (TrialState.FAILED, TrialState.WAITING)]
    assert not [w for w in recwarn if "starting over" in str(w.message)]


def test_a_trial_stopped_after_reporting_at_its_budget_is_settled_not_run_again():
    """Only the scheduler's answer to its last report was lost: a rung pauses it (with the value
    there), a full run completes; nothing is queued to run again."""
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", seed=0)
    trial = study.ask()
    assert trial.budget < EPOCHS.max
    for epoch in range(1, int(trial.budget) + 1):
        trial.report(epoch, loss=1.0 / epoch)
    stopped = stop_trial(study, trial.id, "timeout")
    assert (stopped.state, stopped.value) == (TrialState.PAUSED, pytest.approx(1.0 / trial.budget))

    plain = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="fifo", seed=0)
    full = plain.ask()
    for epoch in range(1, 10):
        full.report(epoch, loss=2.0 / epoch)
    assert (stop_trial(plain, full.id, "timeout").state, plain.best.value) == (TrialState.COMPLETED, 2.0 / 9)


def test_a_continued_trial_whose_report_at_its_budget_was_lost_is_judged_at_its_rung(tmp_path):
    """Its process died between saving the checkpoint of its last epoch and reporting it: it
    goes on from the checkpoint of the epoch before, trains the last epoch again and reports its
    true value, so that the rung ranks it on what it reached (not on the epoch before's value,
    and not as completed below the full budget)."""
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", seed=0,
                            storage=f"sqlite:///{tmp_path / 'lost.db'}", name="lost")
    store = study.storage
    dead = store.create_trial(study.record.id, {"x": 0.5, "kind": "a", "n": 2}, study._seed_for, owner=dead_owner(),
                              budget=3.0)
    for epoch in (1, 2):
        store.add_report(study.record.id, dead.id, epoch, {"loss": 1.0 / epoch}, 0.0)
    for epoch, reported in ((1, None), (2, 1.0), (3, 2.0)):  # saved before each report, as the loop below does
        checkpoints.save(study.checkpoint_dir(dead), epoch, reported)  # epoch 3's report was lost

    def train(config, trial):
        start = trial.load_checkpoint() or 0
        loss = None
        for epoch in range(start + 1, int(trial.budget) + 1):
            loss = config["x"] ** 2 + 1.0 / epoch
            trial.save_checkpoint(epoch)
            trial.report(epoch, loss=loss)
        return loss

    study = tl.tune(train, SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", n_trials=6,
                    storage=store, name="lost", executor="inline", progress=False)
    trial = study.get_trial(dead.number)
    assert steps(trial)[:3] == [1, 2, 3] and trial.reports[2].metrics == {"loss": 0.25 + 1.0 / 3}
    assert trial.state is not TrialState.FAILED
    assert trial.state is not TrialState.COMPLETED or trial.budget == EPOCHS.max


def test_a_checkpoint_that_may_be_ahead_of_the_stored_reports_is_rolled_back_to_one_they_cover(tmp_path):
    """Each save notes the last step reported and keeps the checkpoint saved before that report;
    a trial interrupted after saving epoch n but before reporting it goes on from epoch n - 1."""
    folder = str(tmp_path / "checkpoint")
    checkpoints.save(folder, {"epoch": 1}, None)
    checkpoints.save(folder, {"epoch": 2}, 1.0)
    checkpoints.save(folder, {"epoch": 2, "again": True}, 1.0)  # saved twice before one report: replaced
    checkpoints.roll_back(folder, 2.0)  # epoch 2 was reported: nothing to undo
    assert checkpoints.load(folder) == {"epoch": 2, "again": True}
    checkpoints.save(folder, b"epoch 3", 2.0)
    checkpoints.roll_back(folder, 2.0)  # killed before reporting epoch 3
    assert checkpoints.load(folder) == {"epoch": 2, "again": True}
    checkpoints.roll_back(folder, 1.0)  # and before reporting epoch 2: back to the start
    assert checkpoints.load(folder) is None and not checkpoints.exists(folder)
    checkpoints.save(folder, {"epoch": 1}, None)
    checkpoints.roll_back(folder, None)  # killed before its first report: nothing it can go on from
    assert checkpoints.load(folder) is None


def test_a_tuner_killed_between_saving_and_reporting_an_epoch_loses_nothing_it_reported(tmp_path):
    """kill -9 of the tuner itself right after a checkpoint is saved and before its report: the
    next start runs that epoch again and reports its true value, and the steps stay in order."""
    import subprocess
    import sys

    from faults import ENV

    script = tmp_path / "killed.py"
    script.write_text(f"""
import os, signal, sys
import tunelab as tl
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from mf_objectives import SPACE

def objective(config, trial):
    state = trial.load_checkpoint() or {{"epoch": 0}}
    loss = None
    for epoch in range(state["epoch"] + 1, int(trial.budget) + 1):
        loss = config["x"] + 1.0 / epoch
        trial.save_checkpoint({{"epoch": epoch}})
        if trial.number == 2 and epoch == 3 and not os.path.exists(sys.argv[1]):
            open(sys.argv[1], "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        trial.report(epoch, loss=loss)
    return loss

tl.tune(objective, SPACE, metric="loss", mode="min", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True),
        scheduler="asha", searcher="random", n_trials=12, seed=0, storage="sqlite:///{tmp_path / 'k.db'}",
        name="k", executor="inline", progress=False)
""")
    flag = str(tmp_path / "killed-once")
    runs = [subprocess.run([sys.executable, str(script), flag], env=ENV, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert runs[0].returncode == -9 and runs[1].returncode == 0, runs[1].stderr
    study = tl.load_study("k", storage=f"sqlite:///{tmp_path / 'k.db'}")
    trial = study.get_trial(2)
    assert trial.system_attrs[INTERRUPTED][0]["step"] == 2.0
    assert steps(trial)[:3] == [1, 2, 3]
    for report in trial.reports:  # every stored value is the one of its own epoch
        assert report.metrics["loss"] == pytest.approx(trial.config["x"] + 1.0 / report.step)


def test_a_dead_trial_that_had_reported_at_its_budget_is_settled_by_whoever_claims_it(tmp_path):
    """Only the answer to its last report died with its process: the process that claims it
    settles it (a rung pauses it) without running the objective, so no report is made twice."""
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", seed=0,
                            storage=f"sqlite:///{tmp_path / 'settle.db'}", name="settle")
    store = study.storage
    dead = store.create_trial(study.record.id, {"x": 0.5, "kind": "a", "n": 2}, study._seed_for, owner=dead_owner(),
                              budget=3.0, system_attrs={"lowest_rung": 3.0})
    for epoch in (1, 2, 3):
        store.add_report(study.record.id, dead.id, epoch, {"loss": 1.0 / epoch}, 0.0)
    checkpoints.save(study.checkpoint_dir(dead), 3)
    ran = []

    def train(config, trial):
        ran.append((trial.number, trial.budget))
        return config["x"] ** 2

    study = tl.tune(train, SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", n_trials=2,
                    storage=store, name="settle", executor="inline", progress=False)
    trial = study.get_trial(dead.number)
    assert (dead.number, 3.0) not in ran  # not run at 3 again
    assert steps(trial) in ([1, 2, 3], [1, 2, 3, 9])  # nothing reported twice (a promoted run's result is at 9)
    assert trial.system_attrs[INTERRUPTED][0]["step"] == 3 and trial.system_attrs["attempt"] == 2
    assert trial.state is TrialState.PAUSED or (dead.number, EPOCHS.max) in ran  # paused at 3, maybe promoted since


def test_ask_takes_over_a_trial_whose_process_died_from_its_checkpoint(tmp_path):
    """An ask/tell loop shared by processes: ask() looks for trials of dead processes (every
    2 s at most) and hands out the same trial, at its budget, to go on from its checkpoint."""
    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", seed=0,
                            storage=f"sqlite:///{tmp_path / 'ask.db'}", name="ask")
    dead = study.storage.create_trial(study.record.id, {"x": 0.5, "kind": "a", "n": 2}, study._seed_for,
                                      owner=dead_owner(), budget=9.0)
    study.storage.add_report(study.record.id, dead.id, 1, {"loss": 1.0}, 0.0)
    checkpoints.save(study.checkpoint_dir(dead), 1)
    trial = study.ask()
    assert (trial.id, trial.budget, trial.load_checkpoint()) == (dead.id, 9.0, 1)
    assert study.ask().id != dead.id


@pytest.mark.parametrize("saved", [True, False])  # goes on from its checkpoint, or fails and is retried
def test_a_trial_of_a_dead_process_ran_until_its_last_sign_of_life_not_until_it_was_found(url, saved):
    import time

    study = tl.create_study(SPACE, metric="loss", mode="min", fidelity=EPOCHS, scheduler="asha", seed=0,
                            storage=url, name="gone")
    dead = study.storage.create_trial(study.record.id, {"x": 0.5, "kind": "a", "n": 2}, study._seed_for,
                                      owner=dead_owner(), budget=9.0)
    study.storage.add_report(study.record.id, dead.id, 1, {"loss": 1.0}, dead.running_since + 0.3)  # its last word
    if saved:
        checkpoints.save(study.checkpoint_dir(dead), 1)
    time.sleep(1.5)  # dead all along, until a tuner comes back
    assert study.recover_abandoned()
    trial = study.get_trial(dead.number)
    assert trial.state is (TrialState.WAITING if saved else TrialState.FAILED)
    assert trial.duration == pytest.approx(0.3, abs=0.05)


def test_trials_that_cannot_go_on_give_their_checkpoints_back():
    """A stale trial of another machine may still be running: it is retried from scratch and its
    checkpoint deleted; so is one out of retries. One whose process is gone goes on."""
    study = tl.create_study(SPACE, metric="loss", mode="min", seed=0)
    store, sid = study.storage, study.record.id
    remote = store.create_trial(sid, {"x": 0.1, "kind": "a", "n": 1}, study._seed_for, owner="elsewhere:12:34")
    store.heartbeat([remote.id], at=1.0)
    gone = store.create_trial(sid, {"x": 0.2, "kind": "a", "n": 1}, study._seed_for, owner=dead_owner())
    for trial in (remote, gone):
        checkpoints.save(study.checkpoint_dir(trial), {"epoch": 2})
    requeued = study.recover_abandoned(stale_after=120.0)
    assert [(t.id, t.state) for t in requeued if RETRY_OF not in t.system_attrs] == [(gone.id, TrialState.WAITING)]
    assert [t.system_attrs[RETRY_OF] for t in requeued if t.id != gone.id] == [remote.number]  # a new trial
    assert not os.path.exists(study.checkpoint_dir(remote))
    assert checkpoints.load(study.checkpoint_dir(gone)) == {"epoch": 2}
    claimed = store.claim_waiting(sid, dead_owner())  # the same trial, run again by a process that dies
    assert claimed.id == gone.id
    assert study.recover_abandoned(max_retries=1) == []  # its second death: out of retries
    assert study.get_trial(gone.number).state is TrialState.FAILED
    assert not os.path.exists(study.checkpoint_dir(gone))


def test_a_new_trial_never_goes_on_from_a_checkpoint_it_did_not_save(tmp_path):
    """Deleting a study deletes its files; a study of the same name in another database beside
    it (or one deleted without tunelab) takes a folder of its own; a checkpoint found in a new
    trial's folder all the same is removed with a warning, not loaded."""
    seen = []

    def train(config, trial):
        seen.append(trial.load_checkpoint())
        trial.save_checkpoint(trial.number + 10)
        return config["x"]

    def tune(db):
        return tl.tune(train, SPACE, metric="loss", mode="min", n_trials=2, storage=f"sqlite:///{tmp_path / db}",
                       name="s", progress=False)

    root = tmp_path / "tunelab-artifacts"
    tl.delete_study("s", storage=tune("a.db").storage)
    assert not (root / "s").exists()
    first = tune("a.db")  # the name's folder is free again
    other = tune("b.db")  # the same study name in another database in the same folder
    assert (first.folder, other.folder) == (root / "s", root / "s-2")
    assert [checkpoints.load(first.checkpoint_dir(t)) for t in first.trials] == [10, 11]  # untouched
    other.storage.delete_study("s")  # deleted without tunelab: its files stay, and are not reused
    assert tune("b.db").folder == root / "s-3"
    assert seen == [None] * 8

    study = tl.create_study(SPACE, metric="loss", mode="min", storage=f"sqlite:///{tmp_path / 'c.db'}", name="c")
    checkpoints.save(str(study.trial_dir(0) / "checkpoint"), "someone else's")  # e.g. copied in by hand
    with pytest.warns(UserWarning, match=r"new trial 0 of study 'c' found a checkpoint it did not save"):
        tl.tune(train, SPACE, metric="loss", mode="min", n_trials=1, storage=study.storage, name="c",
                progress=False)
    assert seen[-1] is None


def test_tune_max_retries_lets_a_trial_survive_more_deaths_of_its_process(tmp_path):
    """A preemptible machine kills the tuner more than once: with max_retries=2 the trial goes on
    from its checkpoint after the second death as after the first, and ends completed."""
    import subprocess
    import sys

    from faults import ENV

    script = tmp_path / "preempted.py"
    script.write_text(f"""
import os, signal, sys
import tunelab as tl
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from mf_objectives import SPACE

def objective(config, trial):
    state = trial.load_checkpoint() or {{"epoch": 0}}
    loss = None
    for epoch in range(state["epoch"] + 1, int(trial.budget) + 1):
        loss = config["x"] + 1.0 / epoch
        trial.report(epoch, loss=loss)
        trial.save_checkpoint({{"epoch": epoch}})
        if trial.number == 0 and epoch == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)
    return loss

tl.tune(objective, SPACE, metric="loss", mode="min", fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True),
        scheduler="fifo", searcher="random", n_trials=2, seed=0, max_retries=2,
        storage="sqlite:///{tmp_path / 'p.db'}", name="p", executor="inline", progress=False)
""")
    codes = [subprocess.run([sys.executable, str(script), kill_at], env=ENV, capture_output=True, text=True,
                            timeout=120).returncode for kill_at in ("2", "5", "0")]
    assert codes == [-9, -9, 0]
    study = tl.load_study("p", storage=f"sqlite:///{tmp_path / 'p.db'}")
    trial = study.get_trial(0)
    assert trial.state is TrialState.COMPLETED and steps(trial) == list(range(1, 10))
    assert [i["step"] for i in trial.system_attrs[INTERRUPTED]] == [2, 5] and len(study.trials) == 2


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_tune_rejects_a_max_retries_that_is_not_a_whole_number(bad):
    with pytest.raises(tl.ConfigError, match="max_retries must be a whole number >= 0"):
        tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=1, max_retries=bad,
                progress=False)


def test_a_tuner_that_reaches_n_trials_first_runs_a_trial_another_process_left_running_as_it_died(tmp_path):
    """Two processes share a study; one dies mid-trial while the other runs its last one. The
    survivor looks for dead processes' trials before it ends: the study ends with n_trials
    completed, none left RUNNING."""
    storage = f"sqlite:///{tmp_path / 'survivor.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, storage=storage, name="s")

    def objective(config, trial):
        if trial.number == 1:  # meanwhile, the other process takes a trial and dies running it
            study.storage.create_trial(study.record.id, {"x": 0.5}, study._seed_for, owner=dead_owner())
        return config["x"]

    done = tl.tune(objective, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=3, seed=0,
                   storage=storage, name="s", progress=False)
    states = [t.state for t in done.trials]
    assert TrialState.RUNNING not in states and states.count(TrialState.COMPLETED) == 3
