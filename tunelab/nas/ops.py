"""The candidate operations on an edge, and DARTS' mixed operation over all of them.

Every operation maps C channels to C channels and, with stride 2, an H x W map to
ceil(H/2) x ceil(W/2), so that any operation can stand on any edge and the outputs of a node's
edges can be summed. Each operation records its own name (``op.primitive``), which is how a
built network tells which genotype it came from.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from tunelab.errors import SpaceError
from tunelab.nas.genotype import PRIMITIVES


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm: the unit that adapts a cell input to the cell's width."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """A dilated depthwise-separable convolution: a wide receptive field for few weights."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dilation: int, affine: bool = True):
        padding = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """Two depthwise-separable convolutions in a row (the first may stride), as in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True):
        super().__init__(DilConv(c_in, c_in, kernel, stride, 1, affine), DilConv(c_in, c_out, kernel, 1, 1, affine))


class Zero(nn.Module):
    """No connection: zeros of the output's shape (its weight in a mixed op measures disuse)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size without losing every other pixel: two strided 1x1 convolutions,
    one shifted by a pixel, concatenated. It is the skip connection of a reduction edge."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise SpaceError(f"FactorizedReduce needs an even number of output channels; got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # keeps ceil(H/2) for odd sizes too
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def _pool(kind: type[nn.Module]) -> Callable[[int, int, bool], nn.Module]:
    def make(channels: int, stride: int, affine: bool) -> nn.Module:
        extra = {"count_include_pad": False} if kind is nn.AvgPool2d else {}
        return kind(3, stride=stride, padding=1, **extra)
    return make


_FACTORIES: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda c, stride, affine: Zero(stride),
    "skip_connect": lambda c, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 2, affine),
    "max_pool_3x3": _pool(nn.MaxPool2d),
    "avg_pool_3x3": _pool(nn.AvgPool2d),
}
assert set(_FACTORIES) == set(PRIMITIVES)


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """The operation ``name`` on ``channels`` channels; it remembers its name as ``.primitive``."""
    if name not in _FACTORIES:
        raise SpaceError(f"unknown operation {name!r}; known: {', '.join(PRIMITIVES)}")
    if stride not in (1, 2):
        raise SpaceError(f"stride must be 1 or 2; got {stride!r}")
    op = _FACTORIES[name](channels, stride, affine)
    op.primitive = name
    return op


class MixedOp(nn.Module):
    """DARTS' continuous relaxation of one edge: the weighted sum of every candidate operation.

    Pools get a parameter-free batch norm so that their scale matches the convolutions' and the
    architecture weights compare like with like."""

    def __init__(self, channels: int, stride: int, primitives: tuple[str, ...] = PRIMITIVES):
        super().__init__()
        self.primitives = tuple(primitives)
        ops = []
        for name in self.primitives:
            op = make_op(name, channels, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))
