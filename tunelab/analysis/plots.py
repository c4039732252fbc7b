"""Figures of a study, made with plotly: optimisation history, parallel coordinates, slices,
contour, importance, learning curves, sensitivity, the Pareto front of two metrics and a
comparison of two studies.

The figures of one metric plot the study's first unless given ``metric=``: a study of several
metrics has a figure for each.

Each function returns a plotly Figure; :func:`save_html` writes one as a self-contained page
(plotly.js inside, so it opens offline and can be mailed), :func:`save_png` as an image when a
static renderer (kaleido) is installed. The dashboard draws the same figures in the browser.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from tunelab.analysis.compare import best_so_far
from tunelab.analysis.summary import front_of
from tunelab.errors import ConfigError, is_plain_number
from tunelab.history import better
from tunelab.trial import TrialState


def _plotly() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise ConfigError("plots need plotly: pip install 'tunelab[plots]'") from None
    return go, make_subplots


def _metric(study: Any, metric: str | None) -> tuple[str, str]:
    """The metric a figure shows (default: the study's first) and its mode; an unknown name is
    refused with the study's metrics, not drawn as an empty figure."""
    if metric is None:
        return study.metric, study.mode
    if metric not in study.metrics:
        raise ConfigError(f"study {study.name!r} has no metric {metric!r}; its metrics: {', '.join(study.metrics)}")
    return metric, study.modes[study.metrics.index(metric)]


def _value(study: Any, trial: Any, metric: str) -> Any:
    """A trial's value of ``metric``: the first metric is its ``value``, the others in ``metrics``."""
    return trial.value if metric == study.metric else (trial.metrics or {}).get(metric)


def _completed(study: Any, metric: str | None = None) -> list[Any]:
    metric = metric or study.metric
    return [t for t in study.trials if t.state is TrialState.COMPLETED and _value(study, t, metric) is not None]


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


def history_figure(study: Any, metric: str | None = None) -> Any:
    go, _ = _plotly()
    metric, mode = _metric(study, metric)
    # One order for the points and the line: the order trials ended (best_so_far's). By trial
    # number, a study run by several workers drew the best-so-far line backwards.
    finished = sorted((t for t in study.trials if t.state.finished), key=lambda t: (t.finished_at or 0, t.number))
    done = [(n, t, _value(study, t, metric)) for n, t in enumerate(finished, start=1)
            if t.state is TrialState.COMPLETED and _value(study, t, metric) is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[n for n, _, _ in done], y=[v for _, _, v in done], mode="markers", name="trial",
                             text=[f"trial {t.number}: {t.config}" for _, t, _ in done]))
    values = {n: v for n, _, v in done}
    curve, best = [], None  # best_so_far's curve, of the chosen metric: a point after every finished trial
    for n in range(1, len(finished) + 1):
        if n in values and better(values[n], best, mode):
            best = values[n]
        if best is not None:
            curve.append((n, best))
    fig.add_trace(go.Scatter(x=[n for n, _ in curve], y=[v for _, v in curve],
                             mode="lines", line={"shape": "hv"}, name="best so far"))
    fig.update_layout(title=f"{study.name}: optimisation history", xaxis_title="trials finished",
                      yaxis_title=metric)
    return fig


def parallel_coordinates_figure(study: Any, metric: str | None = None) -> Any:
    go, _ = _plotly()
    metric_name, mode = _metric(study, metric)
    trials = _completed(study, metric_name)
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
    values = [_value(study, t, metric_name) for t in trials]
    dims.append({"label": metric_name, "values": values})
    line = {"color": values, "colorscale": "Viridis", "showscale": True, "reversescale": mode == "min"}
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(title=f"{study.name}: parallel coordinates")
    return fig


def slice_figure(study: Any, metric: str | None = None) -> Any:
    go, make_subplots = _plotly()
    metric, _ = _metric(study, metric)
    names = list(study.space.dimensions) or list(study.space.params)
    trials = _completed(study, metric)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names, shared_yaxes=True)
    for i, name in enumerate(names, start=1):
        values, axis = _axis_values(study, name, trials)
        fig.add_trace(go.Scatter(x=values, y=[_value(study, t, metric) for t in trials], mode="markers", name=name,
                                 marker={"color": [t.number for t in trials], "colorscale": "Blues"},
                                 showlegend=False), row=1, col=i)
        fig.update_xaxes(row=1, col=i, **axis)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_layout(title=f"{study.name}: slices")
    return fig


def contour_figure(study: Any, x: str | None = None, y: str | None = None, metric: str | None = None) -> Any:
    """The metric over two parameters, interpolated between the trials (shown as points). Trials
    that all lie on one line (two parameters tuned together) span no surface: they are drawn as
    points only, as too few trials are (the interpolation's triangulation raised on them)."""
    import scipy.spatial
    from scipy.interpolate import griddata

    go, _ = _plotly()
    metric, mode = _metric(study, metric)
    numeric = [n for n in study.space.dimensions if getattr(study.space.params[n], "options", None) is None]
    x, y = x or (numeric[0] if numeric else None), y or (numeric[1] if len(numeric) > 1 else None)
    if x is None or y is None or x not in numeric or y not in numeric or x == y:
        raise ConfigError(f"a contour needs two different numeric parameters (of {numeric}); got x={x!r}, y={y!r}")
    trials = [t for t in _completed(study, metric) if x in t.config and y in t.config]
    xs, ys = np.array([t.config[x] for t in trials], float), np.array([t.config[y] for t in trials], float)
    zs = np.array([_value(study, t, metric) for t in trials], float)
    logx, logy = getattr(study.space.params[x], "log", False), getattr(study.space.params[y], "log", False)
    fx, fy = (np.log10(xs) if logx else xs), (np.log10(ys) if logy else ys)
    fig = go.Figure()
    grid = None
    if len(trials) >= 4 and np.ptp(fx) > 0 and np.ptp(fy) > 0:
        gx, gy = np.linspace(fx.min(), fx.max(), 60), np.linspace(fy.min(), fy.max(), 60)
        # scipy < 1.11 has QhullError only in a private module; it is a RuntimeError there too
        flat = getattr(scipy.spatial, "QhullError", RuntimeError)
        try:
            grid = griddata((fx, fy), zs, tuple(np.meshgrid(gx, gy)), method="linear")
        except flat:
            grid = None
    if grid is not None:
        fig.add_trace(go.Contour(x=10 ** gx if logx else gx, y=10 ** gy if logy else gy, z=grid,
                                 colorscale="Viridis", reversescale=mode == "min", colorbar={"title": metric},
                                 connectgaps=False))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="trials", marker={"color": "black", "size": 5}))
    fig.update_xaxes(title_text=x, type="log" if logx else None)
    fig.update_yaxes(title_text=y, type="log" if logy else None)
    fig.update_layout(title=f"{study.name}: {metric} over {x} and {y}")
    return fig


def pareto_metrics(study: Any, metrics: Sequence[str] | None = None) -> list[str]:
    """The two metrics a Pareto plot is drawn on: given, or the study's own two. A front is a
    trade-off between metrics, so a study of one has none; of three, a plane shows two of them."""
    names = ", ".join(study.metrics)
    if len(study.metrics) < 2:
        raise ConfigError(f"study {study.name!r} has one metric ({names}): a Pareto front needs two or more")
    chosen = list(study.metrics) if metrics is None and len(study.metrics) == 2 else list(metrics or [])
    if not chosen:
        raise ConfigError(f"study {study.name!r} has {len(study.metrics)} metrics ({names}): choose the two to plot "
                          "the front of")
    unknown = [m for m in chosen if m not in study.metrics]
    if unknown:
        raise ConfigError(f"study {study.name!r} has no metric {unknown[0]!r}; its metrics: {names}")
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        raise ConfigError(f"a Pareto plot is drawn on two different metrics (of {names}); got {', '.join(chosen)}")
    return chosen


def pareto_figure(study: Any, metrics: Sequence[str] | None = None) -> Any:
    """The completed trials on two metrics, the front of those two (no trial better on both)
    highlighted and joined by the edge of what it dominates. Trials that were pruned or failed
    are left out: their values, if any, are from a shorter run and would sit behind the front."""
    go, _ = _plotly()
    x, y = pareto_metrics(study, metrics)
    modes = {m: study.modes[study.metrics.index(m)] for m in (x, y)}
    trials = [t for t in _completed(study) if all(isinstance(_value(study, t, m), (int, float)) and
                                                  math.isfinite(_value(study, t, m)) for m in (x, y))]
    front = front_of(trials, study.metrics, study.modes, on=[x, y])
    on_front = {t.number for t in front}
    front.sort(key=lambda t: (_value(study, t, x), _value(study, t, y)))
    others = [t for t in trials if t.number not in on_front]

    def points(group: list[Any]) -> dict[str, Any]:
        return {"x": [_value(study, t, x) for t in group], "y": [_value(study, t, y) for t in group],
                "text": [f"trial {t.number}: {t.config}" for t in group]}

    fig = go.Figure()
    fig.add_trace(go.Scatter(**points(others), mode="markers", name="trial",
                             marker={"color": "lightgray", "line": {"color": "gray", "width": 1}}))
    # Joined by the steps that bound what the front dominates. Sorted by x: where smaller x is
    # better, a point dominates towards larger x, so the step from it runs along x first ("hv");
    # where larger x is better, the region lies behind it, and the step runs along y first ("vh").
    fig.add_trace(go.Scatter(**points(front), mode="lines+markers", name="Pareto front",
                             line={"shape": "hv" if modes[x] == "min" else "vh", "color": "crimson"},
                             marker={"color": "crimson", "size": 9}))
    fig.update_layout(title=f"{study.name}: Pareto front of {x} and {y} ({len(front)} of {len(trials)} trials)",
                      xaxis_title=f"{x} ({modes[x]})", yaxis_title=f"{y} ({modes[y]})")
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
    metric = metric or study.metric  # any reported metric: a curve of train_loss is a curve too
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
        return value if is_plain_number(value) else str(value)

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
    "contour": contour_figure, "curves": curves_figure, "cost": cost_figure, "pareto": pareto_figure,
}
