"""Ready search spaces whose ranges carry over well to a new data set.

They are a starting point, not an answer: the ranges are wide on purpose (a space that is too
small may miss the good values), and each returns a fresh plain dict that you can edit before
tuning, e.g. ``space = tl.presets.image_classification(); space["epochs"] = 30``.
"""

from __future__ import annotations

from typing import Any

from tunelab.distributions import choice, loguniform, ordinal, uniform
from tunelab.errors import SpaceError

#: Backbones ordered from small and fast to large and accurate.
BACKBONES = [
    "MobileNetV2_0.25",
    "MobileNetV3_small",
    "MobileNetV3_large",
    "ResNet18_V1b",
    "ResNet34_V1b",
    "ResNet50_V1b",
    "ResNet101_V1b",
    "VGG16_bn",
    "se_ResNext50_32x4d",
    "ResNeSt50",
    "ResNeSt200",
]

#: Powers of two suit the hardware; for convergence any value in the range works about as well.
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512]

DETECTORS = ["faster-rcnn", "ssd", "yolo-v3", "center-net"]


def image_classification() -> dict[str, Any]:
    """Backbone, learning rate, batch size, momentum and weight decay for fine-tuning a classifier."""
    return {
        "backbone": ordinal(BACKBONES),
        "lr": loguniform(1e-6, 1e-1),
        "batch_size": ordinal(BATCH_SIZES),
        "momentum": uniform(0.85, 0.98),
        "weight_decay": loguniform(1e-6, 1e-2),
    }


def object_detection() -> dict[str, Any]:
    """The image-classification space plus the choice of detector."""
    return {"detector": choice(DETECTORS), **image_classification()}


PRESETS = {"image_classification": image_classification, "object_detection": object_detection}


def get(name: str) -> dict[str, Any]:
    """A preset by name, with a clear error listing the known ones."""
    if not isinstance(name, str) or name not in PRESETS:
        raise SpaceError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]()
