"""Synthetic learning-curve families with known properties, for what recorded tables cannot show.

* ``powerlaw``: power-law curves whose ranking at every epoch is the final ranking, up to
  config-dependent learning speeds: the friendly case, where cheap rungs tell the truth.
* ``crossing``: the configurations that learn fastest plateau highest, so early rankings
  mislead: a scheduler that trusts its first rung too much is punished here.
* ``overfit``: wide models with little dropout reach their lowest error early and then get
  worse, and every epoch's error carries a little evaluation noise. No curve family the
  ``curve`` scheduler and the forecasting rungs fit can rise again, so this is the fair test of
  a forecast: the shape lies outside what it can express, as real curves often do.
* ``subsample``: a fresh-run fidelity (a fraction of the data): each level is trained from
  scratch and costs in proportion to its size; a larger subsample lowers the error.

All are deterministic functions of the configuration (a fixed bowl with a known optimum, error
in [0, 1]; ``overfit``'s noise is seeded by the configuration); the costs differ between
configurations as real ones do.
"""

from __future__ import annotations

from abc import abstractmethod

import hashlib
import math
from typing import Any, Mapping

import numpy as np

from tunelab import distributions as d
from tunelab.benchmarks.tasks import Curve, Task
from tunelab.fidelity import Fidelity

_OPTIMUM = np.asarray([0.3, 0.7, 0.45, 0.2])
_WEIGHTS = np.asarray([1.0, 0.6, 0.35, 0.15])


def _space() -> dict[str, Any]:
    return {"lr": d.loguniform(1e-4, 1.0), "momentum": d.uniform(0.0, 1.0), "width": d.randint(8, 512, log=True),
            "dropout": d.uniform(0.0, 0.8)}


def _unit(config: Mapping[str, Any]) -> np.ndarray:
    return np.asarray([
        (math.log10(config["lr"]) + 4) / 4, config["momentum"],
        (math.log2(config["width"]) - 3) / 6, config["dropout"] / 0.8,
    ])


def _final_error(u: np.ndarray) -> float:
    """0.04 at the optimum, rising to about 0.9 at the far corners."""
    return float(0.04 + 0.86 * (1 - math.exp(-3.0 * float(_WEIGHTS @ (u - _OPTIMUM) ** 2))))


class _EpochTask(Task):
    """Curves over ``epochs`` resumable epochs; wider models cost more per epoch."""

    def __init__(self, epochs: int = 81):
        self.space = _space()
        self.fidelity = Fidelity("epochs", 1, epochs, resumable=True)

    def curve(self, config: Mapping[str, Any]) -> Curve:
        u = _unit(config)
        t = np.arange(1, int(self.fidelity.max) + 1, dtype=float)
        return Curve(self.shape(u, _final_error(u), t), np.full(len(t), 0.5 + 2.0 * u[2]))

    @abstractmethod
    def shape(self, u: np.ndarray, final: float, t: np.ndarray) -> np.ndarray:
        ...


class PowerLawTask(_EpochTask):
    name, metric, mode = "powerlaw", "error", "min"

    def shape(self, u: np.ndarray, final: float, t: np.ndarray) -> np.ndarray:
        speed = 0.5 + 0.6 * u[1]  # momentum learns faster, but ends in the same place
        return final + (0.95 - final) * (1 - np.exp(-2.0 / t ** speed)) / (1 - math.exp(-2.0))


class CrossingTask(_EpochTask):
    name, metric, mode = "crossing", "error", "min"

    def shape(self, u: np.ndarray, final: float, t: np.ndarray) -> np.ndarray:
        # A large learning rate learns fast and plateaus higher; a small one is slow but ends low.
        plateau = final + 0.25 * u[0]
        tau = 1.0 + 40.0 * (1 - u[0]) ** 3
        return plateau + (0.95 - plateau) * np.exp(-t / tau)


class OverfitTask(_EpochTask):
    name, metric, mode = "overfit", "error", "min"

    #: Standard deviation of the evaluation noise on every epoch's error (a validation set of a
    #: few thousand samples measures an error near 0.1 to about this precision).
    NOISE = 0.003

    def shape(self, u: np.ndarray, final: float, t: np.ndarray) -> np.ndarray:
        # A large learning rate learns fast; a wide model with little dropout overfits: its error
        # rises with the square of the epochs trained, so it looks best early and ends worse.
        tau = 1.0 + 20.0 * (1 - u[0]) ** 2
        overfit = 0.3 * u[2] * (1 - u[3]) ** 2
        clean = final + (0.95 - final) * np.exp(-t / tau) + overfit * (t / t[-1]) ** 2
        seed = int.from_bytes(hashlib.blake2b(np.round(u, 12).tobytes(), digest_size=8).digest(), "little")
        return np.clip(clean + np.random.default_rng(seed).normal(0.0, self.NOISE, len(t)), 0.0, 1.0)


class SubsampleTask(Task):
    name, metric, mode = "subsample", "error", "min"

    def __init__(self):
        self.space = _space()
        self.fidelity = Fidelity("subsample", 1 / 27, 1.0, resumable=False)

    def report_steps(self, start: float, budget: float) -> list[float]:
        return [float(budget)]

    def value(self, config: Mapping[str, Any], step: float) -> float:
        u = _unit(config)
        # Less data: more error, more so for wide models that overfit a small sample.
        return _final_error(u) + (0.05 + 0.1 * u[2]) * (1 / math.sqrt(step) - 1)

    def cost(self, config: Mapping[str, Any], start: float, step: float) -> float:
        return 60.0 * step * (0.5 + 2.0 * _unit(config)[2])


SYNTHETIC = {"powerlaw": PowerLawTask, "crossing": CrossingTask, "overfit": OverfitTask,
             "subsample": SubsampleTask}
