"""Where trials run: local worker processes survive whatever an objective does."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.trial import TrialState

from objectives import SPACE, crash_hard, hang_on_first, quadratic, record_pid, report_slowly


def run(objective, **kwargs):
    options = dict(metric="loss", mode="min", n_trials=6, seed=0, progress=False, workers=2)
    options.update(kwargs)
    return tl.tune(objective, SPACE, **options)


def test_parallel_workers_record_every_trial_exactly_once(tmp_path):
    study = run(quadratic, n_trials=20, storage=f"sqlite:///{tmp_path / 'p.db'}", name="par")
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(20))
    assert all(t.state is TrialState.COMPLETED and len(t.reports) == 3 for t in study.trials)
    reloaded = tl.load_study("par", storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert [t.value for t in reloaded.trials] == [t.value for t in study.trials]


def test_trials_really_run_in_other_processes():
    import os

    study = run(record_pid, n_trials=6)
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_a_worker_that_exits_or_segfaults_fails_only_its_trial():
    study = run(crash_hard, n_trials=6)
    states = {t.number: t for t in study.trials}
    assert "exited with code 7" in states[1].error
    assert "SIGSEGV" in states[2].error
    assert all(states[n].state is TrialState.COMPLETED for n in (0, 3, 4, 5))


def test_trial_timeout_kills_a_hanging_worker_and_the_study_goes_on():
    study = run(hang_on_first, n_trials=4, trial_timeout=2)
    first = study.trials[0]
    assert first.state is TrialState.FAILED and "trial_timeout=2s" in first.error
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETED] * 3


def test_inline_trial_timeout_is_enforced_at_reports():
    study = run(report_slowly, n_trials=2, workers=1, trial_timeout=0.3)
    assert study.trials[0].state is TrialState.FAILED and "trial_timeout" in study.trials[0].error
    assert study.trials[1].state is TrialState.COMPLETED


def test_unpicklable_objective_gets_clear_advice():
    with pytest.raises(tl.ConfigError, match="must be picklable.*module level, or use workers=1"):
        run(lambda config, trial: 1.0, n_trials=2)


def test_inline_executor_refuses_several_workers():
    with pytest.raises(tl.ConfigError, match="one trial at a time"):
        run(quadratic, executor="inline", workers=2)
