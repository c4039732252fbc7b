"""Tests for tunelab.presets: the ready spaces for image classification and object detection."""

from __future__ import annotations

import json

import pytest

import tunelab as tl
from tunelab.distributions import Categorical, Float
from tunelab.errors import SpaceError
from tunelab.space import Space

BACKBONES = [
    "MobileNetV2_0.25", "MobileNetV3_small", "MobileNetV3_large", "ResNet18_V1b", "ResNet34_V1b",
    "ResNet50_V1b", "ResNet101_V1b", "VGG16_bn", "se_ResNext50_32x4d", "ResNeSt50", "ResNeSt200",
]
IMAGE_KEYS = {"backbone", "lr", "batch_size", "momentum", "weight_decay"}


def _check_image_classification(space: dict) -> None:
    backbone = space["backbone"]
    assert isinstance(backbone, Categorical) and backbone.ordered
    assert backbone.to_json()["type"] == "ordinal"
    assert backbone.options == BACKBONES

    lr = space["lr"]
    assert isinstance(lr, Float) and lr.log and (lr.low, lr.high) == (1e-6, 1e-1)

    batch = space["batch_size"]
    assert isinstance(batch, Categorical)
    assert batch.options == [8, 16, 32, 64, 128, 256, 512]
    assert all(isinstance(b, int) and b & (b - 1) == 0 for b in batch.options)

    momentum = space["momentum"]
    assert isinstance(momentum, Float) and not momentum.log and (momentum.low, momentum.high) == (0.85, 0.98)

    wd = space["weight_decay"]
    assert isinstance(wd, Float) and wd.log and (wd.low, wd.high) == (1e-6, 1e-2)


def test_image_classification_preset():
    space = tl.presets.image_classification()
    assert isinstance(space, dict) and set(space) == IMAGE_KEYS
    _check_image_classification(space)
    assert not Space(space).is_conditional


def test_object_detection_preset_adds_the_detector():
    space = tl.presets.object_detection()
    assert set(space) == IMAGE_KEYS | {"detector"}
    _check_image_classification(space)
    detector = space["detector"]
    assert isinstance(detector, Categorical) and not detector.ordered
    assert detector.options == ["faster-rcnn", "ssd", "yolo-v3", "center-net"]


@pytest.mark.parametrize("make", [tl.presets.image_classification, tl.presets.object_detection])
def test_each_call_returns_a_fresh_dict(make):
    first = make()
    first["epochs"] = 30
    first["lr"] = tl.loguniform(1e-4, 1e-2)
    first["backbone"].options.append("MyNet")
    second = make()
    assert second is not first and "epochs" not in second
    assert (second["lr"].low, second["lr"].high) == (1e-6, 1e-1)
    assert second["backbone"].options == BACKBONES
    assert tl.presets.BACKBONES == BACKBONES


def test_presets_by_name():
    assert tl.presets.get("image_classification") == tl.presets.image_classification()
    assert tl.presets.get("object_detection") == tl.presets.object_detection()
    with pytest.raises(SpaceError, match=r"unknown preset 'segmentation'; known presets: image_classification, "
                                         r"object_detection"):
        tl.presets.get("segmentation")


@pytest.mark.parametrize("make", [tl.presets.image_classification, tl.presets.object_detection])
def test_presets_survive_json(make):
    space = Space(make())
    assert Space.from_json(json.loads(json.dumps(space.to_json()))) == space


@pytest.mark.parametrize("make", [tl.presets.image_classification, tl.presets.object_detection])
def test_presets_are_usable_with_tune(make):
    space = make()
    space["epochs"] = 2

    def objective(config):
        return config["lr"] * config["batch_size"] + BACKBONES.index(config["backbone"])

    study = tl.tune(objective, space, metric="loss", mode="min", n_trials=3, storage=None, seed=0,
                    progress=False)
    assert study.counts()["completed"] == 3
    validator = Space(space)
    for trial in study.trials:
        assert validator.validate(trial.config) == trial.config
        assert trial.config["epochs"] == 2
        assert set(trial.config) == set(space)
    assert study.best.value == min(t.value for t in study.trials)
