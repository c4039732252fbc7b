"""DARTS' supernet: every edge of every cell is a mixed operation, weighted by a softmax over
architecture parameters (one row per edge, one column per candidate operation).

Unlike a discrete cell, a search cell connects each node to *every* earlier state; the
architecture weights say which connections and operations matter, and :func:`derive` keeps the
two strongest incoming edges of each node with their strongest operation.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from tunelab.errors import ConfigError, SpaceError
from tunelab.nas.genotype import CELL_KINDS, INPUTS_PER_NODE, PRIMITIVES, Genotype
from tunelab.nas.network import Stem, input_adapters, reduction_layers
from tunelab.nas.ops import MixedOp


def edge_count(nodes: int) -> int:
    """Node i reads the two cell inputs and the i nodes before it: 2 + 3 + ... + (nodes + 1)."""
    return sum(node + 2 for node in range(nodes))


class SearchCell(nn.Module):
    def __init__(self, nodes: int, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool, primitives: tuple[str, ...]):
        super().__init__()
        self.nodes, self.reduction = nodes, reduction
        self.preprocess0, self.preprocess1 = input_adapters(c_prev_prev, c_prev, channels, reduction_prev,
                                                            affine=False)
        self.edges = nn.ModuleList(MixedOp(channels, 2 if reduction and src < 2 else 1, primitives)
                                   for node in range(nodes) for src in range(node + 2))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, offset = [self.preprocess0(s0), self.preprocess1(s1)], 0
        for _ in range(self.nodes):
            states.append(sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states)))
            offset += len(states) - 1
        return torch.cat(states[2:], dim=1)


class SearchNetwork(nn.Module):
    """The over-parameterised network DARTS trains; ``alphas`` are its architecture parameters."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: int = 8, layers: int = 3,
                 nodes: int = 4, stem_multiplier: int = 2, primitives: tuple[str, ...] = PRIMITIVES):
        super().__init__()
        if layers < 2:
            raise SpaceError(f"a search network needs at least 2 layers (a normal and a reduction cell); got {layers}")
        if nodes < 1:
            raise SpaceError(f"a cell needs at least one node; got {nodes}")
        self.nodes, self.primitives = nodes, tuple(primitives)
        self.stem = Stem(in_channels, stem_multiplier * channels)
        c_prev_prev = c_prev = stem_multiplier * channels
        reduction_prev, cells = False, []
        for layer in range(layers):
            reduction = layer in reduction_layers(layers)
            channels = channels * 2 if reduction else channels
            cells.append(SearchCell(nodes, c_prev_prev, c_prev, channels, reduction, reduction_prev, self.primitives))
            c_prev_prev, c_prev, reduction_prev = c_prev, nodes * channels, reduction
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_prev, num_classes)
        # Small random values: every operation starts almost equally weighted.
        shape = (edge_count(nodes), len(self.primitives))
        self.alphas = nn.ParameterDict({kind: nn.Parameter(1e-3 * torch.randn(shape)) for kind in CELL_KINDS})

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> dict[str, nn.Parameter]:
        """The network weights by name (everything except the architecture parameters)."""
        return {name: p for name, p in self.named_parameters() if not name.startswith("alphas.")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {kind: torch.softmax(alpha, dim=-1) for kind, alpha in self.alphas.items()}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights["reduce" if cell.reduction else "normal"])
        return self.classifier(s1.mean(dim=(2, 3)))

    def genotype(self) -> Genotype:
        return derive({kind: alpha.detach() for kind, alpha in self.alphas.items()}, self.nodes, self.primitives)


def derive(alphas: Mapping[str, torch.Tensor], nodes: int, primitives: tuple[str, ...] = PRIMITIVES) -> Genotype:
    """The discrete cell the architecture weights point to.

    An edge's strength is the softmax weight of its best operation other than ``none``; each
    node keeps its two strongest incoming edges (ties go to the earlier input), each with that
    best operation. ``none`` is left out because it would make every edge look dispensable.

    ``alphas`` maps each cell kind (``normal`` and ``reduce``) to its weights, as
    ``SearchNetwork.alphas`` and ``DartsResult.alphas`` do; a missing kind is refused by name here
    (it used to surface as a bare KeyError)."""
    # duck-typed, not isinstance(Mapping): a network's nn.ParameterDict is no Mapping, and is welcome
    if not (hasattr(alphas, "keys") and hasattr(alphas, "__getitem__")):
        raise ConfigError(f"derive: alphas must be a dict with {' and '.join(map(repr, CELL_KINDS))} weights "
                          f"(as DartsResult.alphas); got {type(alphas).__name__}")
    missing = [kind for kind in CELL_KINDS if kind not in alphas.keys()]
    if missing:
        raise ConfigError(f"derive: alphas lack the {' and '.join(map(repr, missing))} cell weights; a cell "
                          f"needs both {' and '.join(map(repr, CELL_KINDS))} (as DartsResult.alphas); "
                          f"got keys: {', '.join(sorted(map(str, alphas.keys()))) or 'none'}")
    if "none" in primitives and len(primitives) == 1:
        raise SpaceError("derive needs at least one operation besides 'none'")
    usable = torch.tensor([name != "none" for name in primitives])
    cells = {}
    for kind in CELL_KINDS:
        alpha = torch.as_tensor(alphas[kind], dtype=torch.float32).detach().cpu()  # a GPU's too
        if alpha.shape != (edge_count(nodes), len(primitives)):
            raise SpaceError(f"{kind} alphas must have shape {(edge_count(nodes), len(primitives))}; "
                             f"got {tuple(alpha.shape)}")
        weights = torch.softmax(alpha, dim=-1).masked_fill(~usable, -1.0)
        edges, offset = [], 0
        for node in range(nodes):
            rows = weights[offset:offset + node + 2]
            strength, best_op = rows.max(dim=1)
            order = sorted(range(node + 2), key=lambda src: (-float(strength[src]), src))[:INPUTS_PER_NODE]
            edges += [(primitives[int(best_op[src])], src) for src in sorted(order)]
            offset += node + 2
        cells[kind] = tuple(edges)
    return Genotype(**cells)
