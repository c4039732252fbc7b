"""Pictures of a cell: plain text for a terminal, and a self-contained SVG file.

The SVG is written by hand (boxes, curved arrows and labels), so drawing a cell needs no
graphviz or plotting library. States sit left to right in the order they are computed: the two
cell inputs, the intermediate nodes, then the output that concatenates them.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Union

from tunelab.errors import ConfigError
from tunelab.nas.genotype import CELL_KINDS, Genotype, param_name

#: What :func:`describe` and :func:`to_svg` draw: a Genotype, a configuration of
#: :func:`~tunelab.nas.cell_space` (``study.best.config``), or a stored genotype
#: (``trial.user_attrs["genotype"]``, ``{"normal": [...], "reduce": [...]}``).
Architecture = Union[Genotype, Mapping[str, Any]]

_COLOURS = {
    "skip_connect": "#7f7f7f", "sep_conv_3x3": "#1f77b4", "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#2ca02c", "dil_conv_5x5": "#98df8a", "max_pool_3x3": "#d62728",
    "avg_pool_3x3": "#ff7f0e", "none": "#cccccc",
}
_BOX_W, _BOX_H, _GAP, _ROW = 84, 34, 150, 240
_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}


def as_genotype(architecture: Architecture, who: str = "nas") -> Genotype:
    """The genotype of whatever a user holds after a search. ``study.best.config`` is the
    natural thing to pass, and it used to fail with an AttributeError deep in the drawing code;
    a stored genotype (a trial's ``genotype`` attribute) is the other thing users have."""
    if isinstance(architecture, Genotype):
        return architecture
    if isinstance(architecture, Mapping):
        if all(kind in architecture for kind in CELL_KINDS):
            return Genotype.from_json(architecture)
        if param_name("normal", 0, 0, "op") in architecture:
            return Genotype.from_config(architecture)
        keys = ", ".join(sorted(map(str, architecture))) or "none"
        raise ConfigError(f"{who}: this dict is neither a cell configuration (keys like "
                          f"{param_name('normal', 0, 0, 'op')!r}, from nas.cell_space) nor a stored genotype "
                          f"('normal' and 'reduce' edge lists); its keys: {keys}. Macro networks have no cell "
                          "to draw")
    raise ConfigError(f"{who}: expected a nas.Genotype, a cell configuration (study.best.config) or a stored "
                      f"genotype dict; got {type(architecture).__name__}")


def describe(architecture: Architecture) -> str:
    """Both cells as text. ``architecture``: see :data:`Architecture`."""
    genotype = as_genotype(architecture, "describe")
    return "\n".join(f"{_TITLES[kind]}:\n{genotype.describe(kind)}" for kind in CELL_KINDS)


def _label(index: int) -> str:
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else f"node {index - 2}"


def _cell_svg(genotype: Genotype, kind: str, top: float) -> list[str]:
    """The elements of one cell, its row starting at ``top``."""
    n_states = genotype.nodes + 2
    centre_y = top + _ROW / 2 + 10
    xs = [40 + i * _GAP for i in range(n_states + 1)]  # the last column is the output
    ys = [centre_y - 50, centre_y + 50] + [centre_y + (40 if i % 2 else -40) for i in range(genotype.nodes)]
    parts = [f'<text x="20" y="{top + 24}" font-size="16" font-weight="bold">{_TITLES[kind]}</text>']
    for node, slot, op, src in genotype.edges(kind):
        x1, y1 = xs[src] + _BOX_W, ys[src]
        x2, y2 = xs[node + 2], ys[node + 2]
        bend = (-1 if slot == 0 else 1) * (18 + 14 * (node + 2 - src))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + bend
        colour = _COLOURS.get(op, "#000000")
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} Q{cx:.0f},{cy:.0f} {x2:.0f},{y2:.0f}" fill="none" '
                     f'stroke="{colour}" stroke-width="2" marker-end="url(#arrow)"/>')
        lx, ly = (x1 + 2 * cx + x2) / 4, (y1 + 2 * cy + y2) / 4  # the curve's midpoint
        parts.append(f'<text x="{lx:.0f}" y="{ly - 4:.0f}" font-size="11" text-anchor="middle" '
                     f'fill="{colour}">{escape(op)}</text>')
    output_y = centre_y
    for index in genotype.concat:
        parts.append(f'<path d="M{xs[index] + _BOX_W:.0f},{ys[index]:.0f} L{xs[-1]:.0f},{output_y:.0f}" '
                     f'stroke="#bbbbbb" stroke-dasharray="4 3" fill="none" marker-end="url(#arrow)"/>')
    boxes = [(xs[i], ys[i], _label(i), "#e8f0fe" if i < 2 else "#fff7d6") for i in range(n_states)]
    boxes.append((xs[-1], output_y, "output", "#e6f4ea"))
    for x, y, text, fill in boxes:
        parts.append(f'<rect x="{x}" y="{y - _BOX_H / 2:.0f}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
                     f'fill="{fill}" stroke="#333333"/>')
        parts.append(f'<text x="{x + _BOX_W / 2:.0f}" y="{y + 5:.0f}" font-size="13" '
                     f'text-anchor="middle">{escape(text)}</text>')
    return parts


def to_svg(architecture: Architecture, title: str = "") -> str:
    """An SVG document with the normal cell above the reduction cell. ``architecture``: see
    :data:`Architecture`."""
    genotype = as_genotype(architecture, "to_svg")
    width = 40 + (genotype.nodes + 2) * _GAP + _BOX_W + 20
    head = 30 if title else 0
    height = head + _ROW * len(CELL_KINDS)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker></defs>',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        parts.append(f'<text x="20" y="22" font-size="14">{escape(title)}</text>')
    for row, kind in enumerate(CELL_KINDS):
        parts += _cell_svg(genotype, kind, head + row * _ROW)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
