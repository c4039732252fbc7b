"""Tune a small neural network by epochs with ASHA in promotion mode.

Every trial trains to its rung's budget and pauses there with a checkpoint; when it is among the
best third of its rung, ASHA resumes it from that checkpoint for three times as many epochs.
Runs in under a minute on a laptop CPU:

    python examples/asha_epochs.py
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import tunelab as tl

SPACE = {
    "lr": tl.loguniform(1e-4, 1e-1),
    "alpha": tl.loguniform(1e-6, 1e-1),
    "width": tl.choice([16, 32, 64, 128]),
    "batch_size": tl.choice([16, 32, 64, 128, 256]),
}
EPOCHS = tl.fidelity("epochs", min=1, max=27, resumable=True)


def load():
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_val), y_train, y_val


def train(config, trial):
    X_train, X_val, y_train, y_val = load()
    checkpoint = trial.load_checkpoint()  # bytes we saved on an earlier rung, or None
    if checkpoint is None:
        model, done = MLPClassifier(hidden_layer_sizes=(config["width"],), alpha=config["alpha"],
                                    learning_rate_init=config["lr"], batch_size=config["batch_size"],
                                    random_state=trial.seed % 2**32), 0
    else:
        # A file this study wrote itself, in its own artefact directory (never in the database).
        model, done = pickle.loads(checkpoint)
    error = None
    for epoch in range(done + 1, trial.budget + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X_train, y_train, classes=np.arange(10))
        error = 1.0 - model.score(X_val, y_val)
        trial.save_checkpoint(pickle.dumps((model, epoch)))  # before report: a pause unwinds from it
        trial.report(epoch, error=error)
    return error


def main(n_trials: int = 60, workers: int = 2, storage: str = "sqlite:///examples.db") -> tl.Study:
    study = tl.tune(train, SPACE, metric="error", mode="min", fidelity=EPOCHS, scheduler="asha",
                    searcher="kde", n_trials=n_trials, workers=workers, seed=0, storage=storage,
                    name="asha-mlp-digits")
    print(study.counts())
    print(f"best error {study.best.value:.4f} after {study.best.reports[-1].step:g} epochs: {study.best.config}")
    full = sum(1 for t in study.trials if t.reports and t.reports[-1].step == EPOCHS.max)
    epochs = sum(t.reports[-1].step for t in study.trials if t.reports)
    print(f"{full} trials trained to {EPOCHS.max:g} epochs; {epochs:g} epochs in all "
          f"(random search at full budget: {len(study.trials) * EPOCHS.max:g})")
    return study


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="ASHA with promotion by epochs: an MLP on the digits data.")
    parser.add_argument("--trials", type=int, default=60, help="configurations to try (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--storage", default="sqlite:///examples.db", help="where the study is kept")
    args = parser.parse_args()
    main(args.trials, args.workers, args.storage)
