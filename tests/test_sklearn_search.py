import numpy as np
import pytest
from scipy.stats import rankdata
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
    assert len(search.cv_results_["params"]) == 8
    assert list(search.cv_results_["rank_test_score"]) == \
        list(rankdata(-search.cv_results_["mean_test_score"], method="min"))  # ties share the lowest rank
    assert all(np.isfinite(search.cv_results_[f"{k}_{t}"]).all()
               for k in ("mean", "std") for t in ("fit_time", "score_time"))
    assert search.predict(x[:5]).shape == (5,) and search.score(x, y) > 0.9
    assert search.refit_time_ > 0 and search.multimetric_ is False
    stored = tl.load_study("iris", storage=url)
    assert len(stored.trials) == 8 and stored.best.value == pytest.approx(search.best_score_)


def test_search_rejects_bad_input():
    with pytest.raises(tl.ConfigError):
        TuneSearchCV(LogisticRegression(), {"C": tl.loguniform(0.1, 1)}, n_trials=0).fit(np.zeros((6, 2)), [0, 1] * 3)


def test_a_search_kept_in_storage_goes_on_with_the_same_data_and_refuses_other_data(tmp_path):
    x, y = load_iris(return_X_y=True)
    kept = dict(n_trials=3, cv=3, random_state=0, storage=f"sqlite:///{tmp_path / 'cv.db'}", name="iris")
    first = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-3, 10.0)}, **kept).fit(x, y)
    again = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-3, 10.0)}, **kept).fit(x, y)
    assert again.best_score_ == first.best_score_  # the study was done: its results, split by split
    assert np.isfinite(again.cv_results_["split0_test_score"]).all()
    with pytest.raises(tl.ConfigError, match="holds a search on other data"):
        TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-3, 10.0)}, **kept).fit(x[:120], y[:120])


class _FailsAbove(LogisticRegression):
    """A model whose fit fails for C above 1 and counts its fits."""

    fits: list = []

    def fit(self, X, y, **kwargs):
        _FailsAbove.fits.append(self.C)
        if self.C > 1:
            raise ValueError("C too large")
        return super().fit(X, y, **kwargs)


def test_error_score_raise_stops_the_search_at_the_first_failure():
    x, y = load_iris(return_X_y=True)
    _FailsAbove.fits = []
    search = TuneSearchCV(_FailsAbove(max_iter=300), {"C": tl.loguniform(1e-2, 100.0)}, n_trials=12, cv=2,
                          random_state=0, searcher="random", error_score="raise")
    with pytest.raises(ValueError, match="C too large"):
        search.fit(x, y)
    assert [c > 1 for c in _FailsAbove.fits].count(True) == 1 and _FailsAbove.fits[-1] > 1  # nothing fit after it


def test_groups_reach_the_splitter_and_refit_may_pick_the_best_index():
    from sklearn.model_selection import GroupKFold

    x, y = load_iris(return_X_y=True)
    groups = np.arange(len(y)) % 5
    search = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-3, 10.0)}, n_trials=4,
                          cv=GroupKFold(5), random_state=0, return_train_score=True,
                          refit=lambda results: int(np.argmin(results["mean_test_score"])))  # the worst, on purpose
    search.fit(x, y, groups=groups)
    assert search.n_splits_ == 5 and search.best_index_ == int(np.argmin(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.C == search.cv_results_["params"][search.best_index_]["C"]
    assert {"split4_train_score", "mean_train_score", "std_train_score"} <= set(search.cv_results_)
    with pytest.raises(tl.ConfigError, match="optimises one score"):
        TuneSearchCV(LogisticRegression(), {"C": tl.loguniform(0.1, 1)}, scoring=["accuracy", "f1_macro"]).fit(x, y)


def test_refit_false_and_a_random_state_object_behave_as_in_scikit_learn():
    from tunelab.analysis.rerun import load_objective

    x, y = load_iris(return_X_y=True)
    space = {"C": tl.loguniform(1e-3, 10.0)}
    plain = TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=3, cv=2, refit=False).fit(x, y)
    assert not hasattr(plain, "predict") and plain.best_params_
    with pytest.raises(AttributeError, match="has no attribute 'predict'"):
        plain.predict(x)
    seeded = [TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=3, cv=2,
                           random_state=np.random.RandomState(0)).fit(x, y).best_params_ for _ in range(2)]
    assert seeded[0] == seeded[1]  # a RandomState seeds the study, as an integer does
    with pytest.raises(tl.ConfigError, match="TuneSearchCV's cross-validations"):
        load_objective(plain.study_.record.settings["objective"])  # reproduce / seed-check say why they cannot


def test_failed_fits_make_one_fit_failed_warning_and_nothing_on_the_log(caplog):
    import logging

    from sklearn.exceptions import FitFailedWarning

    x, y = load_iris(return_X_y=True)
    _FailsAbove.fits = []
    with caplog.at_level(logging.WARNING, logger="tunelab"), pytest.warns(FitFailedWarning, match="C too large"):
        search = TuneSearchCV(_FailsAbove(max_iter=300), {"C": tl.loguniform(1e-2, 100.0)}, n_trials=8, cv=2,
                              random_state=0, searcher="random").fit(x, y)
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert np.isnan(search.cv_results_["mean_test_score"]).any() and search.best_params_["C"] <= 1
    failed = np.isnan(search.cv_results_["mean_test_score"])
    assert np.isnan(search.cv_results_["split0_test_score"][failed]).all()  # error_score (nan) in every split
