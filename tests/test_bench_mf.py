"""tunelab bench-mf's fairness and its seeds: Optuna's baselines and tunelab's methods under the
same caps, and the methods' seeds kept apart from those that set the target."""

from __future__ import annotations

import pytest

from tunelab.benchmarks.synthetic import SubsampleTask


class _CountingSubsample(SubsampleTask):
    """The subsample family, counting the full runs it is asked for (one report each)."""

    def __init__(self):
        super().__init__()
        self.runs = 0

    def value(self, config, step):
        self.runs += 1
        return super().value(config, step)


def test_without_a_time_cap_optuna_and_tunelab_methods_get_the_same_trials(monkeypatch):
    """When no reference seed reached the target there is no time cap, only MAX_TRIALS: tunelab's
    methods were given twice the trials of Optuna's, as the uncapped reference is."""
    pytest.importorskip("optuna")
    from tunelab.benchmarks import compare as bench

    monkeypatch.setattr(bench, "MAX_TRIALS", 4)
    counts = {}
    for name in ("tpe/kde (full budget)", "optuna tpe (full budget)", "random (full budget)"):
        task = _CountingSubsample()
        hit, _, _ = bench._one(task, name, 0, target=-1.0, limit=None, workers=1)  # an error never reached
        counts[name] = (hit, task.runs)
    assert counts == {"tpe/kde (full budget)": (None, 4), "optuna tpe (full budget)": (None, 4),
                      "random (full budget)": (None, 8)}  # the reference runs on until it gets there


def test_bench_mf_refuses_seeds_that_are_the_targets_own(capsys):
    """Seeds from 1,000,000 on set the target: a method run on them was timed on the very runs
    that set its bar (and random search reached it at once)."""
    from tunelab.cli import main

    argv = ["bench-mf", "--tasks", "subsample", "--seeds", "2", "--methods", "random (full budget)",
            "--workers", "--target-runs", "1", "--reference-runs", "1", "--jobs", "1"]
    code = main([*argv, "--first-seed", "999999"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "runs seeds up to 1000000; the methods' seeds must stay below 1,000,000" in err
    assert main([*argv, "--first-seed", "999998"]) == 0
