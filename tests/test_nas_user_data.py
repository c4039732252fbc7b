"""A user's own data on the nas trainers: other image shapes, labels as numpy or torch gives them,
channels-last arrays and tiny splits whose last batch holds a single image."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.data import split_arrays  # noqa: E402

RNG = np.random.default_rng(0)
CELL = nas.Genotype(normal=(("sep_conv_3x3", 0), ("skip_connect", 1)),
                    reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1))).to_config()
MLP = {"kind": "mlp", "layers": 1, "activation": "relu", "width_0": 8}


def test_a_macro_mlp_trains_on_images_that_are_not_square():
    data = split_arrays(RNG.random((40, 3, 8, 12)), np.arange(40) % 3, batch_size=8)
    result = nas.retrain(MLP, data, epochs=1, seed=0)
    assert 0.0 <= result["accuracy"] <= 1.0
    net = nas.build_macro(MLP, in_channels=3, num_classes=3, image_size=(8, 12))
    assert net(torch.rand(2, 3, 8, 12)).shape == (2, 3)
    with pytest.raises(tl.SpaceError, match=r"image_size is a positive integer .* or \(height, width\)"):
        nas.build_macro(MLP, image_size=(8, 0))


def _splits(labels: torch.Tensor) -> nas.DataSplits:
    loader = DataLoader(TensorDataset(torch.rand(len(labels), 1, 4, 4), labels), batch_size=8)
    return nas.DataSplits(loader, loader, loader, in_channels=1, num_classes=3)


@pytest.mark.parametrize("labels, got", [
    (torch.arange(24).remainder(3).float(), r"got float32 labels of shape \(8,\)"),
    (torch.arange(24).remainder(3).int(), r"got int32 labels of shape \(8,\)"),
    (torch.arange(24).remainder(3)[:, None], r"got int64 labels of shape \(8, 1\)"),
    (torch.nn.functional.one_hot(torch.arange(24).remainder(3)).float(), r"got float32 labels of shape \(8, 3\)"),
])
def test_labels_that_are_not_class_indices_are_one_clear_error(labels, got):
    data = _splits(labels)
    message = r"DataSplits: its training labels must be class indices, a 1-D integer tensor .*" + got
    with pytest.raises(tl.ConfigError, match=message):
        nas.retrain(CELL, data, epochs=1, channels=2, layers=2)
    with pytest.raises(tl.ConfigError, match=message):
        nas.darts_search(data, epochs=1, nodes=1, channels=2, layers=2)


def test_byte_and_long_labels_still_train():
    for dtype in (torch.uint8, torch.long):
        result = nas.retrain(CELL, _splits(torch.arange(24).remainder(3).to(dtype)), epochs=1, channels=2, layers=2)
        assert 0.0 <= result["accuracy"] <= 1.0


def test_channels_last_arrays_are_refused_with_the_transpose():
    images = RNG.random((30, 16, 16, 3))
    with pytest.raises(tl.ConfigError, match=r"look channels-last \(N, H, W, C\) with 3 channels; .*"
                                             r"x\.transpose\(0, 3, 1, 2\)"):
        split_arrays(images, np.arange(30) % 2)
    data = split_arrays(images.transpose(0, 3, 1, 2), np.arange(30) % 2)
    assert data.in_channels == 3
    assert split_arrays(RNG.random((30, 8, 4, 4)), np.arange(30) % 2).in_channels == 8  # 8 channels of 4x4


def test_a_last_training_batch_of_one_image_is_dropped():
    # 4x4 images shrink to 1x1 after two reduction cells, where batch norm cannot normalise one image:
    # 30 images split 18 / 6 / 6, so batches of 17 leave one image over in training, 5 in validation
    data = split_arrays(RNG.random((30, 1, 4, 4)), np.arange(30) % 2, batch_size=17)
    assert [len(y) for _, y in data.train] == [17]
    assert sum(len(y) for _, y in data.valid) == 6  # validation and test keep every image
    assert 0.0 <= nas.retrain(CELL, data, epochs=1, channels=2)["accuracy"] <= 1.0
    assert 0.0 <= nas.darts_search(data, epochs=1, nodes=1, channels=2).curve[-1]["valid_accuracy"] <= 1.0


def test_darts_steps_the_architecture_past_a_validation_batch_of_one_image():
    valid = split_arrays(RNG.random((35, 1, 4, 4)), np.arange(35) % 2, batch_size=6)  # 21 / 7 / 7
    assert [len(y) for _, y in valid.valid] == [6, 1]
    found = nas.darts_search(valid, epochs=1, nodes=1, channels=2)
    assert found.genotype.nodes == 1 and len(found.curve) == 2
