"""Record the learning-curve tables the simulator replays, from real scikit-learn training runs.

    python -m tunelab.benchmarks.record_curves            # rewrites tunelab/benchmarks/data/*.json.gz

Each task trains one model per configuration of a grid, one ``partial_fit`` pass per epoch on a
bundled data set, and records the validation error after every epoch and the median seconds an
epoch took on this machine. The error is the k-fold cross-validated one (every sample is
validated once; an epoch trains all k fold models, and its cost is theirs together). On data
sets of a few hundred samples a single held-out split measures error in steps of 1/300 or
coarser, so the best configurations tie with dozens of others and no rung, early or late, can
tell them apart; the k-fold mean is what a careful practitioner tunes on there.

The grid is the table; the simulator snaps a proposed configuration to its nearest grid point.
Runs are seeded, so the errors are reproducible; the times are this machine's (recorded once,
then replayed exactly).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATA_DIR = Path(__file__).with_name("data")


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


def _folds(X, y, k: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Stratified k-fold splits, each standardised on its own training part."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    folds = []
    for train, val in StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(X, y):
        scaler = StandardScaler().fit(X[train])
        folds.append((scaler.transform(X[train]), scaler.transform(X[val]), y[train], y[val]))
    return folds


def _sgd(config: dict[str, Any]):
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss=config["loss"], penalty=config["penalty"], alpha=config["alpha"],
                         learning_rate="invscaling", eta0=config["eta0"], power_t=config["power_t"], random_state=0)


def _mlp(config: dict[str, Any]):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(config["width"],), alpha=config["alpha"],
                         learning_rate_init=config["lr"], batch_size=config["batch_size"], random_state=0)


SGD_GRID = {
    "alpha": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "eta0": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    "power_t": [0.1, 0.3, 0.5],
    "loss": ["hinge", "log_loss", "modified_huber"],
    "penalty": ["l2", "l1"],
}
#: name -> (data loader, model factory, grid, epochs)
TASKS: dict[str, tuple[Callable, Callable, dict[str, list], int]] = {
    "sgd-digits": (_digits, _sgd, SGD_GRID, 81),
    "sgd-breast-cancer": (_breast_cancer, _sgd, SGD_GRID, 81),
    "mlp-digits": (_digits, _mlp, {
        "width": [16, 32, 64, 128, 256],
        "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
        "alpha": [1e-6, 1e-4, 1e-2, 1.0],
        "batch_size": [32, 128, 512],
    }, 27),
}


def _train(make: Callable, config: dict[str, Any], fold: tuple, classes: np.ndarray,
           epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """One fold's run: (misclassified validation samples, seconds) after each epoch."""
    X_train, X_val, y_train, y_val = fold
    model = make(config)
    wrong, times = np.empty(epochs), np.empty(epochs)
    for epoch in range(epochs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X_train, y_train, classes=classes)
        times[epoch] = time.perf_counter() - start
        wrong[epoch] = np.sum(model.predict(X_val) != y_val)
    return wrong, times


def record(name: str, folds: int = 3) -> dict[str, Any]:
    load, make, grid, epochs = TASKS[name]
    X, y = load()
    splits = _folds(X, y, folds)
    classes = np.unique(y)
    names = list(grid)
    configs, curves, costs = [], [], []
    for values in itertools.product(*(grid[n] for n in names)):
        config = dict(zip(names, values))
        runs = [_train(make, config, fold, classes, epochs) for fold in splits]
        errors = sum(wrong for wrong, _ in runs) / len(y)
        seconds = sum(times for _, times in runs)  # an epoch trains every fold's model
        configs.append([grid[n].index(v) for n, v in zip(names, values)])
        curves.append([round(float(e), 5) for e in errors])
        costs.append(float(f"{np.median(seconds):.3g}"))
    return {"name": name, "metric": "cv_error", "mode": "min", "epochs": epochs, "grid": grid,
            "folds": folds, "configs": configs, "curves": curves, "cost_per_epoch": costs}


def write_table(table: dict[str, Any], path: Path) -> Path:
    """Write ``table`` to ``path`` whole or not at all: into a temporary file beside it, then
    renamed over it. A run interrupted while writing (minutes of training lost already) must not
    also leave a truncated table where the simulator, and the next benchmark, will read it. The
    temporary name does not end in .json.gz, so a leftover is never taken for a table."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with gzip.open(partial, "wt", compresslevel=9, encoding="utf-8") as handle:
            json.dump(table, handle, separators=(",", ":"))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=list(TASKS), help="which tables to record (default: all)")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds (default: 3)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="where the tables go (default: the package's)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown or args.folds < 2:
        parser.error(f"unknown task(s) {unknown} (known: {', '.join(TASKS)})" if unknown
                     else f"--folds must be at least 2, got {args.folds}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        start = time.perf_counter()
        table = record(name, args.folds)
        path = write_table(table, args.out / f"{name}.json.gz")
        print(f"{name}: {len(table['configs'])} configurations x {table['epochs']} epochs "
              f"in {time.perf_counter() - start:.0f}s -> {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
