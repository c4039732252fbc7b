"""Fault injection shared by the tests and benchmarks/load.py: `tunelab worker` processes, and
kill -9 aimed at workers while they run a trial."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tunelab.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def start_worker(url: str, name: str, *extra: str, quiet_output: bool = False,
                 objective: str = "objectives:sleepy") -> subprocess.Popen:
    """A `tunelab worker` running ``objective`` (from tests/objectives.py) on the study."""
    out = subprocess.DEVNULL if quiet_output else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "tunelab.cli", "worker", "--storage", url, "--study", name,
                             "--objective", objective, "--quiet", *extra],
                            env=ENV, stdout=out, stderr=subprocess.PIPE, text=True)


def dead_owner() -> str:
    """The owner string of a process of this host that has exited: what a killed worker leaves."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return f"{socket.gethostname()}:{proc.stdout.strip()}:1"


def kill_busy_workers(procs: list[subprocess.Popen], store, study_id: int, kills: int, rng: random.Random,
                      restart: Callable[[], subprocess.Popen], deadline: float = 120.0) -> int:
    """kill -9 a worker that is running a trial (a random one, after a random pause), ``kills``
    times, starting a replacement after each; returns how many kills landed on a running trial."""
    done, end = 0, time.monotonic() + deadline

    def held() -> dict[int, set[int]]:
        """pid -> ids of the trials that worker holds, as storage says."""
        out: dict[int, set[int]] = {}
        for trial_id, owner, _ in store.running_trials(study_id):
            if owner:
                out.setdefault(int(owner.split(":")[1]), set()).add(trial_id)
        return out

    while done < kills and time.monotonic() < end:
        busy = [p for p in procs if p.poll() is None and p.pid in held()]
        if not busy:
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.02)
            continue
        time.sleep(rng.uniform(0.0, 0.15))
        victim = rng.choice(busy)
        holding = held().get(victim.pid, set())
        victim.kill()
        victim.communicate()
        # Landed only if the victim still held a trial as it died (the pause may have let it
        # finish one): a trial it held just before is then still running, or already taken over
        # by another process (failed and retried, or queued to go on from its checkpoint, which
        # on a loaded machine is often done before this looks), not ended by the victim itself.
        after = store.trials(study_id, after_id=2**31 - 1, ids=sorted(holding)) if holding else []
        done += any(t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.FAILED)
                    or "interrupted" in t.system_attrs for t in after)
        procs.append(restart())
    return done


def chains(trials) -> dict[int, list]:
    """Trials grouped by the trial they (transitively) retry, cancelled ones left out: one group
    per trial of the budget."""
    by_number = {t.number: t for t in trials}
    groups: dict[int, list] = {}
    for trial in trials:
        if trial.system_attrs.get("cancelled"):
            continue
        root = trial
        while "retry_of" in root.system_attrs:
            root = by_number[root.system_attrs["retry_of"]]
        groups.setdefault(root.number, []).append(trial)
    return groups
