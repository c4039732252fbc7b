import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

import tunelab as tl
from tunelab.sklearn import TuneSearchCV


def _search(estimator, space, **kwargs):
    return TuneSearchCV(estimator, space, n_trials=2, cv=2, random_state=0, **kwargs)


@parametrize_with_checks([_search(LogisticRegression(max_iter=200), {"C": tl.loguniform(0.1, 10.0)},
                                  searcher="random")])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_search_finds_a_good_model_and_fills_the_gridsearch_attributes(tmp_path):
    x, y = load_iris(return_X_y=True)
    url = f"sqlite:///{tmp_path / 'cv.db'}"
    search = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-4, 100.0)}, n_trials=8, cv=3,
                          random_state=0, storage=url, name="iris").fit(x, y)
    assert search.best_score_ > 0.9 and search.best_params_["C"] > 1e-2
    assert search.cv_results_["mean_test_score"][search.best_index_] == search.best_score_
    assert len(search.cv_results_["params"]) == 8 and set(search.cv_results_["rank_test_score"]) == set(range(1, 9))
    assert search.predict(x[:5]).shape == (5,) and search.score(x, y) > 0.9
    stored = tl.load_study("iris", storage=url)
    assert len(stored.trials) == 8 and stored.best.value == pytest.approx(search.best_score_)


def test_search_rejects_bad_input():
    with pytest.raises(tl.ConfigError):
        TuneSearchCV(LogisticRegression(), {"C": tl.loguniform(0.1, 1)}, n_trials=0).fit(np.zeros((6, 2)), [0, 1] * 3)
