"""`tunelab run` end to end: the CLI in a subprocess, a study file, a script, a SQLite database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tunelab as tl

TREE = Path(__file__).resolve().parents[1]

SCRIPT = """\
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
for epoch in range(1, args.epochs + 1):
    print(f"epoch {epoch} val_acc {1 - abs(args.lr - 0.3) / epoch:.4f}")
"""

STUDY = """\
name: cli-demo
command: "{python} train.py --lr {lr} --epochs {budget}"
metric: val_accuracy
mode: max
space:
  lr: {uniform: [0.1, 0.9]}
report: {regex: 'epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)'}
fidelity: {epochs: {min: 1, max: 3}}
n_trials: 3
seed: 1
"""


def tunelab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TREE), "COLUMNS": "200"}
    env.pop("TUNELAB_STORAGE", None)
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def setup(tmp_path: Path, study: str = STUDY, script: str = SCRIPT, name: str = "study.yaml") -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "train.py").write_text(script)
    (tmp_path / "project" / name).write_text(textwrap.dedent(study))


def test_run_then_resume_with_overrides(tmp_path):
    setup(tmp_path)
    first = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert first.returncode == 0, first.stderr
    assert "cli-demo: 3 completed" in first.stdout and "best val_accuracy:" in first.stdout
    assert sorted(p.name for p in (tmp_path / "tunelab-artifacts" / "cli-demo").iterdir()) == ["0", "1", "2"]

    again = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr

    more = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--resume",
                   "--set", "n_trials=5", "--set", "workers=2")
    assert more.returncode == 0, more.stderr
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}")
    assert study.counts() == {"completed": 5} and study.seed == 1
    assert all([r.step for r in t.reports] == [1, 2, 3] for t in study.trials)
    assert study.record.settings["objective"].startswith("command: {python} train.py")

    missing = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///other.db", "--resume")
    assert missing.returncode == 2 and "no study named 'cli-demo'" in missing.stderr


def test_a_dry_run_prints_the_command_of_trial_0_as_the_run_will_start_it(tmp_path):
    setup(tmp_path, STUDY + "enqueue: [{lr: 0.25}]\n")
    dry = tunelab(tmp_path, "run", "project/study.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "--lr 0.25 --epochs 3" in dry.stdout  # the baseline goes first
    result = tunelab(tmp_path, "run", "project/study.yaml")
    assert result.returncode == 0, result.stderr
    trial = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'tunelab.db'}").trials[0]
    assert trial.user_attrs["command"] in dry.stdout  # the very command, seed included


def test_a_metric_the_script_never_prints_stops_the_run_after_the_first_trial(tmp_path):
    without_pattern = "".join(line for line in STUDY.splitlines(True) if not line.startswith("report:"))
    setup(tmp_path, without_pattern.replace("n_trials: 3", "n_trials: 50"))
    result = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "trial 0 failed: the script finished but never reported the metric 'val_accuracy'" in message
    assert "'epoch 3 val_acc" in message and "Stopped before spending the rest of the budget" in message
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}")
    assert len(study.trials) == 1


def test_a_script_that_crashes_before_its_first_report_stops_the_run_after_the_first_trial(tmp_path):
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 50"), "import not_a_module_anywhere\n" + SCRIPT)
    result = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "trial 0 failed: exit code 1: ModuleNotFoundError" in message and "Stopped before spending" in message
    assert len(tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}").trials) == 1


def test_resuming_before_any_trial_worked_checks_one_trial_alone_again(tmp_path):
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 50"), "import not_a_module_anywhere\n" + SCRIPT)
    first = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert first.returncode == 2
    again = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--resume",
                    "--set", "workers=2")  # "fixed" without fixing it
    assert again.returncode == 2 and "trial 1 failed: exit code 1: ModuleNotFoundError" in " ".join(again.stderr.split())
    assert len(tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}").trials) == 2


def test_the_fix_the_setup_check_asks_for_runs_the_whole_budget_on_resume(tmp_path):
    """The failed checks counted toward n_trials: with n_trials=1 the resume after the fix ran
    nothing and printed the old error again."""
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 2"), "import not_a_module_anywhere\n" + SCRIPT)
    for resume in ([], ["--resume"]):
        failed = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", *resume)
        assert failed.returncode == 2 and "do not count toward n_trials" in " ".join(failed.stderr.split())
    (tmp_path / "project" / "train.py").write_text(SCRIPT)  # fixed
    fixed = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--resume")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}").counts() == {"failed": 2,
                                                                                                 "completed": 2}


def test_a_toml_study_file_with_a_preset_space_and_a_bad_key(tmp_path):
    setup(tmp_path, """\
        name = "presets"
        command = "{python} train.py --lr {lr} --epochs 2 --batch-size {batch_size}"
        metric = "val_accuracy"
        mode = "max"
        report = {regex = 'epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)'}
        n_trials = 2

        [space]
        preset = "image_classification"
        """, script=SCRIPT.replace('parser.add_argument("--epochs", type=int)',
                                   'parser.add_argument("--epochs", type=int)\nparser.add_argument("--batch-size")'),
        name="study.toml")
    dry = tunelab(tmp_path, "run", "project/study.toml", "--dry-run")
    assert dry.returncode == 0 and "--batch-size" in dry.stdout and not (tmp_path / "tunelab.db").exists()
    result = tunelab(tmp_path, "run", "project/study.toml")
    assert result.returncode == 0, result.stderr
    assert "presets: 2 completed" in result.stdout and (tmp_path / "tunelab.db").exists()
    bad = tunelab(tmp_path, "run", "project/study.toml", "--set", "n_trails=3")
    assert bad.returncode == 2 and "--set n_trails=3: n_trails: unknown key; did you mean 'n_trials'?" in bad.stderr


HANGING = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.path.join(os.environ["TUNELAB_TRIAL_DIR"], "pids.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(os.path.join(os.environ["TUNELAB_TRIAL_DIR"], "pids.tmp"),
           os.path.join(os.environ["TUNELAB_TRIAL_DIR"], "pids"))
print('{"step": 1, "val_accuracy": 0.5}')
time.sleep(120)
"""


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.parametrize("workers, stop", [(1, signal.SIGINT), (2, signal.SIGINT), (2, signal.SIGTERM)])
def test_interrupting_the_run_leaves_no_script_running(tmp_path, workers, stop):
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 4\nkill_grace: 1"), script=HANGING)
    env = {**os.environ, "PYTHONPATH": str(TREE)}
    args = [sys.executable, "-m", "tunelab.cli", "run", "project/study.yaml", "--set", f"workers={workers}",
            "--set", "report=json", "--resume"]
    first = tunelab(tmp_path, "run", "project/study.yaml", "--set", "n_trials=1", "--set", "report=json",
                    "--set", "trial_timeout=1")  # the first trial of a new study runs alone: let it time out
    assert first.returncode == 1 and "trial_timeout=1s" in first.stdout
    cli = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / "tunelab-artifacts" / "cli-demo" / str(n) / "pids" for n in range(1, 1 + workers)]
    deadline = time.monotonic() + 60
    while not all(p.exists() for p in pid_files) and time.monotonic() < deadline and cli.poll() is None:
        time.sleep(0.1)
    assert all(p.exists() for p in pid_files), cli.communicate(timeout=10)
    cli.send_signal(stop)
    stdout, stderr = cli.communicate(timeout=60)
    assert cli.returncode == (130 if stop == signal.SIGINT else 128 + signal.SIGTERM), stderr
    # it says what the study holds and how to go on (a SIGTERM ended it without a word)
    assert f"cli-demo: stopped; {workers} cancelled" in stdout, stdout
    assert "go on with:  tunelab run project/study.yaml --resume" in stdout, stdout
    pids = [int(pid) for p in pid_files for pid in p.read_text().split()]
    deadline = time.monotonic() + 10  # the executor's replacement workers may still be tidying up
    while not all(_dead(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_dead(pid) for pid in pids), pids
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'tunelab.db'}")
    cancelled = [t for t in study.trials if (t.error or "").startswith("cancelled")]
    waiting = [t for t in study.trials if t.state is tl.TrialState.WAITING]
    assert len(cancelled) == workers and all(t.state is tl.TrialState.FAILED for t in study.trials if t not in waiting)
    assert sorted((t.config["lr"], t.seed) for t in waiting) == sorted((t.config["lr"], t.seed) for t in cancelled)


def test_the_example_runs(tmp_path):
    example = TREE / "examples" / "study.yaml"
    result = tunelab(tmp_path, "run", str(example), "--set", "n_trials=2", "--set", "fidelity.epochs.max=2",
                     "--set", "workers=1", "--storage", "sqlite:///example.db")
    assert result.returncode == 0, result.stderr
    assert "sgd-digits: 2 completed" in result.stdout
    study = tl.load_study("sgd-digits", storage=f"sqlite:///{tmp_path / 'example.db'}")
    assert [r.step for r in study.trials[0].reports] == [1, 2]
    assert study.trials[0].config == {"alpha": 1e-4, "eta0": 0.01, "schedule": "invscaling", "loss": "hinge",
                                      "batch_size": 64}  # the enqueued baseline


def test_yaml_needs_pyyaml_and_says_how_to_install_it(tmp_path, monkeypatch):
    from tunelab.script.source import StudyFileError
    from tunelab.script.studyfile import load_study_file

    setup(tmp_path)
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(StudyFileError, match=r"needs PyYAML: pip install 'tunelab\[run\]'"):
        load_study_file(tmp_path / "project" / "study.yaml")


RESUMABLE_SCRIPT = """\
import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)  # a whole number: tunelab writes 9, not 9.0
parser.add_argument("--checkpoints")
args = parser.parse_args()
path = os.path.join(args.checkpoints, "last_epoch.json")
start = json.load(open(path)) if os.path.exists(path) else 0
for epoch in range(start + 1, args.epochs + 1):
    json.dump(epoch, open(path, "w"))
    print(f"epoch {epoch} val_acc {1 - abs(args.lr - 0.3) / 2 - 0.4 / epoch:.4f}", flush=True)
"""


def test_a_study_file_runs_asha_with_promotions_that_go_on_from_the_scripts_checkpoints(tmp_path):
    setup(tmp_path, STUDY.replace("fidelity: {epochs: {min: 1, max: 3}}",
                                  "fidelity: {epochs: {min: 1, max: 9, resumable: true}}\nscheduler: asha")
          .replace("--epochs {budget}", "--epochs {budget} --checkpoints {checkpoint_dir}")
          .replace("n_trials: 3", "n_trials: 9"),
          RESUMABLE_SCRIPT.replace("start = ", "open('runs.txt', 'a').write(f'{args.epochs}\\n')\nstart = "))
    dry = tunelab(tmp_path, "run", "project/study.yaml", "--dry-run")
    # trial 0's command: the lowest rung of the ladder planned for 9 trials
    assert dry.returncode == 0 and "--epochs 1 " in dry.stdout and f"{sys.executable} train.py" in dry.stdout
    result = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert result.returncode == 0, result.stderr
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}")
    assert study.fidelity.resumable and {t.budget for t in study.trials} == {1.0, 3.0, 9.0}
    for trial in study.trials:  # promoted runs went on from their checkpoints: no epoch trained twice
        steps = [r.step for r in trial.reports]
        assert steps == list(range(1, int(trial.budget) + 1))
        log = (tmp_path / "tunelab-artifacts" / "cli-demo" / str(trial.number) / "stdout.log").read_text()
        assert [int(line.split()[1]) for line in log.splitlines()] == steps  # every run's lines are kept
    assert study.best.budget == 9.0 and not [t for t in study.trials if t.state is tl.TrialState.PAUSED]
    # trial 0 ran alone first (the check of the setup) to the lowest rung, as planned for 9 trials
    assert (tmp_path / "project" / "runs.txt").read_text().splitlines()[0] == "1"


def test_the_reports_file_of_a_promoted_trial_holds_all_its_runs(tmp_path):
    """Each run emptied it: a trial promoted twice kept only its last run's reports."""
    reporting = RESUMABLE_SCRIPT.replace(
        "    print(f\"epoch {epoch} val_acc {1 - abs(args.lr - 0.3) / 2 - 0.4 / epoch:.4f}\", flush=True)",
        "    report(epoch, val_accuracy=1 - abs(args.lr - 0.3) / 2 - 0.4 / epoch)").replace(
        "import argparse, json, os", "import argparse, json, os\nfrom tunelab import report")
    setup(tmp_path, STUDY.replace("fidelity: {epochs: {min: 1, max: 3}}",
                                  "fidelity: {epochs: {min: 1, max: 9, resumable: true}}\nscheduler: asha")
          .replace("--epochs {budget}", "--epochs {budget} --checkpoints {checkpoint_dir}")
          .replace("n_trials: 3", "n_trials: 9").replace("report: {regex: 'epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)'}\n", ""),
          reporting)
    result = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert result.returncode == 0, result.stderr
    best = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}").best
    lines = (tmp_path / "tunelab-artifacts" / "cli-demo" / str(best.number) / "reports.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 10))


SAVES_AFTER_PRINTING = RESUMABLE_SCRIPT.replace("""    json.dump(epoch, open(path, "w"))
    print(f"epoch {epoch} val_acc {1 - abs(args.lr - 0.3) / 2 - 0.4 / epoch:.4f}", flush=True)""", """\
    print(f"epoch {epoch} val_acc {1 - abs(args.lr - 0.3) / 2 - 0.4 / epoch:.4f}", flush=True)
    with open(path, "w") as handle:  # a checkpoint that takes a while to write, after the epoch's line
        handle.write("{")
        handle.flush()
        time.sleep(0.3)
        handle.write(f'"epoch": {epoch}}}')
""").replace("start = json.load(open(path))", "start = json.load(open(path))['epoch']").replace("import argparse", "import time, argparse")


def test_a_run_that_reaches_its_rung_ends_by_itself_and_keeps_the_checkpoint_it_saves_last(tmp_path):
    setup(tmp_path, STUDY.replace("fidelity: {epochs: {min: 1, max: 3}}",
                                  "fidelity: {epochs: {min: 1, max: 9, resumable: true}}\nscheduler: asha")
          .replace("--epochs {budget}", "--epochs {budget} --checkpoints {checkpoint_dir}")
          .replace("n_trials: 3", "n_trials: 4"), SAVES_AFTER_PRINTING)
    result = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert result.returncode == 0, result.stderr
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}")
    assert study.counts() == {"completed": 1, "pruned": 3}  # the promoted run went on from its checkpoint
    for trial in study.trials:
        assert [r.step for r in trial.reports] == list(range(1, int(trial.budget) + 1))  # no epoch twice


PREEMPTED_SCRIPT = RESUMABLE_SCRIPT.replace("flush=True)", """flush=True)
    deaths = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deaths")
    if (epoch, len(open(deaths).read() if os.path.exists(deaths) else "")) in ((2, 0), (5, 1)):
        open(deaths, "a").write("x")
        os.kill(os.getppid(), 9)  # the machine running tunelab goes away
        raise SystemExit(1)""")


def test_a_study_files_max_retries_lets_a_trial_survive_more_deaths_of_its_run(tmp_path):
    """Two preemptions of the `tunelab run` process in a row: with max_retries: 2 the trial goes
    on from the script's checkpoint after each (resumed with --resume) and completes."""
    setup(tmp_path, STUDY.replace("fidelity: {epochs: {min: 1, max: 3}}",
                                  "fidelity: {epochs: {min: 1, max: 9, resumable: true}}\nmax_retries: 2")
          .replace("--epochs {budget}", "--epochs {budget} --checkpoints {checkpoint_dir}")
          .replace("n_trials: 3", "n_trials: 1"), PREEMPTED_SCRIPT)
    run = ("run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    codes = [tunelab(tmp_path, *run).returncode] + [tunelab(tmp_path, *run, "--resume").returncode for _ in "ab"]
    assert codes == [-9, -9, 0]
    trial = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}").get_trial(0)
    assert trial.state is tl.TrialState.COMPLETED, trial
    # The epochs a death cut short before tunelab read their lines lack reports: the script's own
    # checkpoint file had them, and files a script writes are not rolled back (tunelab.checkpoints).
    steps = [r.step for r in trial.reports]
    assert steps == sorted(set(steps)) and {6, 7, 8, 9} <= set(steps) <= set(range(1, 10))
    assert len(trial.system_attrs["interrupted"]) == 2


def test_rerunning_commands_use_the_command_the_study_ran_with_its_overrides(tmp_path):
    script = SCRIPT.replace('parser.add_argument("--epochs", type=int)',
                            'parser.add_argument("--epochs", type=int)\nparser.add_argument("--shift", type=float, default=0)')
    script = script.replace("/ epoch:.4f}", "/ epoch - args.shift:.4f}")
    setup(tmp_path, script=script)
    shifted = 'command={python} train.py --lr {lr} --epochs {budget} --shift 0.25'
    ran = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--set", shifted,
                  "--set", "n_trials=1")
    assert ran.returncode == 0, ran.stderr
    again = tunelab(tmp_path, "reproduce", "cli-demo", "0", "--storage", "sqlite:///runs.db")
    assert again.returncode == 0 and "reproduced" in again.stdout.lower(), again.stdout + again.stderr
    plain = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--set", "name=plain",
                    "--set", "n_trials=1")
    assert plain.returncode == 0, plain.stderr
    study_file = tmp_path / "project" / "study.yaml"
    study_file.write_text(study_file.read_text().replace("--lr {lr}", "--lr {lr} --shift 0.5"))
    edited = tunelab(tmp_path, "reproduce", "plain", "0", "--storage", "sqlite:///runs.db")
    assert edited.returncode == 2 and "now says" in edited.stderr and "--shift 0.5" in edited.stderr


def test_the_closing_hint_works_for_the_storage_used(tmp_path):
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 1"))
    in_memory = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "memory")
    assert in_memory.returncode == 0 and "tunelab show" not in in_memory.stdout
    assert "memory only" in in_memory.stdout
    spaced = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///my runs.db")
    # made absolute (tunelab.script.paths), the hint works from any folder
    assert f"tunelab show cli-demo --storage 'sqlite:///{tmp_path / 'my runs.db'}'" in spaced.stdout
    assert tunelab(tmp_path, "show", "cli-demo", "--storage", "sqlite:///my runs.db").returncode == 0


def test_the_code_on_record_is_the_script_not_the_folder_tunelab_was_started_from(tmp_path):
    """Started from another folder, the study recorded that folder's code (none): an edit of the
    script was 'the same fingerprint as recorded' while its metric halved."""
    setup(tmp_path)
    ran = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db")
    assert ran.returncode == 0, ran.stderr
    study = tl.load_study("cli-demo", storage=f"sqlite:///{tmp_path / 'runs.db'}")
    assert study.environment["code"]["file"] == "train.py"  # the script, hashed
    (tmp_path / "project" / "train.py").write_text(SCRIPT.replace("1 - abs", "0.5 - abs"))
    again = tunelab(tmp_path, "reproduce", "cli-demo", "0", "--storage", "sqlite:///runs.db")
    assert "objective file sha256" in again.stdout and again.returncode == 1, again.stdout + again.stderr


def test_the_script_sees_env_values_as_written_in_the_file_and_on_the_command_line(tmp_path):
    """VERSION: 1.10 reached the script as 1.1, X: 010 as 8, FLAG: yes as true, A: as null."""
    script = SCRIPT + textwrap.dedent("""\
        import json, os
        names = ("VERSION", "X", "FLAG", "A", "B")
        with open("seen.json", "w") as f:
            json.dump({n: os.environ.get(n) for n in names}, f)
        """)
    setup(tmp_path, STUDY.replace("n_trials: 3", "n_trials: 1") + "env: {VERSION: 1.10, X: 010, FLAG: yes, A: }\n",
          script)
    done = tunelab(tmp_path, "run", "project/study.yaml", "--storage", "sqlite:///runs.db", "--set", "env.B=2.50")
    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "project" / "seen.json").read_text())
    assert seen == {"VERSION": "1.10", "X": "010", "FLAG": "yes", "A": "", "B": "2.50"}
