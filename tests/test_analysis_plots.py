"""Figures: the right traces, and HTML pages that carry plotly.js inside (they work offline)."""

from __future__ import annotations

import re

import pytest

import tunelab as tl
from tunelab.analysis import plots
from tunelab.analysis.importance import fanova_importance
from tunelab.cli import main

import lab_objectives as objectives

pytest.importorskip("plotly")

SPACE = {"x": tl.uniform(0, 1), "y": tl.loguniform(1e-3, 1), "z": tl.choice(["a", "b"])}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('plots') / 'lab.db'}"
    return tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=12, storage=url, name="p", seed=0)


def test_each_figure_has_its_traces(study):
    history = plots.history_figure(study)
    assert [t.type for t in history.data] == ["scatter", "scatter"]
    assert list(history.data[1].y) == sorted(history.data[1].y, reverse=True)  # best so far only improves
    parallel = plots.parallel_coordinates_figure(study)
    assert [d.label for d in parallel.data[0].dimensions] == ["x", "log10 y", "z", "loss"]
    assert len(plots.slice_figure(study).data) == 3
    contour = plots.contour_figure(study)
    assert contour.data[0].type == "contour" and contour.layout.yaxis.type == "log"
    curves = plots.curves_figure(study)
    assert len(curves.data) == 12 and list(curves.data[0].x) == [1.0, 2.0, 3.0]
    assert plots.importance_figure(fanova_importance(study)).data[0].orientation == "h"
    result = tl.sensitivity(objectives.quadratic, study.best.config, SPACE, points=3, metric="loss")
    figure = plots.sensitivity_figure(result)
    assert len(figure.data) == 6
    assert result.log_scale == ["y"] and figure.layout["xaxis" + str(result.ranking.index("y") + 1)].type == "log"
    flags = tl.sensitivity(lambda c: float(c["on"]), {"on": True}, {"on": tl.choice([True, False])}, points=2)
    line, star = plots.sensitivity_figure(flags).data
    assert list(line.x) == ["True", "False"] and list(star.x) == ["True"]  # the star on its category
    assert len(plots.compare_figure(study, study).data) == 2


def test_a_contour_over_a_choice_or_one_parameter_twice_is_refused(study):
    for x, y in (("z", "x"), ("x", "x"), ("nope", "y")):  # raw ValueError, QhullError before
        with pytest.raises(tl.ConfigError, match="a contour needs two different numeric parameters"):
            plots.contour_figure(study, x=x, y=y)


def test_html_is_self_contained(study, tmp_path):
    path = plots.save_html(plots.history_figure(study), tmp_path / "h.html")
    html = open(path).read()
    assert len(html) > 1_000_000  # plotly.js is inside
    assert not re.search(r"<script[^>]+src=", html)  # and nothing is fetched


def test_plot_command(study, tmp_path, capsys):
    for kind in ("parallel", "importance"):
        out = tmp_path / f"{kind}.html"
        assert main(["plot", "p", "--kind", kind, "-o", str(out), "--storage", study.storage.url]) == 0
        assert "Plotly.newPlot" in out.read_text()
    assert main(["plot", "p", "--kind", "nope", "-o", "x.html", "--storage", study.storage.url]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_png_needs_a_renderer_or_says_how_to_get_one(study, tmp_path):
    figure = plots.history_figure(study)
    try:
        import kaleido  # noqa: F401
    except ImportError:
        with pytest.raises(tl.ConfigError, match="pip install kaleido"):
            plots.save_png(figure, tmp_path / "h.png")
    else:
        assert open(plots.save_png(figure, tmp_path / "h.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_history_points_and_best_so_far_share_one_order_when_trials_end_out_of_turn():
    """Trial 1 ending first with 0.1, then trial 0 with 0.9: the line was drawn at x = 1, 0."""
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min")
    first, second = study.ask(), study.ask()
    study.tell(second, 0.1)
    study.tell(first, 0.9)
    points, line = plots.history_figure(study).data
    assert list(points.x) == [1, 2] and list(points.y) == [0.1, 0.9] and points.text[0].startswith("trial 1:")
    assert list(line.x) == [1, 2] and list(line.y) == [0.1, 0.1]
