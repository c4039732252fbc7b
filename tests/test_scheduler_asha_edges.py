"""ASHA at the edges of its options: a trial limit too small for any rung below the full budget."""

from __future__ import annotations

import warnings

import pytest

import tunelab as tl
from tunelab.errors import SetupWarning
from tunelab.schedulers.asha import ASHAScheduler
from tunelab.trial import TrialState

from mf_objectives import EPOCHS, SPACE, by_epochs


def test_a_trial_limit_that_leaves_only_the_full_budget_says_that_nothing_is_cut_short():
    """Two trials cannot fill a rung of three: the ladder keeps only the full budget and both
    trials run to it. Without a word, asha looked as if it did not work (a script that ignored
    its budget seemed to be the cause)."""
    with pytest.warns(SetupWarning, match=r"asha: 2 trials in all are too few for its rungs \(1, 3, 9\).*every trial "
                                          r"runs to the full budget 9 and nothing is cut short; with n_trials of 3"):
        study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                        n_trials=2, seed=0, progress=False)
    assert [(t.state, t.last_step) for t in study.trials] == [(TrialState.COMPLETED, 9.0)] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", SetupWarning)  # three trials keep the rung at 3 epochs: nothing to say
        study = tl.tune(by_epochs, SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                        n_trials=3, seed=0, progress=False)
    assert sorted(t.last_step for t in study.trials) == [3.0, 3.0, 9.0]


@pytest.mark.parametrize("n_trials, warned", [(5, True), (6, False), (None, False)])
def test_with_brackets_the_warning_counts_the_trials_each_bracket_gets(n_trials, warned):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler = ASHAScheduler("loss", "min", min_budget=1, max_budget=27, brackets=3)
        scheduler.plan(n_trials)
        scheduler.plan(n_trials)  # planned again at each ask: said once
    said = [str(w.message) for w in caught if issubclass(w.category, SetupWarning)]
    assert len(said) == int(warned)
    if warned:
        assert "eta=3 trials of a bracket (3 share the trials)" in said[0] and "n_trials of 6 or more" in said[0]
