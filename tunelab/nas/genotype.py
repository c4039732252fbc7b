"""Genotypes: the discrete description of a cell architecture, and its life as a configuration.

A cell is a small DAG in the DARTS style. Its two inputs are the outputs of the two previous
cells (indices 0 and 1); each of its ``nodes`` intermediate nodes (indices 2, 3, ...) sums two
operations, each applied to an earlier index; the cell's output concatenates all intermediate
nodes. A network stacks *normal* cells (which keep the spatial size) and *reduction* cells
(whose operations on the cell inputs use stride 2).

The same genotype is written three ways, and each converts to the others without loss:
a :class:`Genotype` (what code manipulates), a flat configuration of categorical and integer
parameters (what every tunelab searcher proposes and every study stores), and JSON (what a
trial's user attributes keep, and what ``tunelab nas show`` draws).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from tunelab.errors import SpaceError

#: Every operation an edge may carry. ``none`` (no connection) only matters inside DARTS'
#: continuous relaxation, where its weight says how little an edge is needed; a derived cell
#: never contains it.
PRIMITIVES = (
    "none",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "max_pool_3x3",
    "avg_pool_3x3",
)
#: The operations a discrete cell is built from (the searchable ones).
CELL_OPS = tuple(op for op in PRIMITIVES if op != "none")
CELL_KINDS = ("normal", "reduce")
INPUTS_PER_NODE = 2

Edge = tuple[str, int]  # (operation, index of the node it reads)


def _edges(cell: str, edges: Any) -> tuple[Edge, ...]:
    """``edges`` as (operation, input index) pairs, or a SpaceError naming the one that is not."""
    out = []
    for index, edge in enumerate(edges):
        try:
            op, src = edge
        except (TypeError, ValueError):
            raise SpaceError(f"{cell} cell, edge {index}: an edge is an (operation, input index) pair; "
                             f"got {edge!r}") from None
        if isinstance(src, bool) or not isinstance(src, numbers.Integral) and not (isinstance(src, str) and src.isdigit()):
            raise SpaceError(f"{cell} cell, edge {index}: the input must be an integer index; got {src!r}")
        out.append((str(op), int(src)))
    return tuple(out)


def param_name(cell: str, node: int, slot: int, what: str) -> str:
    """Name of one choice in the flat configuration, e.g. ``normal_n0_op1``."""
    return f"{cell}_n{node}_{what}{slot}"


@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell: for each intermediate node, its two (operation, input) edges."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]

    def __post_init__(self) -> None:
        normal, reduce = (_edges(kind, getattr(self, kind)) for kind in CELL_KINDS)
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)
        if len(normal) != len(reduce):
            raise SpaceError(f"normal and reduction cells need the same number of edges; got {len(normal)} "
                             f"and {len(reduce)}")
        if not normal or len(normal) % INPUTS_PER_NODE:
            raise SpaceError(f"a cell has {INPUTS_PER_NODE} edges per node; got {len(normal)} edges")
        for cell in CELL_KINDS:
            for index, (op, src) in enumerate(getattr(self, cell)):
                node = index // INPUTS_PER_NODE
                if op not in PRIMITIVES:
                    raise SpaceError(f"{cell} cell, node {node}: unknown operation {op!r}; "
                                     f"known: {', '.join(PRIMITIVES)}")
                if not 0 <= src < node + 2:
                    raise SpaceError(f"{cell} cell, node {node}: input {src} does not exist yet "
                                     f"(node {node} may read 0..{node + 1})")

    @property
    def nodes(self) -> int:
        return len(self.normal) // INPUTS_PER_NODE

    @property
    def concat(self) -> range:
        """Indices of the states whose concatenation is the cell's output."""
        return range(2, 2 + self.nodes)

    def cell(self, kind: str) -> tuple[Edge, ...]:
        if kind not in CELL_KINDS:
            raise SpaceError(f"cell kind must be one of {CELL_KINDS}; got {kind!r}")
        return getattr(self, kind)

    def edges(self, kind: str) -> Iterator[tuple[int, int, str, int]]:
        """(node, slot, operation, input) for every edge of one cell."""
        for index, (op, src) in enumerate(self.cell(kind)):
            yield index // INPUTS_PER_NODE, index % INPUTS_PER_NODE, op, src

    # -- conversions ------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for kind in CELL_KINDS:
            for node, slot, op, src in self.edges(kind):
                config[param_name(kind, node, slot, "op")] = op
                config[param_name(kind, node, slot, "in")] = src
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Genotype":
        """The genotype in a configuration of :func:`tunelab.nas.cell_space` (other keys are ignored)."""
        cells = {}
        for kind in CELL_KINDS:
            edges, node = [], 0
            while param_name(kind, node, 0, "op") in config:
                for slot in range(INPUTS_PER_NODE):
                    try:
                        edges.append((config[param_name(kind, node, slot, "op")],
                                      config[param_name(kind, node, slot, "in")]))
                    except KeyError as missing:
                        raise SpaceError(f"the configuration lacks {missing} of the {kind} cell") from None
                node += 1
            cells[kind] = tuple(edges)
        if not cells["normal"]:
            raise SpaceError(f"not a cell configuration (no {param_name('normal', 0, 0, 'op')!r}); "
                             f"keys: {', '.join(sorted(config)) or 'none'}")
        return cls(**cells)

    def to_json(self) -> dict[str, Any]:
        return {kind: [[op, src] for op, src in self.cell(kind)] for kind in CELL_KINDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[Sequence[Any]]]) -> "Genotype":
        if not isinstance(data, Mapping) or any(kind not in data for kind in CELL_KINDS):
            raise SpaceError(f"a stored genotype is a dict with 'normal' and 'reduce' edge lists; got {data!r}")
        try:
            return cls(**{kind: tuple((op, src) for op, src in data[kind]) for kind in CELL_KINDS})
        except (TypeError, ValueError) as err:
            if isinstance(err, SpaceError):
                raise
            raise SpaceError(f"a genotype edge is a pair [operation, input]; got {data!r}") from None

    def describe(self, kind: str) -> str:
        """A cell as text: one line per node, e.g. ``node 2 = sep_conv_3x3(0) + skip_connect(1)``."""
        lines = []
        for node in range(self.nodes):
            edges = self.cell(kind)[node * INPUTS_PER_NODE:(node + 1) * INPUTS_PER_NODE]
            terms = " + ".join(f"{op}({_state_name(src)})" for op, src in edges)
            lines.append(f"  {_state_name(node + 2)} = {terms}")
        lines.append(f"  output = concat({', '.join(_state_name(i) for i in self.concat)})")
        return "\n".join(lines)


def _state_name(index: int) -> str:
    """c_{k-2}, c_{k-1} for the cell inputs; 0, 1, ... for the intermediate nodes."""
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else str(index - 2)
