"""The demo: tune gradient boosting on scikit-learn's bundled breast-cancer data.

A real tuning run with no download: 3-fold cross-validated accuracy of a
``GradientBoostingClassifier`` over learning rate, number of trees, depth, subsampling and
feature sampling, starting from scikit-learn's defaults as the baseline (the course's advice:
start from a good baseline). It lives in a module so worker processes can import the objective.
"""

from __future__ import annotations

from typing import Any

from tunelab.distributions import choice, loguniform, randint, uniform
from tunelab.errors import ConfigError

SPACE = {
    "learning_rate": loguniform(0.01, 0.5),
    "n_estimators": randint(20, 150),
    "max_depth": randint(1, 5),
    "subsample": uniform(0.5, 1.0),
    "max_features": choice(["sqrt", "log2", None]),
}

#: scikit-learn's defaults (with max_features=None meaning all features).
BASELINE = {"learning_rate": 0.1, "n_estimators": 100, "max_depth": 3, "subsample": 1.0, "max_features": None}


def _sklearn() -> Any:
    try:
        from sklearn import datasets, ensemble, model_selection
    except ImportError:
        raise ConfigError("the demo needs scikit-learn: pip install 'tunelab[demo]'") from None
    return datasets, ensemble, model_selection


def objective(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Mean 3-fold accuracy; each fold is reported so that curves show in `tunelab show`."""
    datasets, ensemble, model_selection = _sklearn()
    X, y = datasets.load_breast_cancer(return_X_y=True)
    folds = model_selection.StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = []
    for fold, (train, test) in enumerate(folds.split(X, y), start=1):
        model = ensemble.GradientBoostingClassifier(random_state=trial.seed, **config)
        model.fit(X[train], y[train])
        scores.append(model.score(X[test], y[test]))
        trial.report(fold, accuracy=sum(scores) / len(scores))
    mean = sum(scores) / len(scores)
    return {"accuracy": mean, "error": 1.0 - mean}
