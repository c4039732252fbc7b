"""Benchmark problems: synthetic functions with known optima, and quick scikit-learn tasks.

Every problem is minimised. The synthetic functions are the standard test functions of the
optimisation literature on their usual domains; the mixed problem adds integers, log-scaled
floats, an unordered choice and a conditional parameter; the scikit-learn tasks tune real
models on the data sets bundled with scikit-learn, each evaluation well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import tunelab as tl
from tunelab.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, Any]
    objective: Callable[[dict[str, Any]], float]
    optimum: float | None = None  # the known minimum, where there is one
    kind: str = "synthetic"


def _vector(config: dict[str, Any], n: int) -> np.ndarray:
    return np.array([config[f"x{i}"] for i in range(n)])


def branin(config) -> float:
    x, y = config["x0"], config["x1"]
    return float((y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2
                 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(config) -> float:
    x = _vector(config, 6)
    return float(-(_H6_ALPHA * np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1))).sum())


def rosenbrock5(config) -> float:
    x = _vector(config, 5)
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def styblinski_tang8(config) -> float:
    x = _vector(config, 8)
    return float(0.5 * (x ** 4 - 16 * x ** 2 + 5 * x).sum())


def ackley5(config) -> float:
    x = _vector(config, 5)
    return float(-20 * math.exp(-0.2 * math.sqrt((x ** 2).mean())) - math.exp(np.cos(2 * math.pi * x).mean())
                 + 20 + math.e)


def mixed(config) -> float:
    """A stand-in for a training run: log learning rate, integer depth, batch size, optimizer."""
    lr = math.log10(config["lr"])
    loss = (lr + 2.5) ** 2 + 0.15 * (config["layers"] - 4) ** 2 + 0.2 * abs(math.log2(config["batch"]) - 6)
    loss += 0.5 * (math.log10(config["decay"]) + 4) ** 2 / 4
    if config["optimizer"] == "sgd":
        loss += 0.4 + 2.0 * (config["momentum"] - 0.9) ** 2
    elif config["optimizer"] == "rmsprop":
        loss += 0.8
    return float(loss)


def _box(n: int, low: float, high: float) -> dict[str, Any]:
    return {f"x{i}": tl.uniform(low, high) for i in range(n)}


def _cv_task(name: str, build: Callable[[dict], Any], data: Callable[[], tuple], scoring: str):
    def objective(config) -> float:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import cross_val_score

        x, y = data()
        with warnings.catch_warnings():  # iterations are capped on purpose: a cheap evaluation
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores = cross_val_score(build(config), x, y, cv=3, scoring=scoring)
        return float(-scores.mean()) if scoring.startswith("neg_") else float(1.0 - scores.mean())

    return objective


def _digits():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return x[::3] / 16.0, y[::3]


def _diabetes():
    from sklearn.datasets import load_diabetes
    return load_diabetes(return_X_y=True)


def _cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    x, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(x), y


def _svm(config):
    from sklearn.svm import SVC
    return SVC(C=config["C"], gamma=config["gamma"])


def _forest(config):
    from sklearn.ensemble import RandomForestRegressor
    return RandomForestRegressor(n_estimators=20, max_depth=config["max_depth"], max_features=config["max_features"],
                                 min_samples_leaf=config["min_samples_leaf"], random_state=0)


def _boosting(config):
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=40, learning_rate=config["learning_rate"],
                                          max_leaf_nodes=config["max_leaf_nodes"],
                                          min_samples_leaf=config["min_samples_leaf"],
                                          l2_regularization=config["l2"], random_state=0)


def _mlp(config):
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(config["width"],), alpha=config["alpha"],
                         learning_rate_init=config["lr"], max_iter=60, random_state=0)


PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem("branin", {"x0": tl.uniform(-5, 10), "x1": tl.uniform(0, 15)}, branin, 0.397887),
    Problem("hartmann6", _box(6, 0, 1), hartmann6, -3.32237),
    Problem("rosenbrock5", _box(5, -5, 10), rosenbrock5, 0.0),
    Problem("styblinski_tang8", _box(8, -5, 5), styblinski_tang8, -39.16617 * 8),
    Problem("ackley5", _box(5, -32.768, 32.768), ackley5, 0.0),
    Problem("mixed", {"lr": tl.loguniform(1e-5, 1), "layers": tl.randint(1, 8),
                      "batch": tl.ordinal([16, 32, 64, 128, 256]),
                      "decay": tl.loguniform(1e-6, 1e-2), "optimizer": tl.choice(["sgd", "adam", "rmsprop"]),
                      "momentum": tl.uniform(0.5, 0.99, when={"optimizer": "sgd"})}, mixed, 0.0),
    Problem("svm_digits", {"C": tl.loguniform(1e-2, 1e3), "gamma": tl.loguniform(1e-5, 1.0)},
            _cv_task("svm_digits", _svm, _digits, "accuracy"), kind="sklearn"),
    Problem("forest_diabetes", {"max_depth": tl.randint(2, 20), "max_features": tl.uniform(0.1, 1.0),
                                "min_samples_leaf": tl.randint(1, 30, log=True)},
            _cv_task("forest_diabetes", _forest, _diabetes, "neg_mean_squared_error"), kind="sklearn"),
    Problem("boosting_cancer", {"learning_rate": tl.loguniform(0.01, 0.5),
                                "max_leaf_nodes": tl.randint(4, 64, log=True),
                                "min_samples_leaf": tl.randint(2, 50), "l2": tl.loguniform(1e-4, 10.0)},
            _cv_task("boosting_cancer", _boosting, _cancer, "accuracy"), kind="sklearn"),
    Problem("mlp_cancer", {"width": tl.randint(4, 128, log=True), "alpha": tl.loguniform(1e-6, 1.0),
                           "lr": tl.loguniform(1e-4, 1e-1)},
            _cv_task("mlp_cancer", _mlp, _cancer, "accuracy"), kind="sklearn"),
]}


def get_problem(name: str) -> Problem:
    if name not in PROBLEMS:
        raise ConfigError(f"unknown benchmark problem {name!r}; known: {', '.join(PROBLEMS)}")
    return PROBLEMS[name]
