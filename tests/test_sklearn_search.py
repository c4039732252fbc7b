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


def test_mistakes_that_would_fail_every_trial_are_refused_up_front():
    x, y = load_iris(return_X_y=True)
    with pytest.raises(tl.ConfigError, match=r"space parameters \['CC'\] are not parameters of LogisticRegression"):
        TuneSearchCV(LogisticRegression(), {"CC": tl.uniform(0.1, 1.0)}, n_trials=2, cv=2).fit(x, y)
    with pytest.raises(tl.ConfigError, match=r"space parameters \['penalty_kind'\]"):
        TuneSearchCV(LogisticRegression(), {"C": tl.uniform(0.1, 1.0), "penalty_kind": "l2"}, n_trials=2, cv=2).fit(x, y)
    with pytest.raises(tl.ConfigError, match="error_score must be 'raise' or a number"):
        TuneSearchCV(LogisticRegression(), {"C": tl.uniform(0.1, 1.0)}, n_trials=2, cv=2, error_score="nan").fit(x, y)


def test_a_scorer_that_breaks_or_gives_nan_is_not_passed_over_in_silence():
    from sklearn.exceptions import FitFailedWarning

    x, y = load_iris(return_X_y=True)
    space = {"C": tl.loguniform(1e-2, 10.0)}
    with pytest.raises(Exception) as raised:  # every trial failed: the first error, as scikit-learn raises it
        TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=2, cv=2, random_state=0,
                     scoring=lambda est, X, y: {"a": 1.0}).fit(x, y)
    assert "test_score" in str(raised.value) or "dict" in str(raised.value)

    def nan_for_small_c(est, X, y):
        return float("nan") if est.C < 0.5 else est.score(X, y)

    with pytest.warns(FitFailedWarning, match="non-finite score"):
        search = TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=6, cv=2, random_state=0,
                              searcher="random", scoring=nan_for_small_c).fit(x, y)
    assert search.best_params_["C"] >= 0.5 and np.isfinite(search.best_score_)
    failed = [t for t in search.study_.trials if t.state is tl.TrialState.FAILED]
    assert failed and all(t.error.startswith("ValueError: cross-validation gave a non-finite score") for t in failed)


class _FailsOnSmallFolds(LogisticRegression):
    """Fails to fit on the fold whose training part is the smallest (the first of an uneven split)."""

    def fit(self, X, y, **kwargs):
        if len(X) < 100:
            raise ValueError("too few samples")
        return super().fit(X, y, **kwargs)


def test_a_failed_fold_scores_error_score_and_the_others_keep_theirs_as_in_scikit_learn():
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    x, y = load_iris(return_X_y=True)
    cv = PredefinedSplit(np.arange(len(y)) % 3 == 0)  # fold 0 trains on 100 samples, fold 1 on 50
    with pytest.warns(FitFailedWarning, match="failed on some folds .* ValueError: too few samples"):
        ours = TuneSearchCV(_FailsOnSmallFolds(max_iter=300), {"C": tl.choice([1.0])}, n_trials=1, cv=cv,
                            error_score=0.0).fit(x, y)
    with pytest.warns(FitFailedWarning):
        theirs = GridSearchCV(_FailsOnSmallFolds(max_iter=300), {"C": [1.0]}, cv=cv, error_score=0.0).fit(x, y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        assert ours.cv_results_[key][0] == pytest.approx(theirs.cv_results_[key][0]), key
    assert ours.best_score_ == pytest.approx(theirs.best_score_) and 0 < ours.best_score_ < 1
    with pytest.raises(ValueError, match="too few samples"):  # with NaN, the configuration fails as its fold did
        TuneSearchCV(_FailsOnSmallFolds(max_iter=300), {"C": tl.choice([1.0])}, n_trials=1, cv=cv).fit(x, y)


def test_a_stored_search_refuses_another_scoring_estimator_or_splits(tmp_path):
    from sklearn.svm import LinearSVC

    x, y = load_iris(return_X_y=True)
    kept = dict(n_trials=2, random_state=0, storage=f"sqlite:///{tmp_path / 'cv.db'}", name="iris")
    space = {"C": tl.loguniform(1e-3, 10.0)}
    TuneSearchCV(LogisticRegression(max_iter=300), space, cv=3, **kept).fit(x, y)
    with pytest.raises(tl.ConfigError, match="differs from this one in its scoring"):
        TuneSearchCV(LogisticRegression(max_iter=300), space, cv=3, scoring="neg_log_loss", **kept).fit(x, y)
    with pytest.raises(tl.ConfigError, match="differs from this one in its estimator"):
        TuneSearchCV(LinearSVC(), space, cv=3, **kept).fit(x, y)
    with pytest.raises(tl.ConfigError, match="differs from this one in its cross-validation splits"):
        TuneSearchCV(LogisticRegression(max_iter=300), space, cv=5, **kept).fit(x, y)
    again = TuneSearchCV(LogisticRegression(max_iter=300), space, cv=3, **{**kept, "n_trials": 3}).fit(x, y)
    assert len(again.cv_results_["params"]) == 3  # the same search goes on


def test_a_refit_callable_must_pick_an_index_into_the_results():
    x, y = load_iris(return_X_y=True)
    for pick, error in ((lambda r: -1, IndexError), (lambda r: 7, IndexError), (lambda r: 1.7, TypeError),
                        (lambda r: "0", TypeError)):
        with pytest.raises(error, match="refit callable"):
            TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-3, 10.0)}, n_trials=2, cv=2,
                         random_state=0, refit=pick).fit(x, y)


def test_the_best_estimators_inverse_transform_and_score_samples_are_offered():
    from sklearn.decomposition import PCA

    x, _ = load_iris(return_X_y=True)
    search = TuneSearchCV(PCA(), {"n_components": tl.randint(1, 3)}, n_trials=2, cv=2, random_state=0).fit(x)
    reduced = search.transform(x)
    assert search.inverse_transform(reduced).shape == x.shape
    assert search.score_samples(x).shape == (len(x),)


def test_a_fitted_search_kept_in_a_database_saves_and_loads_like_a_scikit_learn_model(tmp_path):
    import pickle

    x, y = load_iris(return_X_y=True)
    url = f"sqlite:///{tmp_path / 'cv.db'}"
    search = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, n_trials=2, cv=2,
                          random_state=0, storage=url, name="saved").fit(x, y)
    loaded = pickle.loads(pickle.dumps(search))  # joblib.dump does the same
    assert (loaded.predict(x) == search.predict(x)).all() and loaded.best_params_ == search.best_params_
    assert loaded.study_.name == "saved" and len(loaded.study_.trials) == 2  # reopened from its database
    assert pickle.loads(pickle.dumps(loaded)).study_.best.value == pytest.approx(search.best_score_)
    with pytest.raises(AttributeError, match="study_"):
        TuneSearchCV(LogisticRegression(), {"C": tl.loguniform(1e-2, 10.0)}).study_


class _InterruptedAtThirdFit(LogisticRegression):
    """Its third fit is stopped by a Ctrl-C (KeyboardInterrupt), as a user stops a long search."""

    fits = 0

    def fit(self, X, y, **kwargs):
        _InterruptedAtThirdFit.fits += 1
        if _InterruptedAtThirdFit.fits == 3:
            raise KeyboardInterrupt
        return super().fit(X, y, **kwargs)


def _interrupted_search(tmp_path) -> dict:
    """A stored search on iris stopped by Ctrl-C in its second trial; the arguments that go on with it."""
    x, y = load_iris(return_X_y=True)
    kept = dict(n_trials=3, cv=2, random_state=0, storage=f"sqlite:///{tmp_path / 'cv.db'}", name="stopped")
    _InterruptedAtThirdFit.fits = 0
    with pytest.raises(KeyboardInterrupt):
        TuneSearchCV(_InterruptedAtThirdFit(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, **kept).fit(x, y)
    return kept


def test_a_search_stopped_by_ctrl_c_refuses_to_go_on_with_other_data(tmp_path):
    kept = _interrupted_search(tmp_path)
    x, y = load_iris(return_X_y=True)
    with pytest.raises(tl.ConfigError, match="holds a search on other data"):  # its first trial's scores are of iris
        TuneSearchCV(_InterruptedAtThirdFit(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, **kept).fit(x[:90], y[:90])


def test_a_trial_cancelled_by_ctrl_c_is_no_failed_candidate_in_cv_results(tmp_path):
    kept = _interrupted_search(tmp_path)
    x, y = load_iris(return_X_y=True)
    search = TuneSearchCV(_InterruptedAtThirdFit(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, **kept).fit(x, y)
    assert len(search.cv_results_["params"]) == 3  # the cancelled trial ran again: only that run is a candidate
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert list(search.cv_results_["rank_test_score"]) == \
        list(rankdata(-search.cv_results_["mean_test_score"], method="min"))


def test_random_state_and_n_trials_are_taken_as_scikit_learn_takes_them():
    x, y = load_iris(return_X_y=True)
    space = {"C": tl.loguniform(1e-3, 10.0)}
    for bad in (1.5, "0"):  # scikit-learn refuses these too; ignoring them would leave the search unseeded
        with pytest.raises(tl.ConfigError, match="random_state must be None, an integer or a numpy RandomState"):
            TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=2, cv=2, random_state=bad).fit(x, y)
    runs = [TuneSearchCV(LogisticRegression(max_iter=300), space, n_trials=np.int64(2), cv=2,
                         random_state=np.int64(3)).fit(x, y) for _ in range(2)]
    assert len(runs[0].cv_results_["params"]) == 2 and runs[0].best_params_ == runs[1].best_params_


def test_score_and_classes_of_a_search_fit_with_refit_false_say_why_they_are_missing():
    x, y = load_iris(return_X_y=True)
    search = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, n_trials=1, cv=2,
                          refit=False).fit(x, y)
    with pytest.raises(AttributeError, match="fit with refit=False: score needs the best configuration refit"):
        search.score(x, y)
    with pytest.raises(AttributeError, match="fit with refit=False: classes_ needs"):
        search.classes_
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):  # never fit: scikit-learn's own message
        TuneSearchCV(LogisticRegression(), {"C": tl.loguniform(1e-2, 10.0)}).score(x, y)


def test_a_scoring_callable_that_returns_several_scores_stops_the_search_with_a_clear_error():
    x, y = load_iris(return_X_y=True)
    search = TuneSearchCV(LogisticRegression(max_iter=300), {"C": tl.loguniform(1e-2, 10.0)}, n_trials=5, cv=2,
                          random_state=0, scoring=lambda est, X, y: {"acc": est.score(X, y), "one": 1.0})
    with pytest.raises(tl.ConfigError, match=r"returned a dict of scores \['acc', 'one'\]; TuneSearchCV optimises one"):
        search.fit(x, y)
    assert len(search.study_.trials) == 1  # the first trial tells; the other four would only repeat it


def test_param_columns_are_numeric_where_scikit_learn_makes_them_so():
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    x, y = load_iris(return_X_y=True)
    grid = {"C": [0.5, 2.0], "shrinking": [True, False], "kernel": ["rbf", "poly"]}
    theirs = GridSearchCV(SVC(), grid, cv=2).fit(x, y)
    space = {"C": tl.choice([0.5, 2.0]), "shrinking": tl.choice([True, False]), "kernel": tl.choice(["rbf", "poly"]),
             "degree": tl.choice([2, 3], when={"kernel": "poly"})}
    ours = TuneSearchCV(SVC(), space, n_trials=12, cv=2, searcher="grid").fit(x, y)
    for key in ("param_C", "param_shrinking", "param_kernel"):
        assert ours.cv_results_[key].dtype == theirs.cv_results_[key].dtype, key
    assert np.log(ours.cv_results_["param_C"]).min() == pytest.approx(np.log(0.5))
    degree = ours.cv_results_["param_degree"]  # inactive under kernel='rbf': masked, as scikit-learn leaves it
    assert degree.dtype.kind == "i" and list(degree.mask) == [k == "rbf" for k in ours.cv_results_["param_kernel"]]


@pytest.mark.parametrize("error_score", [np.float32(0.0), np.int64(0)])
def test_a_numpy_error_score_is_the_score_of_a_configuration_that_failed(error_score):
    x, y = load_iris(return_X_y=True)
    search = TuneSearchCV(_FailsAbove(max_iter=300), {"C": tl.choice([0.5, 5.0])}, n_trials=2, cv=2,
                          searcher="grid", error_score=error_score)
    with pytest.warns(Warning):
        search.fit(x, y)
    failed = [p["C"] > 1 for p in search.cv_results_["params"]]
    assert list(search.cv_results_["mean_test_score"][failed]) == [0.0]
    assert list(search.cv_results_["split1_test_score"][failed]) == [0.0]
