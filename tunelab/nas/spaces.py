"""Architecture search spaces written as ordinary tunelab spaces.

An architecture is a configuration like any other, so every searcher (random, evolution, BO,
the REINFORCE controller...) and every scheduler works on it unchanged, and every study keeps
its architectures the way it keeps hyperparameters. Extra hyperparameters mix in with a dict
merge: ``{**nas.cell_space(), "lr": tl.loguniform(1e-3, 1e-1)}``.
"""

from __future__ import annotations

from typing import Any, Sequence

from tunelab.distributions import choice, randint
from tunelab.errors import SpaceError, check_count
from tunelab.nas.genotype import CELL_KINDS, CELL_OPS, INPUTS_PER_NODE, PRIMITIVES, param_name

ACTIVATIONS = ("relu", "tanh", "gelu", "elu")


def cell_space(nodes: int = 4, ops: Sequence[str] = CELL_OPS) -> dict[str, Any]:
    """The DARTS-style cell space: for each node of the normal and the reduction cell, two
    edges, each an operation (``ops``) applied to one earlier state (the two cell inputs or an
    earlier node). Inputs are integers, so a node may read the same state twice, as in ENAS."""
    check_count("cell_space: nodes", nodes, optional=False, error=SpaceError)
    ops = list(ops)
    unknown = [op for op in ops if op not in CELL_OPS]
    if unknown or not ops:
        # 'none' (no connection) is DARTS' relaxation only: a discrete cell of it computes nothing
        raise SpaceError(f"cell_space: ops must be a non-empty list drawn from {', '.join(CELL_OPS)}; "
                         f"got {ops!r}")
    space: dict[str, Any] = {}
    for kind in CELL_KINDS:
        for node in range(nodes):
            for slot in range(INPUTS_PER_NODE):
                space[param_name(kind, node, slot, "in")] = randint(0, node + 1) if node else choice([0, 1])
                space[param_name(kind, node, slot, "op")] = choice(ops)
    return space


def macro_space(kind: str = "cnn", max_layers: int = 4, widths: Sequence[int] = (16, 32, 64),
                kernels: Sequence[int] = (3, 5), activations: Sequence[str] = ACTIVATIONS) -> dict[str, Any]:
    """A plain feed-forward space: depth, then one width (and kernel size, for a CNN) per layer,
    each active only when the network is that deep, plus one activation for the whole network.
    Build the network with :func:`tunelab.nas.build_macro`."""
    if kind not in ("cnn", "mlp"):
        raise SpaceError(f"macro_space: kind must be 'cnn' or 'mlp'; got {kind!r}")
    check_count("macro_space: max_layers", max_layers, optional=False, error=SpaceError)
    for name, values, allowed in (("widths", widths, "positive integers (channels or units per layer)"),
                                  ("kernels", kernels, "positive odd integers (an even kernel shifts the image)")):
        values = list(values)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                             or (name == "kernels" and v % 2 == 0) for v in values):
            raise SpaceError(f"macro_space: {name} must be a non-empty list of {allowed}; got {values!r}")
    bad = [a for a in activations if a not in ACTIVATIONS]
    if bad or not activations:
        raise SpaceError(f"macro_space: activations must be drawn from {', '.join(ACTIVATIONS)}; got {list(activations)!r}")
    space: dict[str, Any] = {"kind": kind, "activation": choice(list(activations))}
    space["layers"] = randint(1, max_layers) if max_layers > 1 else 1
    for layer in range(max_layers):
        when = {"layers": list(range(layer + 1, max_layers + 1))} if layer else None
        space[f"width_{layer}"] = choice(list(widths), when=when)
        if kind == "cnn":
            space[f"kernel_{layer}"] = choice(list(kernels), when=when)
    return space
