import pytest

import tunelab as tl
from searcher_checks import (check_beats_random, check_failures, check_mixed, check_pending,
                             check_reproducible, check_respects_space)


def test_anneal_beats_random_on_a_quadratic():
    check_beats_random("anneal", n_trials=60, seeds=range(6))


def test_anneal_respects_the_space():
    check_respects_space("anneal", n_trials=40)


def test_anneal_is_reproducible():
    check_reproducible("anneal", n_trials=30)


def test_anneal_pending_trials_are_distinct():
    check_pending("anneal", n_told=20)


def test_anneal_handles_failures():
    check_failures("anneal", n_trials=50)


def test_anneal_conditional_and_categorical():
    check_mixed("anneal", n_trials=60, seeds=range(4))


def test_anneal_rejects_bad_options():
    with pytest.raises(tl.ConfigError):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="m", mode="min", searcher="anneal",
                        searcher_options={"cooling": 1.5})
