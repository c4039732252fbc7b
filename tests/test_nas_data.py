"""Data for architecture search: splits of arrays, and the labels they accept."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.data import split_arrays  # noqa: E402

IMAGES = np.random.default_rng(0).random((30, 1, 4, 4))


@pytest.mark.parametrize("labels, why", [
    (np.random.default_rng(1).random(30), "fractions were cast to class 0"),
    (np.arange(30) % 3 - 1, "a label of -1 failed at the first training batch, inside torch"),
    (np.array(["a", "b", "c"] * 10), "strings failed inside numpy"),
])
def test_labels_that_are_not_class_indices_are_refused(labels, why):
    with pytest.raises(tl.ConfigError, match="labels must be integer class indices"):
        split_arrays(IMAGES, labels)


def test_integral_float_labels_are_class_indices():
    data = split_arrays(IMAGES, (np.arange(30) % 3).astype(float))
    assert data.num_classes == 3
    assert data.train.dataset.tensors[1].dtype.is_floating_point is False


def test_splits_say_when_their_sizes_are_not_counts():
    data = nas.digits(limit=30)
    with pytest.raises(tl.ConfigError, match="num_classes must be a positive integer"):
        nas.DataSplits(data.train, data.valid, data.test, in_channels=1, num_classes=0)


def test_the_digits_know_how_to_build_them_again():
    data = nas.digits(batch_size=16, seed=3, limit=50)
    assert data.recipe == {"function": "tunelab.nas.data:digits",
                           "arguments": {"batch_size": 16, "seed": 3, "fractions": [0.6, 0.2], "limit": 50}}
    assert split_arrays(IMAGES, np.arange(30) % 3).recipe is None
