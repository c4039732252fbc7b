"""Objectives with a fidelity, for the multi-fidelity tests; module-level so workers can import them."""

from __future__ import annotations

import math

import tunelab as tl

SPACE = {"x": tl.uniform(0.0, 1.0)}
EPOCHS = tl.fidelity("epochs", min=1, max=9, resumable=True)
SUBSAMPLE = tl.fidelity("subsample", min=1 / 9, max=1.0)


def loss_at(config, epoch: float) -> float:
    """A family of curves whose ranking never changes: the final loss is x."""
    return config["x"] + 1.0 / epoch


def by_epochs(config, trial):
    """Trains from its checkpoint up to trial.budget; the checkpoint records where each run began."""
    return train_by_epochs(loss_at, config, trial)


def late_bloomer(config, epoch: float) -> float:
    """Curves that cross: x near 1 learns fast and plateaus high, x near 0 starts slowly and ends
    lowest (at 9 epochs x=0.1 is worse than every x >= 0.7; at 81 it is better than all of them)."""
    plateau = 0.1 + 0.5 * config["x"]
    tau = 1.0 + 30.0 * (1.0 - config["x"]) ** 2
    return plateau + (1.0 - plateau) * math.exp(-epoch / tau)


def late_blooming(config, trial):
    return train_by_epochs(late_bloomer, config, trial)


def train_by_epochs(curve, config, trial):
    state = trial.load_checkpoint() or {"epoch": 0, "starts": []}
    state["starts"].append(state["epoch"] + 1)
    loss = None
    for epoch in range(state["epoch"] + 1, int(trial.budget) + 1):
        loss = curve(config, epoch)
        state["epoch"] = epoch
        trial.save_checkpoint(state)
        trial.report(epoch, loss=loss, accuracy=1.0 - loss)
    return {"loss": loss, "accuracy": 1.0 - loss}


def by_subsample(config, trial):
    """A fresh run at each level: one report, at the subsample size it trained on."""
    loss = config["x"] + 0.1 / trial.budget
    trial.report(trial.budget, loss=loss)
    return loss


def swallowing(config, trial):
    """Wraps its reports in a blanket ``except Exception``, as logging code often does: the
    TrialPruned/TrialPaused that ``report`` raises never unwinds it."""
    loss = None
    for epoch in range(1, int(trial.budget) + 1):
        loss = loss_at(config, epoch)
        try:
            trial.report(epoch, loss=loss)
        except Exception:  # noqa: BLE001 - the misuse under test
            pass
    return loss
