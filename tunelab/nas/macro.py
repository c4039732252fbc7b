"""Networks of the macro space: a plain stack of layers, one width (and kernel) per layer."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from tunelab.errors import SpaceError

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}


def build_macro(config: Mapping[str, Any], in_channels: int = 1, num_classes: int = 10,
                image_size: int = 8) -> nn.Sequential:
    """The network a :func:`tunelab.nas.macro_space` configuration describes.

    A CNN keeps the spatial size with padded convolutions and halves it after every second layer
    (while it is larger than 2), then pools globally; an MLP flattens the image first."""
    try:
        kind, layers, activation = config["kind"], int(config["layers"]), _ACTIVATIONS[config["activation"]]
        widths = [int(config[f"width_{i}"]) for i in range(layers)]
        kernels = [int(config[f"kernel_{i}"]) for i in range(layers)] if kind == "cnn" else []
    except KeyError as missing:
        raise SpaceError(f"not a macro-space configuration: it lacks {missing}") from None
    modules: list[nn.Module] = []
    if kind == "mlp":
        previous = in_channels * image_size * image_size
        modules.append(nn.Flatten())
        for width in widths:
            modules += [nn.Linear(previous, width), activation()]
            previous = width
    elif kind == "cnn":
        previous, size = in_channels, image_size
        for i, (width, kernel) in enumerate(zip(widths, kernels)):
            modules += [nn.Conv2d(previous, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), activation()]
            if i % 2 == 1 and size > 2:
                modules.append(nn.MaxPool2d(2))
                size //= 2
            previous = width
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        raise SpaceError(f"macro network kind must be 'cnn' or 'mlp'; got {kind!r}")
    modules.append(nn.Linear(previous, num_classes))
    return nn.Sequential(*modules)
