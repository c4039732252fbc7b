"""Tables and convergence plots from benchmark runs.

Plots are self-contained HTML pages with inline SVG drawn here (no CDN, no plotting library),
one per problem: the mean best-so-far value per searcher against the trial number, with the
gap to the known optimum on a log scale where the optimum is known.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from tunelab.benchmarks.problems import get_problem
from tunelab.benchmarks.runner import Run

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]


def curves(runs: list[Run]) -> dict[str, dict[str, np.ndarray]]:
    """problem -> searcher -> (seeds, trials) array of best-so-far values."""
    grouped: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda r: r.seed):
        grouped[run.problem][run.searcher].append(run.best)
    return {p: {s: np.array(v) for s, v in by.items()} for p, by in grouped.items()}


def at(curve: np.ndarray, trials: int) -> np.ndarray:
    return curve[:, min(trials, curve.shape[1]) - 1]


def mean_ranks(runs: list[Run], trials: int) -> dict[str, float]:
    """Per problem, searchers ranked by mean best value at ``trials`` (1 = best); averaged."""
    ranks: dict[str, list[float]] = defaultdict(list)
    for by in curves(runs).values():
        names = sorted(by)
        means = np.array([at(by[s], trials).mean() for s in names])
        order = means.argsort().argsort() + 1.0
        for value in np.unique(means):  # ties share their mean rank
            order[means == value] = order[means == value].mean()
        for name, rank in zip(names, order):
            ranks[name].append(float(rank))
    return {name: float(np.mean(r)) for name, r in ranks.items()}


def overheads(runs: list[Run]) -> dict[str, float]:
    per: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        per[run.searcher].append(run.overhead)
    return {name: float(np.mean(v)) for name, v in per.items()}


def write_plots(runs: list[Run], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for problem, by in curves(runs).items():
        path = folder / f"{problem}.html"
        path.write_text(_page(problem, by), encoding="utf-8")
        written.append(path)
    (folder / "runs.json").write_text(json.dumps([run.__dict__ for run in runs]), encoding="utf-8")
    return written


def _page(problem: str, by: dict[str, np.ndarray]) -> str:
    optimum = get_problem(problem).optimum
    series = {s: c.mean(axis=0) for s, c in sorted(by.items())}
    log = optimum is not None
    transform = (lambda v: np.log10(np.maximum(v - optimum, 1e-8))) if log else (lambda v: v)
    ys = {s: transform(v) for s, v in series.items()}
    low = min(float(v.min()) for v in ys.values())
    high = max(float(v[min(2, len(v) - 1):].max()) for v in ys.values())
    high = high if high > low else low + 1.0
    n = max(len(v) for v in ys.values())
    width, height, pad = 820, 420, 70

    def px(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * i / max(n - 1, 1)
        y = height - pad - (height - 2 * pad) * (min(max(v, low), high) - low) / (high - low)
        return x, y

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>']
    for k in range(5):
        v = low + (high - low) * k / 4
        _, y = px(0, v)
        label = f"1e{v:.1f}" if log else f"{v:.4g}"
        parts.append(f'<text x="{pad - 5}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for k in range(5):
        i = round((n - 1) * k / 4)
        x, _ = px(i, low)
        parts.append(f'<text x="{x:.1f}" y="{height - pad + 18}" text-anchor="middle">{i + 1}</text>')
    for idx, (name, v) in enumerate(ys.items()):
        colour = _COLOURS[idx % len(_COLOURS)]
        points = " ".join("%.1f,%.1f" % px(i, float(val)) for i, val in enumerate(v))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{width - pad + 5}" y="{pad + 16 * idx}" fill="{colour}">{html.escape(name)}</text>')
    ylabel = "log10(best - optimum)" if log else "best value"
    parts.append(f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">trial</text>')
    parts.append(f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" '
                 f'text-anchor="middle">{ylabel}</text></svg>')
    title = html.escape(f"{problem}: mean best value over {len(next(iter(by.values())))} seeds")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>" \
           f"<body><h2>{title}</h2>{''.join(parts)}</body></html>"
