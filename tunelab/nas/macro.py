"""Networks of the macro space: a plain stack of layers, one width (and kernel) per layer."""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

from torch import nn

from tunelab.errors import SpaceError

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}


def build_macro(config: Mapping[str, Any], in_channels: int = 1, num_classes: int = 10,
                image_size: int | Sequence[int] = 8) -> nn.Sequential:
    """The network a :func:`tunelab.nas.macro_space` configuration describes.

    ``image_size`` is the side of square images, or (height, width): an MLP's first layer takes
    ``in_channels * height * width`` inputs, so 8x12 images built as 8x8 (or 12x12) failed at
    their first batch with a shape error from torch.

    A CNN keeps the spatial size with padded convolutions and halves it after every second layer
    (while both sides are larger than 2), then pools globally; an MLP flattens the image first."""
    height, width = _sides(image_size)
    try:
        kind, layers, activation = config["kind"], int(config["layers"]), _ACTIVATIONS[config["activation"]]
        widths = [int(config[f"width_{i}"]) for i in range(layers)]
        kernels = [int(config[f"kernel_{i}"]) for i in range(layers)] if kind == "cnn" else []
    except KeyError as missing:
        raise SpaceError(f"not a macro-space configuration: it lacks {missing}") from None
    modules: list[nn.Module] = []
    if kind == "mlp":
        previous = in_channels * height * width
        modules.append(nn.Flatten())
        for units in widths:
            modules += [nn.Linear(previous, units), activation()]
            previous = units
    elif kind == "cnn":
        previous, size = in_channels, min(height, width)
        for i, (channels, kernel) in enumerate(zip(widths, kernels)):
            modules += [nn.Conv2d(previous, channels, kernel, padding=kernel // 2), nn.BatchNorm2d(channels),
                        activation()]
            if i % 2 == 1 and size > 2:
                modules.append(nn.MaxPool2d(2))
                size //= 2
            previous = channels
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        raise SpaceError(f"macro network kind must be 'cnn' or 'mlp'; got {kind!r}")
    modules.append(nn.Linear(previous, num_classes))
    return nn.Sequential(*modules)


def _sides(image_size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of ``image_size``: one side of a square, or the two sides."""
    sides = (image_size, image_size) if not isinstance(image_size, Sequence) else tuple(image_size)
    if len(sides) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in sides):
        raise SpaceError(f"build_macro: image_size is a positive integer (a square's side) or (height, width); "
                         f"got {image_size!r}")
    return int(sides[0]), int(sides[1])
