"""Comparing studies, and the optimisation-history curve it is built on."""

from __future__ import annotations

import tunelab as tl
from tunelab.analysis import best_so_far, compare_studies

import lab_objectives as objectives

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}


def test_best_so_far_only_improves():
    study = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=15, seed=0)
    curve = best_so_far(study)
    assert [n for n, _ in curve] == list(range(1, 16))
    assert all(b <= a for (_, a), (_, b) in zip(curve, curve[1:]))
    assert curve[-1][1] == study.best.value


def test_compare_two_studies_side_by_side():
    a = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=12, seed=0, name="a")
    b = tl.tune(objectives.quadratic, {**SPACE, "extra": 3}, metric="loss", mode="min", n_trials=25, seed=1,
                name="b")
    result = compare_studies(a, b)
    summary = {row[0]: row[1:] for row in result.summary}
    assert summary["trials"] == (12, 25)
    assert summary["best value"] == (a.best.value, b.best.value)
    configs = {row[0]: row[1:] for row in result.configs}
    assert configs["x"] == (a.best.config["x"], b.best.config["x"]) and configs["extra"] == (None, 3)
    history = {n: (va, vb) for n, va, vb in result.history}
    assert list(history) == [1, 5, 10, 20, 25]
    assert history[10][0] is not None and history[20][0] is None  # a has 12 trials: nothing after 20 of them
    assert history[25] == (None, b.best.value)
    assert result.to_json()["names"] == ["a", "b"]


def test_costs_are_compared_with_their_currency_and_not_rounded_away():
    """A cost of 6e-07 USD showed as 1e-06 beside a cost in EUR, with no unit on either."""
    a = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=2, seed=0, name="a")
    b = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=2, seed=1, name="b",
                prices=tl.Prices(cpu_hour=1000.0, gpu_hour=2.0, currency="EUR"))
    cost_a, cost_b = {row[0]: row[1:] for row in compare_studies(a, b).summary}["cost"]
    assert cost_a.endswith(" USD") and cost_b.endswith(" EUR")
    assert float(cost_a.split()[0]) >= 0 and float(cost_b.split()[0]) >= 0


def test_cancelled_trials_are_compared_apart_from_failed_ones():
    """A trial its tuner cancelled says nothing of its configuration; compare counted it failed."""
    a = tl.create_study(SPACE, metric="loss", mode="min", seed=0, name="a")
    a.tell(a.ask(), 0.5)
    a.tell(a.ask(), state="failed", error="ValueError: boom")
    a.storage.cancel_trial(a.ask().id, "cancelled: target reached")
    b = tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=2, seed=1, name="b")
    summary = {row[0]: row[1:] for row in compare_studies(a, b).summary}
    assert (summary["failed"], summary["cancelled"], summary["trials"]) == ((1, 0), (1, 0), (3, 2))


def test_the_summary_counts_paused_and_waiting_trials_where_a_study_has_them():
    """A study of eight paused trials was summed up as "trials 8" and 0 in every other row."""
    epochs = tl.fidelity("epochs", min=1, max=9, resumable=True)
    paused = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha", fidelity=epochs,
                             seed=0, name="paused")
    for _ in range(3):
        trial = paused.ask()
        trial.report(trial.budget, loss=0.5)
        paused.tell(trial)
    paused.enqueue({"x": 0.5})
    plain = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="plain")
    plain.tell(plain.ask(), 0.5)
    rows = {row[0]: row[1:] for row in compare_studies(paused, plain).summary}
    assert rows["trials"] == (4, 1) and rows["paused"] == (paused.counts()["paused"], 0) and rows["waiting"] == (1, 0)
    assert rows["paused"][0] >= 2 and "running" not in rows
    assert "paused" not in {row[0] for row in compare_studies(plain, plain).summary}
