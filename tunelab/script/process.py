"""A trial's script as a process group: started in its own session, its output saved and
followed line by line, and stopped as a whole.

A training script often starts children (data-loader workers, ``torchrun``, a shell wrapper);
stopping only the process we started would leave them running on the GPU. So the script leads
its own process group, and stopping means SIGTERM to the group, a grace period for checkpoints
and clean exits, then SIGKILL to whatever is left. A group of its own is out of reach of our own
end, though: if this process is killed outright the group would run on, so it is tied to our life
(:mod:`tunelab.script.lifeline`).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Mapping, Sequence

from tunelab.interrupts import StopSignals
from tunelab.script.lifeline import Watchdog

STDERR_TAIL_LINES = 20
#: Characters of one stderr line kept for a failed trial's error (a printed tensor, a dumped array
#: is one line of megabytes, stored with the trial and shown by the run); stderr.log keeps it whole.
STDERR_LINE_CHARS = 1000
_POLL = 0.05
_KILL_SETTLE = 5.0  # seconds to wait for SIGKILLed processes to be gone


class ScriptProcess:
    """One running command; stdout lines come out of :meth:`lines`, stderr is kept as a tail."""

    def __init__(self, argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str],
                 stdout_path: Path, stderr_path: Path):
        self.argv = list(argv)
        # A SimpleQueue, not a Queue: Queue.get waits in threading.Condition.wait, which is not
        # signal-safe; a Ctrl-C landing between its timed wait and taking its lock back comes out
        # as "RuntimeError: release unlocked lock" instead of KeyboardInterrupt. SimpleQueue.get
        # waits in C and raises the KeyboardInterrupt itself.
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.stdout_tail: deque[str] = deque(maxlen=5)
        self.stdout_count = 0
        self.stdout_closed = False
        self.popen = subprocess.Popen(self.argv, cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.pgid = self.popen.pid  # a new session: the script leads its own process group
        self._watchdog = Watchdog(self.pgid)  # the group, grandchildren too, should we die without stop()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, stdout_path, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, stderr_path, False), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: IO[bytes], path: Path, is_stdout: bool) -> None:
        """Copy a pipe to its log file; stdout lines also go to the queue, stderr to the tail."""
        with open(path, "ab") as log, stream:  # a promoted trial runs again: its earlier runs stay
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if is_stdout:
                    self._lines.put(line)
                elif line.strip():
                    self.stderr_tail.append(_shortened(line.rsplit("\r", 1)[-1]))
        if is_stdout:
            self._lines.put(None)

    def lines(self, wait: float) -> list[str]:
        """Stdout lines that arrived, waiting up to ``wait`` seconds for the first one."""
        out: list[str] = []
        try:
            item = self._lines.get(timeout=wait) if wait > 0 else self._lines.get_nowait()
            while True:
                if item is None:
                    self.stdout_closed = True
                else:
                    out.append(item)
                    self.stdout_count += 1
                    self.stdout_tail.append(item)
                item = self._lines.get_nowait()
        except queue.Empty:
            pass
        return out

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stop(self, grace: float) -> None:
        """SIGTERM the whole group, give it ``grace`` seconds, SIGKILL what is left; then wait
        for the log pumps so that every line written is on disk. Every ScriptProcess must end
        here: it also dismisses the watchdog, which would otherwise kill the group's number when
        this process exits, by then perhaps another program's."""
        self.popen.poll()
        if _group_alive(self.pgid):
            _signal_group(self.pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.popen.poll()  # reap the leader, so that a dead leader does not count as alive
                if not _group_alive(self.pgid):
                    break
                time.sleep(_POLL)
            else:
                _signal_group(self.pgid, signal.SIGKILL)
                self._await_group_end(_KILL_SETTLE)
        try:
            self.popen.wait(timeout=max(grace, 1.0))
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self._watchdog.release()
        for pump in self._pumps:
            pump.join(timeout=2.0)

    def _await_group_end(self, seconds: float) -> None:
        """SIGKILL is delivered asynchronously: wait (briefly) until no process of the group
        runs, so that a stopped trial's processes are gone when the next one starts."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.popen.poll()
            if not _group_alive(self.pgid):
                return
            time.sleep(_POLL)


def _shortened(line: str) -> str:
    if len(line) <= STDERR_LINE_CHARS:
        return line
    return f"{line[:STDERR_LINE_CHARS]}... ({len(line)} characters; the log holds the whole line)"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs; zombies (dead, not yet reaped by their
    parent) do not count, so a group of exited children is not waited on for nothing."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False  # the usual case once a script has ended: no need to look further
    except PermissionError:
        pass
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    return True


class ExitOnSigterm(StopSignals):
    """In the main thread, turn the first SIGTERM into SystemExit so that `finally` blocks run:
    a worker whose trial is cancelled gets a SIGTERM and must stop its script's group on the way
    out, and a tuner told to end must cancel its trials rather than orphan their scripts. The
    signal is also remembered (see :mod:`tunelab.interrupts`), so that a SystemExit lost on its
    way is raised again by the loop that follows the script."""

    def __init__(self) -> None:
        super().__init__(sigint=False)
