"""DataSplits whose declared shape disagrees with its batches are refused up front, by name."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import torch  # noqa: E402

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.data import split_arrays  # noqa: E402

IMAGES = np.random.default_rng(0).random((40, 1, 4, 4))
LABELS = np.arange(40) % 3


def _relabelled(**declared) -> nas.DataSplits:
    data = split_arrays(IMAGES, LABELS, batch_size=8)
    return nas.DataSplits(data.train, data.valid, data.test, **{"in_channels": 1, "num_classes": 3, **declared})


CONFIG = nas.Genotype(normal=(("skip_connect", 0), ("skip_connect", 1)),
                      reduce=(("max_pool_3x3", 0), ("skip_connect", 1))).to_config()


@pytest.mark.parametrize("declared, message", [
    ({"in_channels": 3}, r"DataSplits says in_channels=3, and its training batches have 1 channel "),
    ({"num_classes": 2}, r"DataSplits says num_classes=2 \(labels 0..1\), and its training batches have label 2"),
])
def test_a_mismatch_is_named_before_any_training(declared, message):
    data = _relabelled(**declared)
    with pytest.raises(tl.ConfigError, match=message):
        nas.retrain(CONFIG, data, epochs=1, channels=2, layers=2)
    with pytest.raises(tl.ConfigError, match=message):
        nas.darts_search(data, epochs=1, nodes=1, channels=2, layers=2)
    objective = nas.ArchitectureObjective(data, epochs=1, channels=2, layers=2)
    study = tl.tune(objective, nas.cell_space(1), metric="accuracy", mode="max", n_trials=1, seed=0)
    assert message.split(",")[0].replace("\\", "") in study.trials[0].error


def test_the_check_runs_once_and_leaves_the_random_state_alone():
    data = _relabelled()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    data.check_batches()
    assert torch.equal(torch.get_rng_state(), before)  # a seeded run trains as it did without it
    data.train = None  # checked once: not looked at again
    data.check_batches()
