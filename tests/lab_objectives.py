"""Objectives with known answers, importable by worker processes and by `tunelab` subcommands
(which find an objective by its recorded import path, 'lab_objectives:quadratic')."""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def quadratic(config, trial):
    """Deterministic: the loss depends strongly on x, weakly on y, not at all on z."""
    loss = 10.0 * (config["x"] - 0.3) ** 2 + 0.1 * (config["y"] - 0.5) ** 2
    for step in (1, 2, 3):
        trial.report(step, loss=loss * (1 + 1.0 / step))
    return {"loss": loss}


def noisy(config, trial):
    """The quadratic plus seed-dependent noise of standard deviation config['noise'] (default 0.5)."""
    rng = np.random.default_rng(trial.seed)
    return {"loss": float((config["x"] - 0.3) ** 2 + rng.normal(0.0, config.get("noise", 0.5)))}


def chatty(config, trial):
    """Prints on both streams, from Python and from a child process, and saves a file."""
    print(f"stdout of trial {trial.number}")
    print(f"stderr of trial {trial.number}", file=sys.stderr)
    sys.stdout.flush()
    os.system(f"echo child process of trial {trial.number}")
    trial.artifact_path("model/weights.txt").write_text(f"x={config['x']}")
    trial.set_user_attr("note", f"attribute of trial {trial.number}")
    trial.report(1, loss=config["x"])
    return config["x"]


def slow(config, trial):
    """Sleeps a little so that trials cost something at a high price per hour."""
    time.sleep(0.02)
    return config["x"]


def predictor(config, trial):
    """A seed-dependent 'model': predictions = truth + noise; returns its predictions."""
    rng = np.random.default_rng(trial.seed)
    truth = np.linspace(0.0, 1.0, 50)
    predictions = truth + rng.normal(0.0, 0.2, size=truth.size)
    return {"loss": float(np.mean((predictions - truth) ** 2)), "predictions": predictions.tolist()}


def shifted(config, trial):
    """Deterministic, unless the environment variable TUNELAB_TEST_SHIFT moves it (a changed setup)."""
    return {"loss": config["x"] + float(os.environ.get("TUNELAB_TEST_SHIFT", "0"))}


def fails_on_round_y(config, trial):
    """The quadratic, failing whenever y is exactly 0, 0.5 or 1 (every point a 3-point sweep tries)."""
    if config["y"] in (0.0, 0.5, 1.0):
        raise ValueError("a round y")
    return quadratic(config, trial)


def fails_above_half(config, trial):
    """Fails for x > 0.5 with an error naming a setting, which TUNELAB_TEST_SHIFT changes."""
    if config["x"] > 0.5:
        raise RuntimeError(f"diverged (setting {os.environ.get('TUNELAB_TEST_SHIFT', '0')})")
    return {"loss": config["x"]}
