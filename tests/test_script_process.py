"""A trial's script as a process group: stopped as a whole, and never outliving its tuner.

The scripts here start grandchildren (``sh -c 'python ...; true'`` keeps the shell as the
group's leader, a ``sleep`` below the Python), because the kernel's parent-death signal alone
would reach only the leader: these tests fail if the whole group does not go.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tunelab.script.process import ScriptProcess

TREE = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (reparented to an init that may never reap): it runs no more."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_all(pids) -> None:
    """Leave nothing behind when an assertion failed."""
    for pid in pids:
        if dead(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def read_pids(path: Path, seconds: float = 60) -> list[int]:
    assert wait_until(path.exists, seconds), f"no {path}"
    return [int(p) for p in path.read_text().split()]


# A parent that starts a group the way it is asked to, writes the pids down and waits to be killed.
PARENT = """\
import os, subprocess, sys, time
from tunelab.script.lifeline import Watchdog
guard = sys.argv[2]
child = subprocess.Popen(["sh", "-c", "sleep 300 & echo $! > {out}.sleep; wait; true"], start_new_session=True)
watchdog = Watchdog(child.pid) if guard in ("watchdog", "released") else None
while not os.path.exists("{out}.sleep") or not open("{out}.sleep").read().strip():
    time.sleep(0.01)
if guard == "released":
    watchdog.release()
with open("{out}.tmp", "w") as f:
    f.write(f"{{child.pid}} {{open('{out}.sleep').read().strip()}}")
os.replace("{out}.tmp", "{out}")
time.sleep(300)
"""


def start_parent(tmp_path: Path, guard: str) -> tuple[subprocess.Popen, list[int]]:
    out = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(out=out), "x", guard],
                              env={**os.environ, "PYTHONPATH": str(TREE)})
    try:
        return parent, read_pids(out, 30)
    except BaseException:
        parent.kill()
        raise


def test_the_watchdog_kills_the_whole_group_when_its_parent_is_killed(tmp_path):
    parent, pids = start_parent(tmp_path, "watchdog")
    try:
        parent.kill()
        parent.wait()
        assert wait_until(lambda: all(dead(pid) for pid in pids), 10), [p for p in pids if not dead(p)]
    finally:
        kill_all(pids)


def test_a_released_watchdog_leaves_the_group_alone(tmp_path):
    """After release (the group was stopped) the parent's death signals nothing: the number of
    a group that ended may belong to another program by then."""
    parent, pids = start_parent(tmp_path, "released")
    try:
        parent.kill()
        parent.wait()
        time.sleep(0.5)  # what the watchdog would have needed to act (it is told at once; it does not)
        assert not any(dead(pid) for pid in pids)
    finally:
        kill_all(pids)


def test_stop_ends_the_whole_group_and_dismisses_its_watchdog(tmp_path):
    script = ScriptProcess(["sh", "-c", "sleep 300 & echo $!; wait; true"], cwd=tmp_path, env=os.environ,
                           stdout_path=tmp_path / "out", stderr_path=tmp_path / "err")
    watchdog = script._watchdog.process
    lines: list[str] = []
    assert wait_until(lambda: lines.extend(script.lines(0.1)) or lines, 10)
    grandchild = int(lines[0])
    try:
        script.stop(grace=1.0)
        assert dead(script.popen.pid) and dead(grandchild)
        assert watchdog is not None and watchdog.returncode == 0  # told "done", it exited by itself
    finally:
        kill_all([grandchild])


SLEEPER = """\
import json, os, subprocess, sys, time
print(json.dumps({"step": 1, "acc": 0.5}), flush=True)
if os.environ["TUNELAB_TRIAL"] == "0":
    sys.exit(0)  # the first trial runs alone: let it pass, so that the later ones run as configured
grandchild = subprocess.Popen(["sleep", "300"])
folder = os.environ["TUNELAB_TRIAL_DIR"]
with open(os.path.join(folder, "pids.tmp"), "w") as f:
    f.write(f"{os.getppid()} {os.getpid()} {grandchild.pid}")
os.replace(os.path.join(folder, "pids.tmp"), os.path.join(folder, "pids"))
time.sleep(300)
"""

STUDY = """\
name: orphans
command: "sh -c '{python} sleeper.py; true'"
metric: acc
mode: max
space: {x: {uniform: [0, 1]}}
n_trials: 3
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_tuner_killed_with_sigkill_takes_its_scripts_with_it(tmp_path, workers):
    """kill -9 of `tunelab run`: the shell, its Python and that Python's child all end, in the
    tuner's own process (workers: 1) and in its worker processes (workers: 2)."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    (tmp_path / "study.yaml").write_text(textwrap.dedent(STUDY))
    env = {**os.environ, "PYTHONPATH": str(TREE)}
    env.pop("TUNELAB_STORAGE", None)
    tuner = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "run", "study.yaml", "--set", f"workers={workers}"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        for trial in range(1, 1 + workers):
            path = tmp_path / "tunelab-artifacts" / "orphans" / str(trial) / "pids"
            assert wait_until(lambda: path.exists() or tuner.poll() is not None, 60), "no trial started"
            assert tuner.poll() is None, tuner.communicate()[1]
            pids += read_pids(path)
        assert not any(dead(pid) for pid in pids)
        tuner.kill()
        tuner.wait()
        assert wait_until(lambda: all(dead(pid) for pid in pids), 15), [p for p in pids if not dead(p)]
    finally:
        tuner.kill()
        tuner.wait()
        kill_all(pids)
