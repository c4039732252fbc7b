"""Best trials, Pareto front and the top-k table."""

from __future__ import annotations

import socket

import pytest

import tunelab as tl
from tunelab.analysis import best_trials, pareto_front, top_trials, trials_table
from tunelab.analysis.summary import front_of, state_counts


def test_top_k_is_ordered_best_first_with_costs_and_hosts():
    study = tl.tune(lambda c: (c["x"] - 0.3) ** 2, {"x": tl.uniform(0, 1), "k": 2}, metric="loss", mode="min",
                    n_trials=12, seed=0)
    top = top_trials(study, k=4)
    values = sorted(t.value for t in study.trials)
    assert [t.value for t in top] == values[:4]
    assert best_trials(study) == [study.best]
    rows = trials_table(study, k=3)
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["number"] == study.best.number
    assert rows[0]["metrics.loss"] == study.best.value and rows[0]["params.x"] == study.best.config["x"]
    assert rows[0]["params.k"] == 2 and rows[0]["cost"] >= 0 and rows[0]["host"] == socket.gethostname()


def test_metrics_named_like_the_tables_own_columns_do_not_overwrite_them():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric=["number", "cost"], mode=["max", "min"], seed=0)
    study.tell(config={"x": 0.5}, value={"number": 9.5, "cost": 100.0})
    (row,) = trials_table(study, k=1)
    assert row["number"] == 0 and row["metrics.number"] == 9.5 and row["metrics.cost"] == 100.0
    assert row["cost"] != 100.0


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


def test_a_front_on_some_of_the_metrics_and_the_top_trials_on_any():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric=["acc", "latency", "size"], mode=["max", "min", "min"])
    for acc, latency, size in ((0.9, 5.0, 1.0), (0.8, 1.0, 2.0), (0.7, 3.0, 0.5), (0.6, 2.0, 4.0)):
        study.tell(study.ask(), {"acc": acc, "latency": latency, "size": size})
    assert [t.number for t in pareto_front(study)] == [0, 1, 2]  # on all three, (0.7, 3, 0.5) is smallest
    assert [t.number for t in pareto_front(study, ["acc", "latency"])] == [0, 1]  # on two, (0.8, 1) beats it
    assert [t.number for t in pareto_front(study, ["latency", "acc"])] == [1, 0]  # best first on latency
    assert [t.number for t in front_of(study.trials, study.metrics, study.modes, on=["size"])] == [2]
    with pytest.raises(tl.ConfigError, match="distinct metrics of the study"):
        pareto_front(study, ["acc", "speed"])
    assert [t.number for t in top_trials(study, k=2, metric="latency")] == [1, 3]
    assert [t.number for t in top_trials(study, k=2)] == [0, 1]  # the first metric, as before
    with pytest.raises(tl.ConfigError, match="has no metric 'speed'; its metrics: acc, latency, size"):
        top_trials(study, metric="speed")


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_cancelled_trials_are_counted_apart_by_the_storage_without_reading_a_trial(where, tmp_path):
    """The counts came by state alone, and where a trial no longer counted towards the budget
    every trial of the study was read to find the cancelled ones (a study of 100,000 in `show`)."""
    storage = None if where == "memory" else f"sqlite:///{tmp_path / 'c.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, storage=storage)
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), state="failed", error="ValueError: boom")
    study.storage.cancel_trial(study.ask().id, "cancelled: target reached")
    retry = study.ask()  # a trial queued again (uncounted) that then failed by its own doing: not cancelled
    study.storage.abandon_trial(retry.id, "abandoned: its process died", {"retry_of": retry.number})
    study.tell(study.ask(), state="failed", error="ValueError: boom again")
    reads = []
    rows = study.storage.trials
    study.storage.trials = lambda *a, **k: reads.append(1) or rows(*a, **k)
    assert state_counts(study) == {"completed": 1, "failed": 3, "cancelled": 1} and reads == []
    assert study.counts() == {"completed": 1, "failed": 4}  # by TrialState, as the tuner reads them
    assert study.counts(cancelled_apart=True) == state_counts(study)


