import numpy as np
import pytest

import tunelab as tl
from searcher_checks import (check_beats_random, check_failures, check_mixed, check_pending,
                             check_reproducible, check_respects_space)


def test_genetic_beats_random_on_a_quadratic():
    check_beats_random("genetic", n_trials=60, seeds=range(6))


def test_genetic_respects_the_space():
    check_respects_space("genetic", n_trials=40)


def test_genetic_is_reproducible():
    check_reproducible("genetic", n_trials=30)


def test_genetic_pending_trials_are_distinct():
    check_pending("genetic", n_told=20)


def test_genetic_handles_failures():
    check_failures("genetic", n_trials=50)


def test_genetic_conditional_and_categorical():
    check_mixed("genetic", n_trials=60, seeds=range(4))


def test_nsga_rank_puts_the_pareto_front_first_and_its_ends_before_its_middle():
    from tunelab.searchers.genetic import nsga_rank
    scores = np.array([[1.0, 5.0], [2.0, 2.0], [5.0, 1.0], [3.0, 3.0], [4.0, 4.5], [np.inf, np.inf], [1.5, 3.5]])
    rank = nsga_rank(scores)
    front = {0, 1, 2, 6}
    assert max(rank[i] for i in front) < min(rank[i] for i in (3, 4, 5))
    assert rank[3] < rank[4] < rank[5]
    assert max(rank[0], rank[2]) < min(rank[1], rank[6])


def test_genetic_multi_objective_spreads_along_the_front():
    space = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}
    study = tl.create_study(space, metric=["f1", "f2"], mode=["min", "min"], seed=0, searcher="genetic",
                            searcher_options={"population": 10})
    random = tl.create_study(space, metric=["f1", "f2"], mode=["min", "min"], seed=0, searcher="random")
    for s in (study, random):
        for _ in range(60):
            t = s.ask()
            x, y = t.config["x"], t.config["y"]
            s.tell(t, {"f1": x, "f2": 1 - x ** 0.5 + 2 * y})  # front: y = 0
    front = study.best_trials
    assert len(front) >= 5
    assert np.mean([t.config["y"] for t in front]) < np.mean([t.config["y"] for t in random.best_trials])


def test_genetic_rejects_bad_options():
    with pytest.raises(tl.ConfigError):
        tl.create_study({"x": tl.uniform(0, 1)}, metric="m", mode="min", searcher="genetic",
                        searcher_options={"population": 1})


def test_nsga_rank_peels_only_the_fronts_the_population_needs():
    """Every front was peeled, each row checked against every other (an n-by-n table): on a
    two-metric study of 6,000 trials a proposal took 12 s and hundreds of MB. The population's
    rows rank as they do in the full ranking; the rest rank with the failures."""
    from tunelab.searchers.genetic import nsga_rank
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, (60, 2)).astype(float)  # ties and repeated rows too
    scores[rng.random(scores.shape) < 0.1] = np.inf
    full = nsga_rank(scores)
    for enough in (1, 5, 20, 100):
        rank = nsga_rank(scores, enough=enough)
        placed = np.isfinite(rank)
        assert placed.sum() >= min(enough, np.isfinite(full).sum())
        assert np.array_equal(rank[placed], full[placed])
        assert np.array_equal(np.argsort(rank, kind="stable")[:enough], np.argsort(full, kind="stable")[:enough])
    assert np.isfinite(nsga_rank(rng.random((6000, 2)), enough=20)).sum() < 100  # the first fronts only
