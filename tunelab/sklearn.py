"""``TuneSearchCV``: tunelab's searchers behind scikit-learn's estimator API.

A drop-in for ``GridSearchCV``/``RandomizedSearchCV``: ``fit`` runs a study whose objective is
the cross-validated score of a clone of the estimator, then refits the best configuration on
all the data. The study is a real tunelab study (``storage=``/``name=`` keep it in a database,
so ``tunelab show NAME`` lists its trials) and is available afterwards as ``study_``. Fit again
with the same ``storage`` and ``name``, it goes on with that study on the same data, estimator,
scoring, splits and fit parameters (``n_trials`` is the study's total) and refuses any other. One
score (``scoring``: a name or a callable); ``refit`` may be a callable picking ``best_index_``
from ``cv_results_``; ``fit(X, y, groups=)`` reaches group-aware splitters. A fold that fails
scores ``error_score`` (the others keep theirs, as in scikit-learn; a configuration whose mean is
then NaN is a failed trial), and ``error_score="raise"`` ends the search at the first failure.
A fitted search is saved and loaded (pickle, ``joblib.dump``) like any fitted model; a study kept
in a database is then reopened from its storage when ``study_`` is read.

Needs scikit-learn (``pip install 'tunelab[sklearn]'``).
"""

from __future__ import annotations

import logging
import numbers
import re
import time
import warnings
from typing import Any, Mapping

import numpy as np

from tunelab.errors import ConfigError, StudyNotFound, check_count
from tunelab.storage import MemoryStorage
from tunelab.storage.base import hide_password
from tunelab.tracking.callbacks import Callback

try:
    import joblib
    from scipy.stats import rankdata
    from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
    from sklearn.exceptions import FitFailedWarning
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import check_cv, cross_validate
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.validation import check_is_fitted, indexable
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("tl.TuneSearchCV needs scikit-learn: pip install 'tunelab[sklearn]'") from None


#: A trial's record of its cross-validation (per split), and a study's hash of the data it searched.
FOLDS, DATA, SETUP = "cv_folds", "tunesearchcv_data", "tunesearchcv_setup"
_STUDY, _STORED_STUDY = "_study", "_stored_study"  # study_, or (storage URL, study name) to reopen it from
_FOLD_KEYS = ("test_score", "train_score", "fit_time", "score_time")


def _fingerprint(thing: Any) -> str:
    """A hash that is the same in another process for an equal estimator, scorer or split list
    (joblib's hash of its contents; a lambda it cannot hash is taken by its text)."""
    try:
        return joblib.hash(thing)
    except Exception:
        return joblib.hash(re.sub(r" at 0x[0-9a-fA-F]+", "", repr(thing)))


class _SearchRecord(Callback):
    """Marks the study with the search's data and setup as soon as its first trial is recorded, not
    only once the run is over: a search interrupted (Ctrl-C) and fit again on other data would
    otherwise go on and mix both data's scores. With ``stop_at_failure`` (error_score='raise'), no
    trial starts after the first that failed."""

    def __init__(self, attrs: dict[str, Any], stop_at_failure: bool, fatal: list[Exception]):
        self.attrs, self.stop_at_failure, self.written = attrs, stop_at_failure, False
        self.fatal = fatal  # mistakes in the search itself (not in a configuration): every trial would repeat them

    def on_trial_end(self, study, trial) -> None:
        if not self.written:
            study.storage.update_study(study.record.id, user_attrs=self.attrs)
            self.written = True
        if self.fatal or self.stop_at_failure and trial.state.value == "failed":
            study.stop()


def _check_one_score(result: Mapping[str, Any], scoring: Any, fatal: list[Exception]) -> None:
    """A scoring callable may return a dict of scores (scikit-learn's multi-metric form); this search
    optimises one, and every trial would fail alike, so the first such trial ends the search."""
    if "test_score" not in result:
        names = sorted(k[len("test_"):] for k in result if k.startswith("test_"))
        fatal.append(ConfigError(
            f"the scoring callable {scoring!r} returned a dict of scores {names}; TuneSearchCV optimises one "
            "score: give a callable that returns one number (or a scorer name such as 'accuracy')"))
        raise fatal[-1]


_ABSENT = object()  # a conditional parameter that a trial's configuration left out


def _param_column(values: list[Any]) -> np.ma.MaskedArray:
    """A ``param_<name>`` column as scikit-learn builds it: masked where the parameter was inactive, and
    numeric (or boolean) when all its values are, so that ``np.log(cv_results_["param_C"])`` and a
    DataFrame's plots and sorts work on it; object for strings, None or a mix."""
    present = [v for v in values if v is not _ABSENT]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        dtype: Any = bool
    elif present and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present):
        dtype = np.result_type(*[np.asarray(v).dtype for v in present])
    else:
        dtype = object
    column = np.ma.masked_all(len(values), dtype=dtype)
    for i, value in enumerate(values):
        if value is not _ABSENT:
            column[i] = value
    return column


def _best_has(method: str):
    def check(self) -> bool:
        if self.refit is False:  # as GridSearchCV: no best estimator, no predict
            return False
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, method)
        return hasattr(self.estimator, method)
    return check


def _delegate(method: str):
    """``method`` of the best estimator, offered only where it has one (as GridSearchCV does)."""

    def call(self, X):
        check_is_fitted(self, "best_estimator_")
        return getattr(self.best_estimator_, method)(X)

    call.__name__ = call.__qualname__ = method  # before available_if reads it, for its messages
    return available_if(_best_has(method))(call)


class TuneSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search ``space`` (a tunelab space over the estimator's parameters) with ``n_trials``
    cross-validated trials chosen by ``searcher``; the attributes follow ``GridSearchCV``."""

    def __init__(self, estimator, space: Mapping[str, Any], *, n_trials: int = 20, searcher: str = "auto",
                 cv=5, scoring=None, n_jobs=None, refit=True, random_state: int | None = None,
                 storage=None, name: str | None = None, searcher_options: Mapping[str, Any] | None = None,
                 error_score=np.nan, return_train_score: bool = False):
        self.estimator, self.space, self.n_trials, self.searcher = estimator, space, n_trials, searcher
        self.cv, self.scoring, self.n_jobs, self.refit = cv, scoring, n_jobs, refit
        self.random_state, self.storage, self.name = random_state, storage, name
        self.searcher_options, self.error_score = searcher_options, error_score
        self.return_train_score = return_train_score

    def fit(self, X, y=None, *, groups=None, **fit_params):
        import tunelab as tl

        if not hasattr(self.estimator, "fit"):
            raise ConfigError(f"TuneSearchCV needs an estimator with fit(); got {self.estimator!r}")
        # numpy integers, as scikit-learn's own searches take them (n_iter=np.int64(20))
        n_trials = int(self.n_trials) if isinstance(self.n_trials, np.integer) else self.n_trials
        check_count("n_trials", n_trials, optional=False)
        if isinstance(self.random_state, bool) or not (self.random_state is None or isinstance(
                self.random_state, (numbers.Integral, np.random.RandomState))):
            raise ConfigError(f"random_state must be None, an integer or a numpy RandomState (as scikit-learn takes "
                              f"it); got {self.random_state!r}")
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ConfigError("TuneSearchCV optimises one score: give scoring as one name or callable "
                              f"(several metrics, as GridSearchCV takes them, are not supported); got {self.scoring!r}")
        if not (isinstance(self.error_score, str) and self.error_score == "raise" or
                isinstance(self.error_score, numbers.Real) and not isinstance(self.error_score, bool)):
            raise ConfigError(f"error_score must be 'raise' or a number (np.nan by default); got {self.error_score!r}")
        if not (isinstance(self.refit, bool) or callable(self.refit)):
            raise ConfigError(f"refit must be True, False or a callable picking best_index_ from cv_results_; "
                              f"got {self.refit!r}")
        if y is None and self.estimator.__sklearn_tags__().target_tags.required:
            raise ValueError(f"{type(self.estimator).__name__} requires y to be passed, but the target y is None")
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        self.n_splits_ = cv.get_n_splits(X, y, groups)
        splits = list(cv.split(X, y, groups))
        errors: list[Exception] = []
        stop = isinstance(self.error_score, str) and self.error_score == "raise"

        partial: list[Exception] = []  # configurations some of whose folds failed (error_score took their place)
        fatal: list[Exception] = []  # a scoring callable that gives several scores: the search stops at once

        def cross_validated(config, trial) -> dict[str, float]:
            model = clone(self.estimator).set_params(**config)
            run = dict(cv=splits, scoring=self.scorer_, n_jobs=self.n_jobs, params=fit_params or None,
                       return_train_score=self.return_train_score)
            failure = None
            try:
                result = cross_validate(model, X, y, error_score="raise", **run)
                _check_one_score(result, self.scoring, fatal)
            except Exception as err:
                if fatal:
                    raise
                if stop:
                    raise
                failure = err  # as scikit-learn: the folds that fit keep their scores, the others error_score
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FitFailedWarning)
                    try:
                        result = cross_validate(model, X, y, error_score=self.error_score, **run)
                    except ValueError:  # every fold failed
                        raise err from None
            # kept with the trial, so that a search continued later (same storage and name) has them
            trial.set_user_attr(FOLDS, {k: [float(v) for v in result[k]] for k in _FOLD_KEYS if k in result})
            score = float(np.mean(result["test_score"]))
            if failure is not None and not np.isfinite(score):
                raise failure
            if not np.isfinite(score):
                raise ValueError(f"cross-validation gave a non-finite score ({score}) for {config}")
            if failure is not None:
                partial.append(failure)
            return {"score": score}

        def objective(config, trial) -> dict[str, float]:
            try:
                return cross_validated(config, trial)
            except Exception as err:  # the trial fails; kept to re-raise if every trial does (or at once, "raise")
                errors.append(err)
                raise

        self._check_names()
        data = joblib.hash((X, y, groups))
        setup = {"estimator": _fingerprint(self.estimator), "scoring": _fingerprint(self.scoring),
                 "cross-validation splits": _fingerprint(splits), "fit parameters": _fingerprint(fit_params)}
        self._check_same_search(data, setup)
        attrs = {DATA: data, SETUP: setup}
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):  # as scikit-learn takes it: a draw from it seeds the study
            seed = int(seed.randint(2**31 - 1))
        seed = None if seed is None else int(seed)
        tunelab_log = logging.getLogger("tunelab")
        level = tunelab_log.level
        tunelab_log.setLevel(logging.ERROR)  # failed fits: one FitFailedWarning below, not a line each
        try:
            self.__dict__.pop(_STORED_STUDY, None)  # a search loaded from a file, fit again: its new study
            self._study = tl.tune(objective, self.space, metric="score", mode="max", n_trials=n_trials,
                                  searcher=self.searcher, searcher_options=self.searcher_options, seed=seed,
                                  storage=self.storage, name=self.name, executor="inline", progress=False,
                                  max_failures=None,
                                  callbacks=[_SearchRecord(attrs, stop_at_failure=stop, fatal=fatal)])
        finally:
            tunelab_log.setLevel(level)
        self.study_.storage.update_study(self.study_.record.id, user_attrs=attrs)
        if fatal:
            raise fatal[0]
        if errors and (not any(t.state.value == "completed" for t in self.study_.trials) or stop):
            raise errors[0]
        if errors:
            warnings.warn(f"{len(errors)} of the configurations fitted here failed (their score is error_score="
                          f"{self.error_score!r}); the first error: {type(errors[0]).__name__}: {errors[0]}",
                          FitFailedWarning, stacklevel=2)
        if partial:
            warnings.warn(f"{len(partial)} of the configurations fitted here failed on some folds (those folds score "
                          f"error_score={self.error_score!r}); the first error: {type(partial[0]).__name__}: {partial[0]}",
                          FitFailedWarning, stacklevel=2)
        self._collect()
        self.multimetric_ = False  # one score (see the check of scoring above)
        if self.refit:
            started = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - started
            if hasattr(self.best_estimator_, "n_features_in_"):
                self.n_features_in_ = self.best_estimator_.n_features_in_
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _check_names(self) -> None:
        """Every parameter of the space must be one the estimator takes (``step__param`` for a
        pipeline's steps): a misspelt name would fail every trial, or be searched for nothing."""
        from tunelab.space import Space

        known = clone(self.estimator).get_params(deep=True)
        unknown = [name for name in Space(self.space).params if name not in known]
        if unknown:
            raise ConfigError(f"space parameters {unknown} are not parameters of {type(self.estimator).__name__}; "
                              f"it takes: {', '.join(sorted(known))}")

    def _check_same_search(self, data: str, setup: dict[str, str]) -> None:
        """A search kept in storage goes on when fit again on the same data with the same
        estimator, scoring, splits and fit parameters (n_trials is the study's total); otherwise
        its scores would not compare with the new ones, so it is refused."""
        import tunelab as tl

        if self.storage is None or self.name is None:
            return
        try:
            kept = tl.load_study(self.name, storage=self.storage).record.user_attrs or {}
        except StudyNotFound:
            return
        where = f"study {self.name!r} in {hide_password(str(self.storage))}"
        advice = "give another name for this search, or delete that study"
        if kept.get(DATA) is not None and kept[DATA] != data:
            raise ConfigError(f"{where} holds a search on other data (its scores are of that data): {advice}")
        changed = [what for what, value in (kept.get(SETUP) or {}).items() if setup.get(what) != value]
        if changed:
            raise ConfigError(f"{where} holds a search that differs from this one in its {' and '.join(changed)} "
                              f"(its scores do not compare with this search's; a splitter that shuffles needs a "
                              f"random_state): {advice}")

    def _collect(self) -> None:
        # a trial its tuner cancelled (Ctrl-C) was not scored: it runs again, and only that run counts
        trials = [t for t in self.study_.trials if t.state.finished and t.shown_state != "cancelled"]
        folds = [t.user_attrs.get(FOLDS, {}) for t in trials]
        failed = float(self.error_score) if isinstance(self.error_score, numbers.Real) else np.nan
        scores = np.array([t.value if t.state.value == "completed" and t.value is not None else failed
                           for t in trials], dtype=float)
        results: dict[str, Any] = {"params": [dict(t.config) for t in trials],
                                   "trial_number": np.array([t.number for t in trials])}
        for key in sorted({k for t in trials for k in t.config}):
            results[f"param_{key}"] = _param_column([t.config.get(key, _ABSENT) for t in trials])
        kinds = ["test"] + (["train"] if self.return_train_score else [])
        for kind in kinds:
            per_split = np.array([fold.get(f"{kind}_score", [failed] * self.n_splits_) for fold in folds],
                                 dtype=float).reshape(len(trials), self.n_splits_)
            for split in range(self.n_splits_):
                results[f"split{split}_{kind}_score"] = per_split[:, split]
            results[f"mean_{kind}_score"] = scores if kind == "test" else per_split.mean(axis=1)
            results[f"std_{kind}_score"] = per_split.std(axis=1)
        # tied scores share the lowest rank, failed ones come last, as in scikit-learn
        results["rank_test_score"] = rankdata(-np.nan_to_num(scores, nan=-np.inf), method="min").astype(np.int32)
        for key in ("fit_time", "score_time"):
            times = [fold.get(key, [np.nan]) for fold in folds]
            results[f"mean_{key}"] = np.array([np.mean(t) for t in times])
            results[f"std_{key}"] = np.array([np.std(t) for t in times])
        self.cv_results_ = results
        if callable(self.refit):  # the user's pick, as GridSearchCV's refit=callable
            index = self.refit(results)
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
                raise TypeError(f"refit callable must return an integer index into cv_results_; got {index!r}")
            if not 0 <= index < len(trials):
                raise IndexError(f"refit callable returned {index}, outside cv_results_'s 0..{len(trials) - 1}")
            self.best_index_ = int(index)
        else:
            self.best_index_ = int(np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[0])
        self.best_params_ = dict(trials[self.best_index_].config)
        self.best_score_ = float(scores[self.best_index_])

    # -- saved and loaded (pickle, joblib.dump) like any fitted scikit-learn model ---------------
    @property
    def study_(self):
        """The study of the last fit. A study in a database holds a connection, which cannot be
        saved with the search: a saved search keeps its storage URL and name, and reopens it here."""
        state = self.__dict__
        if _STUDY not in state and _STORED_STUDY in state:
            import tunelab as tl

            url, name = state[_STORED_STUDY]
            state[_STUDY] = tl.load_study(name, storage=url)
            del state[_STORED_STUDY]
        if _STUDY not in state:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'study_' (call fit first)")
        return state[_STUDY]

    def __getstate__(self):
        state = super().__getstate__()
        study = state.get(_STUDY)
        if study is not None and not isinstance(study.storage, MemoryStorage):
            state = {k: v for k, v in state.items() if k != _STUDY}
            state[_STORED_STUDY] = (study.storage.url, study.name)
        return state

    # -- the best estimator's face ------------------------------------------------------------
    def _refit_estimator(self, what: str):
        """The best estimator refit on all the data; a search fit with refit=False says so rather
        than that it was never fit (as GridSearchCV does)."""
        if not self.refit and hasattr(self, "cv_results_") and not hasattr(self, "best_estimator_"):
            raise AttributeError(f"This {type(self).__name__} was fit with refit=False: {what} needs the best "
                                 "configuration refit on all the data; fit again with refit=True, or refit "
                                 "clone(estimator).set_params(**best_params_) yourself")
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    @property
    def classes_(self):
        return self._refit_estimator("classes_").classes_

    predict = _delegate("predict")
    predict_proba = _delegate("predict_proba")
    predict_log_proba = _delegate("predict_log_proba")
    decision_function = _delegate("decision_function")
    transform = _delegate("transform")
    inverse_transform = _delegate("inverse_transform")
    score_samples = _delegate("score_samples")

    def score(self, X, y=None):
        best = self._refit_estimator("score")
        return self.scorer_(best, X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.target_tags = inner.target_tags
        tags.input_tags = inner.input_tags
        if inner.classifier_tags is not None:
            tags.classifier_tags = inner.classifier_tags
        if inner.regressor_tags is not None:
            tags.regressor_tags = inner.regressor_tags
        return tags
