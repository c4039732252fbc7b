import pytest

import tunelab as tl
from searcher_checks import (check_beats_random, check_failures, check_mixed, check_pending,
                             check_reproducible, check_respects_space)


def test_rf_beats_random_on_a_quadratic():
    # Expected improvement under a forest now and then keeps refining one wall of the box (3 of
    # 20 seeds here): checked on 20 seeds, it must win on 14.
    check_beats_random("smac", n_trials=30, seeds=range(20), min_wins=14)


def test_rf_respects_the_space():
    check_respects_space("rf", n_trials=25)


def test_rf_is_reproducible():
    check_reproducible("rf", n_trials=20)


def test_rf_pending_trials_are_distinct():
    check_pending("rf")


def test_rf_handles_failures():
    check_failures("rf", n_trials=24)


def test_rf_conditional_and_categorical():
    check_mixed("rf", n_trials=40, seeds=range(12))  # at 25 trials it is barely ahead of random


def test_rf_rejects_bad_options():
    with pytest.raises(tl.ConfigError):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="m", mode="min", searcher="rf",
                        searcher_options={"n_trees": 0})

