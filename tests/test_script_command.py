"""Trials that run a command: real subprocesses (small Python scripts) through tl.tune."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import tunelab as tl
from tunelab.script.command import CommandObjective
from tunelab.script.studyfile import load_study_file


def make_study(tmp_path: Path, script: str, **keys):
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    data = {"command": "{python} train.py --lr {lr}", "metric": "acc", "mode": "max",
            "space": {"lr": {"uniform": [0.1, 0.9]}}, "n_trials": 2, **keys}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(data))
    return load_study_file(tmp_path / "study.yaml")


def tune(tmp_path: Path, study_file, **kwargs):
    objective = CommandObjective.from_study_file(study_file, tmp_path / "artifacts")
    options = {"n_trials": study_file.budgets.get("n_trials"), "storage": None, "seed": 0, **kwargs}
    return tl.tune(objective, study_file.space, metric=study_file.metrics, mode=study_file.modes, **options)


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent: either way it runs no more."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")


def test_plain_log_lines_read_with_a_regex(tmp_path):
    study_file = make_study(tmp_path, """\
        import sys
        lr = float(sys.argv[sys.argv.index("--lr") + 1])
        print("starting, some noise")
        for epoch in range(1, 4):
            print(f"epoch {epoch} loss {1 - lr:.3f} val_acc {lr * epoch / 3:.4f}")
        print("done", file=sys.stderr)
        """, report={"regex": r"epoch (?P<step>\d+) loss (?P<loss>[\d.]+) val_acc (?P<acc>[\d.]+)"})
    study = tune(tmp_path, study_file)
    assert study.counts() == {"completed": 2}
    for trial in study.trials:
        lr = trial.config["lr"]
        assert [r.step for r in trial.reports] == [1, 2, 3]
        assert trial.value == pytest.approx(lr, abs=1e-4) and trial.metrics["loss"] == pytest.approx(1 - lr, abs=1e-3)
        stdout = Path(trial.user_attrs["stdout"])
        assert stdout.parent == (tmp_path / "artifacts" / str(trial.number)).resolve()
        assert stdout.read_text().startswith("starting, some noise\nepoch 1")
        assert Path(trial.user_attrs["stderr"]).read_text() == "done\n"
        assert trial.user_attrs["exit_code"] == 0 and f"--lr {lr}" in trial.user_attrs["command"]


def test_json_lines_and_the_config_as_environment_and_file(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os
        config = json.load(open(os.environ["TUNELAB_CONFIG"]))
        assert float(os.environ["TUNELAB_PARAM_LR"]) == config["lr"]
        assert os.environ["TUNELAB_PARAM_OPT"] == config["opt"] and os.environ["TUNELAB_BUDGET"] == "4"
        seed, number = int(os.environ["TUNELAB_SEED"]), int(os.environ["TUNELAB_TRIAL"])
        for step in range(1, 5):
            print(json.dumps({"step": step, "acc": config["lr"] * step, "seed": seed, "number": number}))
        print("{not json")
        """, command="{python} train.py --epochs {budget} --seed={seed}", fidelity={"epochs": {"min": 1, "max": 4}},
        space={"lr": {"uniform": [0.1, 0.9]}, "opt": {"choice": ["sgd", "adam"]}})
    study = tune(tmp_path, study_file)
    assert study.counts() == {"completed": 2}
    for trial in study.trials:
        assert [r.step for r in trial.reports] == [1, 2, 3, 4]
        assert trial.value == pytest.approx(trial.config["lr"] * 4)
        assert trial.metrics["seed"] == trial.seed and trial.metrics["number"] == trial.number
        assert trial.user_attrs["command"].endswith(f"--epochs 4 --seed={trial.seed}")


def test_tunelab_report_inside_the_script_and_a_result_file(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os, sys
        from tunelab import report
        lr = float(sys.argv[sys.argv.index("--lr") + 1])
        for epoch in range(1, 4):
            report(step=epoch, acc=lr * epoch, loss=1.0 / epoch)
        json.dump({"acc": 42.0, "extra": 1}, open(os.environ["TUNELAB_RESULT_FILE"], "w"))
        """, result_file="{trial_dir}/result.json")
    study = tune(tmp_path, study_file, n_trials=1)
    trial = study.trials[0]
    assert trial.state is tl.TrialState.COMPLETED
    assert [(r.step, r.metrics["acc"]) for r in trial.reports] == [(s, pytest.approx(trial.config["lr"] * s)) for s in (1, 2, 3)]
    assert trial.value == 42.0 and trial.metrics["loss"] == pytest.approx(1 / 3) and trial.metrics["extra"] == 1
    assert Path(trial.user_attrs["stdout"]).read_text() == ""  # launched by tunelab: no plain lines


def test_a_result_file_that_is_no_object_is_described_in_json_terms(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os
        json.dump([0.5, 0.6], open(os.environ["TUNELAB_RESULT_FILE"], "w"))
        """, result_file="{trial_dir}/result.json")
    trial = tune(tmp_path, study_file, n_trials=1).trials[0]
    assert trial.state is tl.TrialState.FAILED and "got list" not in trial.error
    assert 'must hold a JSON object of metrics, e.g. {"acc": 0.93}, or a single number; it holds an array' in trial.error


def test_report_outside_tunelab_prints_a_plain_line(capsys, monkeypatch):
    monkeypatch.delenv("TUNELAB_REPORT_FILE", raising=False)
    tl.report(step=3, val_accuracy=0.8125)
    tl.report(loss=0.5)
    assert capsys.readouterr().out == "report: step=3 val_accuracy=0.8125\nreport: loss=0.5\n"
    with pytest.raises(TypeError, match="'acc' must be a number"):
        tl.report(step=1, acc="high")


def test_a_crashing_script_fails_its_trial_with_the_tail_of_stderr(tmp_path):
    study_file = make_study(tmp_path, """\
        import sys
        print("epoch 1")
        print("loading data", file=sys.stderr)
        raise RuntimeError("CUDA out of memory (pretend)")
        """)
    study = tune(tmp_path, study_file)
    assert study.counts() == {"failed": 2}
    error = study.trials[0].error
    assert error.splitlines()[0] == "ScriptFailed: exit code 1: RuntimeError: CUDA out of memory (pretend)"
    assert "loading data" in error and "Traceback (most recent call last):" in error
    assert study.trials[0].user_attrs["exit_code"] == 1


def test_a_progress_bar_redrawn_with_carriage_returns_reports_its_last_state(tmp_path):
    study_file = make_study(tmp_path, """\
        import sys
        for epoch in range(1, 3):
            for batch, loss in ((10, 2.3), (20, 1.5), (30, 0.4 / epoch)):
                sys.stdout.write(f"\\r{batch}/30 - loss: {loss} - acc: {batch / 30 * epoch / 2:.3f}")
            sys.stdout.write("\\n")
        """, report={"regex": r"loss: (?P<loss>[\d.]+) - acc: (?P<acc>[\d.]+)"}, n_trials=1)
    trial = tune(tmp_path, study_file).trials[0]
    assert [(r.step, r.metrics) for r in trial.reports] == [(1, {"loss": 0.4, "acc": 0.5}),
                                                             (2, {"loss": 0.2, "acc": 1.0})]
    assert trial.value == 1.0


def test_a_hanging_script_is_killed_by_trial_timeout_and_the_run_goes_on(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os, time
        if os.environ["TUNELAB_TRIAL"] == "0":
            open(os.path.join(os.environ["TUNELAB_TRIAL_DIR"], "pid"), "w").write(str(os.getpid()))
            print(json.dumps({"step": 1, "acc": 0.1}))
            time.sleep(120)
        print(json.dumps({"acc": 0.5}))
        """, trial_timeout=1.5)
    study = tune(tmp_path, study_file)
    first, second = study.trials
    assert first.state is tl.TrialState.FAILED and "ran past trial_timeout=1.5s and was killed" in first.error
    assert [r.metrics for r in first.reports] == [{"acc": 0.1}]
    assert dead(int((tmp_path / "artifacts" / "0" / "pid").read_text()))
    assert second.state is tl.TrialState.COMPLETED and second.value == 0.5


class StopAtTwo(tl.Scheduler):
    """A test scheduler: stops every trial at its second report."""

    name = "stop-at-two"

    def on_report(self, trial, step, metrics, history):
        return tl.Decision.STOP if step >= 2 else tl.Decision.CONTINUE


@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_a_stop_from_the_scheduler_kills_the_whole_process_group(tmp_path, ignores_sigterm):
    study_file = make_study(tmp_path, f"""\
        import json, os, signal, subprocess, sys, time
        if {ignores_sigterm}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  + ("signal.signal(signal.SIGTERM, signal.SIG_IGN); " if {ignores_sigterm} else "")
                                  + "time.sleep(120)"])
        with open(os.path.join(os.environ["TUNELAB_TRIAL_DIR"], "pids"), "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(0.3)
        for step in range(1, 200):
            print(json.dumps({{"step": step, "acc": step / 200}}))
            time.sleep(0.05)
        """, kill_grace=0.5)
    started = time.monotonic()
    study = tune(tmp_path, study_file, n_trials=1, scheduler=StopAtTwo("acc", "max"))
    trial = study.trials[0]
    assert trial.state is tl.TrialState.PRUNED and [r.step for r in trial.reports] == [1, 2]
    pids = [int(p) for p in (tmp_path / "artifacts" / "0" / "pids").read_text().split()]
    assert all(dead(pid) for pid in pids), pids
    assert time.monotonic() - started < 60  # it did not wait for the script's own 10 s course


def test_a_metric_never_printed_fails_with_what_was_seen(tmp_path):
    study_file = make_study(tmp_path, """\
        import json
        print("epoch 1 accuracy 0.5")
        print(json.dumps({"step": 1, "accuracy": 0.5}))
        """)
    study = tune(tmp_path, study_file, n_trials=1)
    error = study.trials[0].error
    assert error.startswith("ScriptOutputError: the script finished but never reported the metric 'acc'")
    assert "it reported accuracy in 1 report(s)" in error
    (tmp_path / "plain").mkdir()
    study_file = make_study(tmp_path / "plain", "print('epoch 1 accuracy 0.5')\n")
    error = tune(tmp_path, study_file, n_trials=1).trials[0].error
    assert "no report at all in 1 line(s) of stdout; the last: 'epoch 1 accuracy 0.5'" in error


def test_a_command_that_does_not_exist(tmp_path):
    study_file = make_study(tmp_path, "", command="./no-such-program --lr {lr}")
    error = tune(tmp_path, study_file, n_trials=1).trials[0].error
    assert error.startswith("ScriptOutputError: cannot start './no-such-program'")


def test_worker_processes_run_scripts_too(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os
        print(json.dumps({"step": 1, "acc": float(os.environ["TUNELAB_PARAM_LR"])}))
        """, workers=2)
    study = tune(tmp_path, study_file, n_trials=3, workers=2)
    assert study.counts() == {"completed": 3}
    assert sorted(json.loads(Path(t.user_attrs["trial_dir"], "config.json").read_text())["lr"] for t in study.trials) \
        == sorted(t.config["lr"] for t in study.trials)


class PauseAtTwo(tl.Scheduler):
    """A test scheduler: pauses a trial at step 2 (once) and resumes it as soon as a worker is free."""

    name = "pause-at-two"

    def on_report(self, trial, step, metrics, history):
        first_time = sum(r.step == 2 for r in trial.reports) == 1  # once only, even if the checkpoint was lost
        return tl.Decision.PAUSE if step == 2 and first_time else tl.Decision.CONTINUE

    def trial_to_resume(self, history):
        return next((t for t in history.trials if t.state is tl.TrialState.PAUSED), None)


def test_a_paused_trial_resumes_from_its_checkpoint_dir(tmp_path):
    study_file = make_study(tmp_path, """\
        import json, os, sys, time
        checkpoint = os.path.join(sys.argv[sys.argv.index("--checkpoints") + 1], "epoch")
        start = int(open(checkpoint).read()) + 1 if os.path.exists(checkpoint) else 1
        for epoch in range(start, 5):
            open(checkpoint, "w").write(str(epoch))
            print(json.dumps({"step": epoch, "acc": epoch / 10}))
            time.sleep(0.2)
        """, command="{python} train.py --checkpoints {checkpoint_dir}")
    study = tune(tmp_path, study_file, n_trials=1, scheduler=PauseAtTwo("acc", "max"))
    trial = study.trials[0]
    assert trial.state is tl.TrialState.COMPLETED and trial.value == 0.4
    assert [r.step for r in trial.reports] == [1, 2, 3, 4]  # the second run started where the first stopped


def test_reports_without_a_step_go_on_from_the_trials_last_step_and_a_fresh_run_reports_at_its_level(tmp_path):
    """A promoted trial's step-less lines continue where it paused (not at 1 again, which would
    drop them as repeats and shift the curve); a subsample run's line is its result at its level."""
    study_file = make_study(tmp_path, """\
        import json, os, sys
        lr, budget, checkpoint = float(sys.argv[1]), int(sys.argv[2]), os.path.join(sys.argv[3], "epoch")
        start = int(open(checkpoint).read()) + 1 if os.path.exists(checkpoint) else 1
        for epoch in range(start, budget + 1):
            open(checkpoint, "w").write(str(epoch))
            print(json.dumps({"acc": lr * epoch / 10}))
        """, command="{python} train.py {lr} {budget} {checkpoint_dir}",
        fidelity={"epochs": {"min": 1, "max": 9, "resumable": True}}, scheduler="asha")
    study = tune(tmp_path, study_file, n_trials=9, fidelity=study_file.fidelity, scheduler="asha")
    assert max(t.budget for t in study.trials) == 9
    for trial in study.trials:
        assert [r.step for r in trial.reports] == list(range(1, int(trial.budget) + 1))
        assert all(r.metrics["acc"] == pytest.approx(trial.config["lr"] * r.step / 10) for r in trial.reports)

    subsample = make_study(tmp_path, """\
        import json, sys
        print(json.dumps({"acc": float(sys.argv[1]) * float(sys.argv[2])}))
        """, command="{python} train.py {lr} {budget}", fidelity={"subsample": {"min": 0.1, "max": 1.0}})
    study = tune(tmp_path, subsample, n_trials=6, fidelity=subsample.fidelity, scheduler="hyperband")
    assert study.trials and all(t.state is not tl.TrialState.FAILED for t in study.trials)
    for trial in study.trials:
        assert trial.reports and all(r.metrics["acc"] == pytest.approx(trial.config["lr"] * r.step)
                                     for r in trial.reports)
