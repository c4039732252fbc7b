"""How a script's output becomes a trial's reports, result and error: lines of one step, result
files, a line of megabytes on stderr, a script that ends while a child of its own holds its output."""

from __future__ import annotations

from pathlib import Path

import pytest

import tunelab as tl
import tunelab.script.command as command
from test_script_command import make_study, tune

TRAIN_THEN_VAL = """\
    import json, os, sys
    lr = float(sys.argv[sys.argv.index("--lr") + 1])
    steps = os.environ["STEPS"] == "yes"
    for epoch in range(1, int(sys.argv[sys.argv.index("--epochs") + 1]) + 1):
        step = {"step": epoch} if steps else {}
        print(json.dumps({**step, "train_loss": 1 / epoch}))
        print(json.dumps({**step, "acc": lr * epoch}))
    """


@pytest.mark.parametrize("scheduler", ["fifo", "asha"])
@pytest.mark.parametrize("steps", ["yes", "no"])
def test_metrics_printed_on_lines_of_their_own_make_one_report_per_step(tmp_path, scheduler, steps):
    study_file = make_study(tmp_path, TRAIN_THEN_VAL, command="{python} train.py --lr {lr} --epochs {budget}",
                            fidelity={"epochs": {"min": 1, "max": 3, "resumable": True}}, env={"STEPS": steps})
    study = tune(tmp_path, study_file, n_trials=2, scheduler=scheduler, fidelity=study_file.fidelity)
    for trial in study.trials:
        assert trial.state is not tl.TrialState.FAILED, trial.error
        assert trial.reports, trial
        for report in trial.reports:  # the study's metric at every step, with the other metric of its step
            assert report.metrics == {"train_loss": pytest.approx(1 / report.step),
                                      "acc": pytest.approx(trial.config["lr"] * report.step)}


def test_a_result_file_whose_metric_is_text_says_so_in_json_terms_as_a_setup_error(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os
        json.dump({"acc": "0.5", "note": "text is kept"}, open(os.environ["TUNELAB_RESULT_FILE"], "w"))
        """, result_file="{trial_dir}/result.json")
    trial = tune(tmp_path, study_file, n_trials=1).trials[0]
    assert trial.state is tl.TrialState.FAILED
    # a ScriptOutputError is what stops `tunelab run` after its first trial, not every trial failing alike
    assert trial.error.startswith("ScriptOutputError: ")
    assert "the metric 'acc' must be a JSON number, e.g. {\"acc\": 0.93}; it holds a string: \"0.5\"" in trial.error


def test_a_result_file_that_names_a_folder_is_a_setup_error(tmp_path):
    study_file = make_study(tmp_path, "print('done')", result_file="{trial_dir}")
    trial = tune(tmp_path, study_file, n_trials=1).trials[0]
    assert trial.error.startswith("ScriptOutputError: ") and "names the folder" in trial.error


def test_a_script_that_ends_in_time_while_its_child_holds_stdout_is_not_timed_out(tmp_path, monkeypatch):
    # The script ends at once; the child it leaves behind keeps stdout open past trial_timeout.
    monkeypatch.setattr(command, "LINGER_SECONDS", 4.5)
    study_file = make_study(tmp_path, """\
        import json, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(json.dumps({"acc": 0.5}), flush=True)
        """, trial_timeout=3, kill_grace=1)
    trial = tune(tmp_path, study_file, n_trials=1).trials[0]
    assert trial.state is tl.TrialState.COMPLETED, trial.error
    assert trial.value == 0.5


def test_a_line_of_megabytes_on_stderr_is_shortened_in_the_trials_error_and_kept_whole_in_its_log(tmp_path):
    study_file = make_study(tmp_path, """\
        import sys
        sys.stderr.write("x" * 3_000_000 + "\\n")
        sys.exit("RuntimeError: boom")
        """)
    trial = tune(tmp_path, study_file, n_trials=1).trials[0]
    assert trial.state is tl.TrialState.FAILED and "RuntimeError: boom" in trial.error
    assert len(trial.error) < 5000 and "(3000000 characters; the log holds the whole line)" in trial.error
    assert len(Path(trial.user_attrs["stderr"]).read_text()) > 3_000_000


def test_a_script_that_reports_the_metric_every_other_epoch_runs_under_a_judging_scheduler(tmp_path):
    """Steps without the study's metric failed every trial under a scheduler that judges each
    report; they are kept in the result, and the steps with it are the reports."""
    study_file = make_study(tmp_path, """\
        import json, sys
        lr = float(sys.argv[sys.argv.index("--lr") + 1])
        for epoch in range(1, int(sys.argv[sys.argv.index("--epochs") + 1]) + 1):
            print(json.dumps({"step": epoch, "train_loss": 1 / epoch}))
            if epoch % 2 == 0:
                print(json.dumps({"step": epoch, "acc": lr * epoch}))
        """, command="{python} train.py --lr {lr} --epochs {budget}",
        fidelity={"epochs": {"min": 1, "max": 4, "resumable": True}})
    study = tune(tmp_path, study_file, n_trials=3, scheduler="median", fidelity=study_file.fidelity)
    for trial in study.trials:
        assert trial.state is tl.TrialState.COMPLETED, trial.error
        assert [r.step for r in trial.reports] == [2.0, 4.0]
        assert trial.metrics["train_loss"] == pytest.approx(0.25)


def test_a_script_that_ignores_its_budget_is_told_so_and_stopped_at_the_rung(tmp_path):
    """Each run of such a script trained to the end, its lines past the rung unread, without a word."""
    study_file = make_study(tmp_path, """\
        import json, sys, time
        lr = float(sys.argv[sys.argv.index("--lr") + 1])
        for epoch in range(1, 10):
            print(json.dumps({"step": epoch, "acc": lr * epoch}), flush=True)
            time.sleep(0.2)
        """, fidelity={"epochs": {"min": 1, "max": 9, "resumable": True}}, kill_grace=20)
    with pytest.warns(UserWarning, match=r"went on to step \d+ past its budget \d+: the command should read \{budget\}"):
        study = tune(tmp_path, study_file, n_trials=3, scheduler="asha", fidelity=study_file.fidelity)
    assert any(t.reports and t.reports[-1].step < 9 for t in study.trials)  # one stopped at a rung
