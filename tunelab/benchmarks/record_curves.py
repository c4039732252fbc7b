"""Record the learning-curve tables the simulator replays, from real scikit-learn training runs.

    python -m tunelab.benchmarks.record_curves            # rewrites tunelab/benchmarks/data/*.json.gz

Each task trains one model per configuration of a grid, one ``partial_fit`` pass per epoch on a
bundled data set, and records the validation error after every epoch and the median seconds an
epoch took on this machine. The grid is the table; the simulator snaps a proposed configuration
to its nearest grid point. Runs are seeded, so the errors are reproducible; the times are this
machine's (recorded once, then replayed exactly).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
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


def _split(X, y):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_val), y_train, y_val


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


def record(name: str) -> dict[str, Any]:
    load, make, grid, epochs = TASKS[name]
    X_train, X_val, y_train, y_val = _split(*load())
    classes = np.unique(y_train)
    names = list(grid)
    configs, curves, costs = [], [], []
    for values in itertools.product(*(grid[n] for n in names)):
        config = dict(zip(names, values))
        model = make(config)
        errors, times = [], []
        for _ in range(epochs):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.partial_fit(X_train, y_train, classes=classes)
            times.append(time.perf_counter() - start)
            errors.append(round(1.0 - float(model.score(X_val, y_val)), 5))
        configs.append([grid[n].index(v) for n, v in zip(names, values)])
        curves.append(errors)
        costs.append(float(f"{np.median(times):.3g}"))
    return {"name": name, "metric": "error", "mode": "min", "epochs": epochs, "grid": grid,
            "configs": configs, "curves": curves, "cost_per_epoch": costs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=list(TASKS), help="which tables to record (default: all)")
    args = parser.parse_args(argv)
    DATA_DIR.mkdir(exist_ok=True)
    for name in args.tasks:
        start = time.perf_counter()
        table = record(name)
        path = DATA_DIR / f"{name}.json.gz"
        with gzip.open(path, "wt", compresslevel=9) as handle:
            json.dump(table, handle, separators=(",", ":"))
        print(f"{name}: {len(table['configs'])} configurations x {table['epochs']} epochs "
              f"in {time.perf_counter() - start:.0f}s -> {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
