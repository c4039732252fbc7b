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


@pytest.fixture(scope="module")
def three():
    """Three metrics; on accuracy and latency alone, trial 2 (0.7, 3) is beaten by trial 1 (0.8, 1)."""
    study = tl.create_study({"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}, metric=["acc", "latency", "size"],
                            mode=["max", "min", "min"], name="three", seed=0)
    for acc, latency, size in ((0.9, 5.0, 1.0), (0.8, 1.0, 2.0), (0.7, 3.0, 0.5), (0.95, 9.0, 3.0)):
        study.tell(study.ask(), {"acc": acc, "latency": latency, "size": size})
    study.tell(study.ask(), state="failed", error="boom")
    return study


def test_figures_of_one_metric_draw_the_one_asked_for(three):
    """They drew the first metric of a study of several, whatever was wanted."""
    latencies = [1.0 * v for v in (5, 1, 3, 9)]
    history = plots.history_figure(three, metric="latency")
    assert list(history.data[0].y) == latencies and list(history.data[1].y) == [5, 1, 1, 1, 1]  # min: goes down
    assert history.layout.yaxis.title.text == "latency"
    assert list(plots.history_figure(three).data[1].y) == [0.9, 0.9, 0.9, 0.95, 0.95]  # the first, to maximise
    parallel = plots.parallel_coordinates_figure(three, metric="size").data[0]
    assert parallel.dimensions[-1].label == "size" and list(parallel.dimensions[-1].values) == [1, 2, 0.5, 3]
    assert list(plots.slice_figure(three, metric="latency").data[0].y) == latencies
    contour = plots.contour_figure(three, metric="latency")
    assert contour.data[0].colorbar.title.text == "latency" and contour.data[0].reversescale  # lower is better
    with pytest.raises(tl.ConfigError, match="has no metric 'speed'; its metrics: acc, latency, size"):
        plots.history_figure(three, metric="speed")


def test_pareto_figure_highlights_and_joins_the_front_of_the_two_metrics(three):
    fig = plots.pareto_figure(three, ["acc", "latency"])
    others, front = fig.data
    assert list(others.x) == [0.7] and list(others.y) == [3.0]  # beaten on both by trial 1; the failed one left out
    assert list(front.x) == [0.8, 0.9, 0.95] and list(front.y) == [1.0, 5.0, 9.0]  # joined in order of x
    assert front.mode == "lines+markers" and front.line.shape == "vh"  # accuracy to maximise: up, then across
    assert fig.layout.xaxis.title.text == "acc (max)" and fig.layout.yaxis.title.text == "latency (min)"
    flipped = plots.pareto_figure(three, ["latency", "acc"]).data[1]
    assert list(flipped.x) == [1.0, 5.0, 9.0] and flipped.line.shape == "hv"  # latency to minimise: across first
    for metrics, message in ((None, "has 3 metrics .*: choose the two"), (["acc"], "two different metrics"),
                             (["acc", "acc"], "two different metrics"), (["acc", "speed"], "no metric 'speed'")):
        with pytest.raises(tl.ConfigError, match=message):
            plots.pareto_figure(three, metrics)
    with pytest.raises(tl.ConfigError, match="has one metric .*a Pareto front needs two"):
        plots.pareto_figure(tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min"))


def test_plot_command_takes_metric_and_draws_a_pareto_front(study, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    two = tl.create_study({"x": tl.uniform(0, 1)}, metric=["acc", "latency"], mode=["max", "min"], storage=url,
                          name="two", seed=0)
    for acc, latency in ((0.9, 5.0), (0.8, 1.0), (0.7, 3.0)):
        two.tell(two.ask(), {"acc": acc, "latency": latency})
    out = tmp_path / "p.html"
    assert main(["plot", "two", "--kind", "pareto", "-o", str(out), "--storage", url]) == 0
    assert "Pareto front of acc and latency (2 of 3 trials)" in out.read_text()
    assert main(["plot", "two", "--kind", "history", "--metric", "latency", "-o", str(out), "--storage", url]) == 0
    assert '"title":{"text":"latency"}' in out.read_text().replace(" ", "")
    assert "note:" not in capsys.readouterr().err
    assert main(["plot", "two", "--kind", "slice", "-o", str(out), "--storage", url]) == 0
    assert "this is about acc: choose another with --metric NAME" in capsys.readouterr().err  # not without a word
    p = study.storage.url
    for args, message in (
            (["two", "--kind", "history", "--metric", "speed"], "study 'two' has no metric 'speed'; its metrics: acc, "
                                                                "latency"),
            (["two", "--kind", "pareto", "--metric", "acc"], "name two (or neither, for both)"),
            (["two", "--kind", "slice", "--metric", "acc", "--metric", "latency"], "plots one metric"),
            (["two", "--kind", "cost", "--metric", "acc"], "leave out --metric"),
            (["p", "--kind", "pareto"], "study 'p' has one metric (loss)")):
        assert main(["plot", *args, "-o", str(out), "--storage", p if args[0] == "p" else url]) == 2, args
        assert message in capsys.readouterr().err, args


def test_a_contour_of_trials_on_one_line_draws_the_points_without_a_surface():
    """Two parameters tuned together (every trial on one line) made the interpolation raise
    QhullError ("initial simplex is flat") instead of giving a figure."""
    study = tl.create_study({"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}, metric="loss", mode="min")
    for v in (0.1, 0.2, 0.3, 0.4, 0.5):
        study.tell(config={"x": v, "y": 2 * v}, value=v)
    figure = plots.contour_figure(study)
    assert [t.type for t in figure.data] == ["scatter"] and list(figure.data[0].x) == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_plot_curves_of_any_reported_metric_and_says_when_there_is_none_to_draw(tmp_path, capsys):
    """--kind curves refused a reported metric the study does not optimise (train_loss), which the
    figure draws; and a study whose trials reported nothing was written as an empty page."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="c", seed=0)
    for _ in range(2):
        trial = study.ask()
        for step in (1, 2):
            trial.report(step, loss=trial.config["x"] / step, train_loss=0.5 / step)
        study.tell(trial, trial.config["x"] / 2)
    out = tmp_path / "c.html"
    assert main(["plot", "c", "--kind", "curves", "--metric", "train_loss", "-o", str(out), "--storage", url]) == 0
    assert '"title":{"text":"train_loss"}' in out.read_text().replace(" ", "")
    assert main(["plot", "c", "--kind", "curves", "--metric", "val_loss", "-o", str(out), "--storage", url]) == 2
    assert "no trial of study 'c' reported 'val_loss'; its trials reported: loss, train_loss" in capsys.readouterr().err
    quiet = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="quiet", seed=0)
    quiet.tell(quiet.ask(), 0.5)
    assert main(["plot", "quiet", "--kind", "curves", "-o", str(tmp_path / "q.html"), "--storage", url]) == 2
    assert "no trial of study 'quiet' reported a learning curve" in capsys.readouterr().err
    assert not (tmp_path / "q.html").exists()
