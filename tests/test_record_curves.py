"""The recorder of learning-curve tables: cross-validated errors, one table file per task."""

import gzip
import json

import numpy as np
import pytest

from tunelab.benchmarks import record_curves
from tunelab.benchmarks.tasks import TableTask

TINY = (record_curves._breast_cancer, record_curves._sgd,
        {"alpha": [1e-4], "eta0": [1e-3, 1e-1], "power_t": [0.5], "loss": ["hinge"], "penalty": ["l2"]}, 3)


@pytest.fixture
def tiny_task(monkeypatch):
    monkeypatch.setitem(record_curves.TASKS, "tiny", TINY)


def test_the_recorded_error_counts_every_sample_once(tiny_task):
    table = record_curves.record("tiny", folds=2)
    n = len(record_curves._breast_cancer()[1])
    curves = np.asarray(table["curves"])
    assert curves.shape == (2, 3) and table["folds"] == 2
    # the mean over folds weighted by fold size: a whole number of misclassified samples out of all
    assert np.allclose(curves * n, np.round(curves * n), atol=1e-2)
    assert np.all((curves > 0) & (curves < 0.5)) and all(cost > 0 for cost in table["cost_per_epoch"])
    assert not np.array_equal(curves[0], curves[1])  # the learning rate matters
    assert record_curves.record("tiny", folds=2)["curves"] == table["curves"]  # seeded


def test_the_command_writes_a_table_the_simulator_loads(tiny_task, tmp_path):
    record_curves.main(["tiny", "--folds", "2", "--out", str(tmp_path)])
    with gzip.open(tmp_path / "tiny.json.gz", "rt") as handle:
        task = TableTask(json.load(handle))
    assert task.metric == "cv_error" and task.fidelity.max == 3 and len(task.finals) == 2


def test_the_command_refuses_bad_input(capsys):
    with pytest.raises(SystemExit):
        record_curves.main(["nope"])
    assert "unknown task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        record_curves.main(["sgd-digits", "--folds", "1"])
    assert "--folds" in capsys.readouterr().err


def test_an_interrupted_write_leaves_the_old_table_whole(tiny_task, tmp_path, monkeypatch):
    """The table goes to a temporary file renamed over the old one: a run stopped while writing
    keeps the table that was there, and leaves no half-written file behind."""
    target = tmp_path / "tiny.json.gz"
    old = {"name": "tiny", "curves": [[0.5]]}
    target.write_bytes(gzip.compress(json.dumps(old).encode()))
    monkeypatch.setattr(record_curves, "record", lambda name, folds: {"name": name, "configs": [], "epochs": 3})

    def dump_then_stop(table, handle, **options):
        handle.write('{"name": "tiny", "cur')  # part of the table is out when the run is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(record_curves.json, "dump", dump_then_stop)
    with pytest.raises(KeyboardInterrupt):
        record_curves.main(["tiny", "--out", str(tmp_path)])
    with gzip.open(target, "rt") as handle:
        assert json.load(handle) == old
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.json.gz"]
