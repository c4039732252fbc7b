"""A discrete network built from a genotype, and the genotype read back from a built network.

The macro skeleton is DARTS' (sized down for small images): a convolutional stem, ``layers``
cells with reduction cells at one and two thirds of the depth (each doubling the width), global
average pooling and a linear classifier. Each cell adapts its two inputs to its width with 1x1
convolutions (or a factorized reduction when the earlier input is twice as large), then computes
its nodes as the genotype says.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from tunelab.errors import SpaceError
from tunelab.nas.genotype import CELL_KINDS, INPUTS_PER_NODE, Genotype
from tunelab.nas.ops import FactorizedReduce, ReLUConvBN, make_op


def reduction_layers(layers: int) -> set[int]:
    """Where the reduction cells go: at one and two thirds of the depth (as in DARTS)."""
    return {layers // 3, 2 * layers // 3} if layers >= 3 else {layers - 1} if layers == 2 else set()


def input_adapters(c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool,
                   affine: bool = True) -> tuple[nn.Module, nn.Module]:
    """The modules that bring a cell's two inputs to its width (and to the same spatial size)."""
    first = (FactorizedReduce(c_prev_prev, channels, affine) if reduction_prev
             else ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine))
    return first, ReLUConvBN(c_prev, channels, 1, 1, 0, affine)


class Cell(nn.Module):
    """One normal or reduction cell of a genotype."""

    def __init__(self, edges: Sequence[tuple[str, int]], c_prev_prev: int, c_prev: int, channels: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = input_adapters(c_prev_prev, c_prev, channels, reduction_prev)
        self.inputs = tuple(src for _, src in edges)
        self.ops = nn.ModuleList(make_op(op, channels, 2 if reduction and src < 2 else 1) for op, src in edges)
        self.nodes = len(edges) // INPUTS_PER_NODE

    @property
    def edges(self) -> tuple[tuple[str, int], ...]:
        """The (operation, input) edges, read from the operations themselves."""
        return tuple((op.primitive, src) for op, src in zip(self.ops, self.inputs))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.nodes):
            first = node * INPUTS_PER_NODE
            states.append(sum(self.ops[i](states[self.inputs[i]])
                              for i in range(first, first + INPUTS_PER_NODE)))
        return torch.cat(states[2:], dim=1)


class Stem(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels))


class CellNetwork(nn.Module):
    """A stack of cells from one genotype; ``genotype_of(net)`` reads the genotype back."""

    def __init__(self, genotype: Genotype, in_channels: int = 1, num_classes: int = 10, channels: int = 8,
                 layers: int = 3, stem_multiplier: int = 2):
        super().__init__()
        if min(in_channels, num_classes, channels, layers, stem_multiplier) < 1:
            raise SpaceError("CellNetwork: in_channels, num_classes, channels, layers and stem_multiplier "
                             "must all be at least 1")
        self.stem = Stem(in_channels, stem_multiplier * channels)
        c_prev_prev = c_prev = stem_multiplier * channels
        reduction_prev, cells = False, []
        for layer in range(layers):
            reduction = layer in reduction_layers(layers)
            if reduction:
                channels *= 2
            edges = genotype.reduce if reduction else genotype.normal
            cell = Cell(edges, c_prev_prev, c_prev, channels, reduction, reduction_prev)
            cells.append(cell)
            c_prev_prev, c_prev, reduction_prev = c_prev, cell.nodes * channels, reduction
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=(2, 3)))


def genotype_of(network: nn.Module) -> Genotype:
    """The genotype a built :class:`CellNetwork` computes, read from its cells' operations.

    Raises when the network's normal (or reduction) cells disagree, or when it has no cell of
    one kind, since no single genotype describes such a network."""
    found: dict[str, tuple] = {}
    for module in network.modules():
        if isinstance(module, Cell):
            kind = CELL_KINDS[1] if module.reduction else CELL_KINDS[0]
            if found.setdefault(kind, module.edges) != module.edges:
                raise SpaceError(f"the network's {kind} cells differ; it has no single genotype")
    missing = [kind for kind in CELL_KINDS if kind not in found]
    if missing:
        raise SpaceError(f"the network has no {' or '.join(missing)} cell (use at least 2 layers)")
    return Genotype(**found)
