"""Tune an SVM by data subsample with Hyperband: cheap runs on a fraction of the data rank the
configurations, the best get more data. A subsample is not resumable, so each level is a fresh
run (tunelab knows this from the fidelity and needs no checkpoint). About a minute on a CPU:

    python examples/hyperband_subsample.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

import tunelab as tl

SPACE = {"C": tl.loguniform(1e-2, 1e3), "gamma": tl.loguniform(1e-5, 1e-1), "kernel": tl.choice(["rbf", "sigmoid"])}
SUBSAMPLE = tl.fidelity("subsample", min=1 / 27, max=1.0)


def train(config, trial):
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    rng = np.random.default_rng(0)  # the same subsample for every configuration: a fair comparison
    take = rng.permutation(len(X_train))[: max(int(trial.budget * len(X_train)), 20)]
    model = SVC(C=config["C"], gamma=config["gamma"], kernel=config["kernel"]).fit(X_train[take], y_train[take])
    error = 1.0 - model.score(X_val, y_val)
    trial.report(trial.budget, error=error)
    return error


def main(n_trials: int = 2 * 46, storage: str = "sqlite:///examples.db") -> tl.Study:
    study = tl.tune(train, SPACE, metric="error", mode="min", fidelity=SUBSAMPLE, scheduler="hyperband",
                    n_trials=n_trials, seed=0, storage=storage, name="hyperband-svm-digits")
    print(study.counts())
    print(f"best error {study.best.value:.4f}: {study.best.config}")
    used = sum(r.step for t in study.trials for r in t.reports)
    print(f"data used: {used:.1f} full-data fits' worth for {len(study.trials)} configurations")
    return study


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Hyperband by data subsample: an SVM on the digits data.")
    parser.add_argument("--trials", type=int, default=2 * 46, help="configurations to try (default %(default)s)")
    parser.add_argument("--storage", default="sqlite:///examples.db", help="where the study is kept")
    args = parser.parse_args()
    main(args.trials, args.storage)
