"""The worked multi-fidelity examples in examples/ run, on a small budget, and do what their
docstrings promise: ASHA resumes runs from their checkpoints, Hyperband re-runs a fresh-run
fidelity at each level. (examples/study.yaml is run by test_script_cli.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tunelab.trial import TrialState

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def examples(monkeypatch):
    # On sys.path, so that worker processes import the objectives by name as a user's script would.
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_asha_by_epochs_resumes_from_checkpoints_and_keeps_only_those_of_full_runs(examples, tmp_path, capsys):
    import asha_epochs

    study = asha_epochs.main(n_trials=12, workers=2, storage=f"sqlite:///{tmp_path / 'e.db'}")
    trials = study.trials
    assert len(trials) == 12
    for trial in trials:  # a resumed run carries on from its checkpoint: its epochs never restart
        steps = [r.step for r in trial.reports]
        assert steps == [float(e) for e in range(1, len(steps) + 1)]
    assert any(t.reports[-1].step > 1 for t in trials)  # promoted and resumed past the first rung
    finished = [t for t in trials if t.state is TrialState.COMPLETED]
    assert finished and all(t.reports[-1].step == asha_epochs.EPOCHS.max for t in finished)
    assert not [t for t in trials if t.state is TrialState.PAUSED]
    assert {t.number for t in trials if os.path.exists(study.checkpoint_dir(t))} == {t.number for t in finished}
    assert study.best.value < 0.2  # a trained MLP on digits, not chance (0.9)
    assert "epochs in all" in capsys.readouterr().out


def test_hyperband_by_subsample_reruns_each_level_afresh(examples, tmp_path, capsys):
    import hyperband_subsample

    study = hyperband_subsample.main(n_trials=15, storage=f"sqlite:///{tmp_path / 'e.db'}")
    trials = study.trials
    levels = sorted({r.step for t in trials for r in t.reports})
    assert len(levels) >= 2 and levels[-1] == pytest.approx(1.0)
    # A fresh-run fidelity: one report per level a trial ran at, each a run of its own.
    promoted = [t for t in trials if len(t.reports) > 1]
    assert promoted
    for trial in promoted:
        steps = [r.step for r in trial.reports]
        assert steps == sorted(set(steps)) and all(step in levels for step in steps)
    assert not list(study.folder.glob("*/checkpoint"))  # no trial wrote one
    assert study.best.value < 0.1  # an SVM on digits
    assert "data used" in capsys.readouterr().out


def test_torch_asha_resumes_from_its_checkpoints_exactly_as_a_run_that_never_paused(examples, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    import torch_asha
    from tunelab.analysis import reproduce

    gpus = "0,0" if torch.cuda.is_available() else None  # each worker process on the one GPU
    study = torch_asha.main(n_trials=6, workers=2, storage=f"sqlite:///{tmp_path / 't.db'}", gpus=gpus, epochs=9)
    assert {t.user_attrs["device"] for t in study.trials} == {"cuda" if gpus else "cpu"}
    resumed = [t for t in study.trials if t.reports and t.reports[-1].step > 1]  # paused at 1 epoch, promoted
    assert resumed
    for trial in study.trials:
        steps = [r.step for r in trial.reports]
        assert steps == [float(e) for e in range(1, len(steps) + 1)]
    for trial in resumed:  # each in one go, no pause; on a GPU too (cuDNN may add in any order)
        again = reproduce(study, trial.number)
        assert again.exact, again.report()
    assert study.best.value < 0.5  # a CNN trained for a few epochs on digits, not chance (0.9)
    assert "epochs in all" in capsys.readouterr().out
