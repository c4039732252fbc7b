"""Figures of a study, made with plotly: optimisation history, parallel coordinates, slices,
contour, importance, learning curves, sensitivity and a comparison of two studies.

Each function returns a plotly Figure; :func:`save_html` writes one as a self-contained page
(plotly.js inside, so it opens offline and can be mailed), :func:`save_png` as an image when a
static renderer (kaleido) is installed. The dashboard draws the same figures in the browser.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tunelab.analysis.compare import best_so_far
from tunelab.errors import ConfigError
from tunelab.trial import TrialState


def _plotly() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise ConfigError("plots need plotly: pip install 'tunelab[plots]'") from None
    return go, make_subplots


def _completed(study: Any) -> list[Any]:
    return [t for t in study.trials if t.state is TrialState.COMPLETED and t.value is not None]


def _axis_values(study: Any, name: str, trials: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Values of one parameter for plotting, and axis settings (categories get their own ticks)."""
    dist = study.space.params[name]
    values = [t.config.get(name) for t in trials]
    options = getattr(dist, "options", None)
    if options is not None:
        labels = [str(o) for o in options]
        return [labels[options.index(v)] if v in options else None for v in values], \
            {"type": "category", "categoryorder": "array", "categoryarray": labels}
    return values, {"type": "log"} if getattr(dist, "log", False) else {}


def history_figure(study: Any) -> Any:
    go, _ = _plotly()
    # One order for the points and the line: the order trials ended (best_so_far's). By trial
    # number, a study run by several workers drew the best-so-far line backwards.
    finished = sorted((t for t in study.trials if t.state.finished), key=lambda t: (t.finished_at or 0, t.number))
    done = [(n, t) for n, t in enumerate(finished, start=1) if t.state is TrialState.COMPLETED and t.value is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[n for n, _ in done], y=[t.value for _, t in done], mode="markers", name="trial",
                             text=[f"trial {t.number}: {t.config}" for _, t in done]))
    curve = best_so_far(study)
    fig.add_trace(go.Scatter(x=[n for n, _ in curve], y=[v for _, v in curve],
                             mode="lines", line={"shape": "hv"}, name="best so far"))
    fig.update_layout(title=f"{study.name}: optimisation history", xaxis_title="trials finished",
                      yaxis_title=study.metric)
    return fig


def parallel_coordinates_figure(study: Any) -> Any:
    go, _ = _plotly()
    trials = _completed(study)
    dims = []
    for name in study.space.dimensions:
        dist = study.space.params[name]
        options = getattr(dist, "options", None)
        values = [t.config.get(name) for t in trials]
        if options is not None:
            codes = [options.index(v) if v in options else math.nan for v in values]
            dims.append({"label": name, "values": codes, "tickvals": list(range(len(options))),
                         "ticktext": [str(o) for o in options]})
        else:
            log = getattr(dist, "log", False)
            dims.append({"label": f"log10 {name}" if log else name,
                         "values": [math.log10(v) if log and v is not None else (math.nan if v is None else v)
                                    for v in values]})
    metric = [t.value for t in trials]
    dims.append({"label": study.metric, "values": metric})
    line = {"color": metric, "colorscale": "Viridis", "showscale": True,
            "reversescale": study.mode == "min"}
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(title=f"{study.name}: parallel coordinates")
    return fig


def slice_figure(study: Any) -> Any:
    go, make_subplots = _plotly()
    names = list(study.space.dimensions) or list(study.space.params)
    trials = _completed(study)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names, shared_yaxes=True)
    for i, name in enumerate(names, start=1):
        values, axis = _axis_values(study, name, trials)
        fig.add_trace(go.Scatter(x=values, y=[t.value for t in trials], mode="markers", name=name,
                                 marker={"color": [t.number for t in trials], "colorscale": "Blues"},
                                 showlegend=False), row=1, col=i)
        fig.update_xaxes(row=1, col=i, **axis)
    fig.update_yaxes(title_text=study.metric, row=1, col=1)
    fig.update_layout(title=f"{study.name}: slices")
    return fig


def contour_figure(study: Any, x: str | None = None, y: str | None = None) -> Any:
    """The metric over two parameters, interpolated between the trials (shown as points)."""
    from scipy.interpolate import griddata

    go, _ = _plotly()
    numeric = [n for n in study.space.dimensions if getattr(study.space.params[n], "options", None) is None]
    x, y = x or (numeric[0] if numeric else None), y or (numeric[1] if len(numeric) > 1 else None)
    if x is None or y is None or x not in numeric or y not in numeric or x == y:
        raise ConfigError(f"a contour needs two different numeric parameters (of {numeric}); got x={x!r}, y={y!r}")
    trials = [t for t in _completed(study) if x in t.config and y in t.config]
    xs, ys = np.array([t.config[x] for t in trials], float), np.array([t.config[y] for t in trials], float)
    zs = np.array([t.value for t in trials], float)
    logx, logy = getattr(study.space.params[x], "log", False), getattr(study.space.params[y], "log", False)
    fx, fy = (np.log10(xs) if logx else xs), (np.log10(ys) if logy else ys)
    fig = go.Figure()
    if len(trials) >= 4 and np.ptp(fx) > 0 and np.ptp(fy) > 0:
        gx, gy = np.linspace(fx.min(), fx.max(), 60), np.linspace(fy.min(), fy.max(), 60)
        grid = griddata((fx, fy), zs, tuple(np.meshgrid(gx, gy)), method="linear")
        fig.add_trace(go.Contour(x=10 ** gx if logx else gx, y=10 ** gy if logy else gy, z=grid,
                                 colorscale="Viridis", reversescale=study.mode == "min", colorbar={"title": study.metric},
                                 connectgaps=False))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="trials", marker={"color": "black", "size": 5}))
    fig.update_xaxes(title_text=x, type="log" if logx else None)
    fig.update_yaxes(title_text=y, type="log" if logy else None)
    fig.update_layout(title=f"{study.name}: {study.metric} over {x} and {y}")
    return fig


def importance_figure(importance: Any, title: str = "parameter importance") -> Any:
    go, _ = _plotly()
    names = list(importance.scores)[::-1]
    fig = go.Figure(go.Bar(x=[importance.scores[n] for n in names], y=names, orientation="h"))
    at = "" if importance.budget is None else f" at budget {importance.budget:g}"
    rest = "" if importance.interactions is None else f"; interactions {importance.interactions:.0%}"
    fig.update_layout(title=f"{title} ({importance.method}, {importance.n_trials} trials{at}{rest})",
                      xaxis_title="share of variance")
    return fig


def curves_figure(study: Any, metric: str | None = None, limit: int = 200) -> Any:
    """Learning curves: each trial's reports of ``metric`` against the step."""
    go, _ = _plotly()
    metric = metric or study.metric
    fig = go.Figure()
    for trial in [t for t in study.trials if t.reports][:limit]:
        points = trial.curve(metric)
        if points:
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                     name=f"trial {trial.number} ({trial.state.value})"))
    fig.update_layout(title=f"{study.name}: learning curves", xaxis_title="step", yaxis_title=metric)
    return fig


def trial_curve_figure(trial: Any) -> Any:
    """Every metric one trial reported, against the step."""
    go, _ = _plotly()
    fig = go.Figure()
    for metric in sorted({k for r in trial.reports for k in r.metrics}):
        points = trial.curve(metric)
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                 name=metric))
    fig.update_layout(title=f"trial {trial.number}: reports", xaxis_title="step")
    return fig


def sensitivity_figure(result: Any) -> Any:
    go, make_subplots = _plotly()
    names = result.ranking
    fig = make_subplots(rows=1, cols=max(len(names), 1), shared_yaxes=True,
                        subplot_titles=[f"{n} (spread {result.sweeps[n].spread:.3g})" for n in names])
    def on_axis(value: Any) -> Any:  # options (True among them) are categories, numbers are numbers
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)

    for i, name in enumerate(names, start=1):
        sweep = result.sweeps[name]
        fig.add_trace(go.Scatter(x=[on_axis(v) for v in sweep.values], y=sweep.metric, mode="lines+markers",
                                 name=name, showlegend=False), row=1, col=i)
        fig.add_trace(go.Scatter(x=[on_axis(result.baseline[name])], y=[result.baseline_value], mode="markers",
                                 marker={"symbol": "star", "size": 12, "color": "red"}, showlegend=i == 1,
                                 name="baseline"), row=1, col=i)
        if name in result.log_scale:
            fig.update_xaxes(type="log", row=1, col=i)
    fig.update_yaxes(title_text=result.metric, row=1, col=1)
    fig.update_layout(title="one parameter at a time around the baseline")
    return fig


def compare_figure(a: Any, b: Any) -> Any:
    go, _ = _plotly()
    fig = go.Figure()
    for study in (a, b):
        curve = best_so_far(study)
        fig.add_trace(go.Scatter(x=[n for n, _ in curve], y=[v for _, v in curve], mode="lines",
                                 line={"shape": "hv"}, name=f"{study.name} ({study.metric})"))
    fig.update_layout(title=f"best so far: {a.name} vs {b.name}", xaxis_title="trials finished",
                      yaxis_title="best value")
    return fig


def save_html(fig: Any, path: str | os.PathLike) -> str:
    """A self-contained HTML page: plotly.js is embedded, nothing is fetched when it opens."""
    fig.write_html(os.fspath(path), include_plotlyjs=True, full_html=True)
    return os.fspath(path)


def save_png(fig: Any, path: str | os.PathLike) -> str:
    try:
        fig.write_image(os.fspath(path))
    except (ImportError, ValueError, RuntimeError) as err:
        raise ConfigError(f"PNG export needs a static renderer: pip install kaleido ({err})") from None
    return os.fspath(path)




def cost_figure(study: Any) -> Any:
    """Cost of each trial and the running total, in the study's currency."""
    from tunelab.tracking.cost import study_cost

    go, _ = _plotly()
    cost = study_cost(study)
    numbers = sorted(cost.per_trial)
    per_trial = [cost.per_trial[n] for n in numbers]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=numbers, y=per_trial, name="per trial"))
    fig.add_trace(go.Scatter(x=numbers, y=list(np.cumsum(per_trial)), name="total", yaxis="y2", mode="lines"))
    fig.update_layout(title=f"cost: {cost.total:.4g} {cost.currency} in total", xaxis_title="trial",
                      yaxis={"title": f"per trial ({cost.currency})"},
                      yaxis2={"title": "total", "overlaying": "y", "side": "right"})
    return fig


def figure_json(fig: Any) -> dict[str, Any]:
    """A figure as plain JSON (data and layout) for plotly.js in the browser."""
    import json

    import plotly.io

    return json.loads(plotly.io.to_json(fig, validate=False))


FIGURES = {
    "history": history_figure, "parallel": parallel_coordinates_figure, "slice": slice_figure,
    "contour": contour_figure, "curves": curves_figure, "cost": cost_figure,
}
