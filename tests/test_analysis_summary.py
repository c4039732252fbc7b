"""Best trials, Pareto front and the top-k table."""

from __future__ import annotations

import socket

import tunelab as tl
from tunelab.analysis import best_trials, pareto_front, top_trials, trials_table


def test_top_k_is_ordered_best_first_with_costs_and_hosts():
    study = tl.tune(lambda c: (c["x"] - 0.3) ** 2, {"x": tl.uniform(0, 1), "k": 2}, metric="loss", mode="min",
                    n_trials=12, seed=0)
    top = top_trials(study, k=4)
    values = sorted(t.value for t in study.trials)
    assert [t.value for t in top] == values[:4]
    assert best_trials(study) == [study.best]
    rows = trials_table(study, k=3)
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["number"] == study.best.number
    assert rows[0]["loss"] == study.best.value and rows[0]["params.x"] == study.best.config["x"]
    assert rows[0]["params.k"] == 2 and rows[0]["cost"] >= 0 and rows[0]["host"] == socket.gethostname()


def test_parameters_named_like_the_tables_own_columns_do_not_overwrite_them():
    study = tl.create_study({"number": tl.randint(100, 200), "rank": tl.choice(["r1", "r2"]), "cost": tl.uniform(5, 6)},
                            metric="loss", mode="min", seed=0)
    for value in (0.3, 0.1, 0.2):
        study.tell(study.ask(), value)
    (row,) = trials_table(study, k=1)
    assert (row["rank"], row["number"]) == (1, study.best.number) and row["cost"] < 5
    assert row["params.number"] == study.best.config["number"] and row["params.cost"] >= 5


def test_pareto_front_of_two_metrics():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric=["a", "b"], mode=["min", "min"])
    points = {0.1: (1.0, 5.0), 0.2: (2.0, 2.0), 0.3: (3.0, 3.0), 0.4: (5.0, 1.0)}  # (3, 3) is dominated
    for x, (a, b) in points.items():
        study.tell(config={"x": x}, value={"a": a, "b": b})
    front = pareto_front(study)
    assert sorted(t.config["x"] for t in front) == [0.1, 0.2, 0.4]
    assert best_trials(study) == front
