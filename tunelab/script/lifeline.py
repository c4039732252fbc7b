"""A trial's script dies with the process that started it.

:class:`~tunelab.script.process.ScriptProcess` starts each script in a session of its own, so
that stopping it reaches its whole process group (a ``sh -c`` wrapper, data-loader workers,
``torchrun``). The price: when the process that started it dies without running its ``finally``
blocks (``kill -9``, the OOM killer), nothing stops that group, and the script trains on for
hours on a GPU, its output read by no one. A watchdog closes the gap: a small Python process
outside the script's group reads a pipe whose only write end this process holds. The pipe
closes when this process dies, however it dies; the watchdog then SIGKILLs the whole group,
grandchildren included, on any POSIX system. A normal end says ``done`` first and the watchdog
leaves without a signal: by then the group is gone, and its number may soon belong to someone
else's processes.

(The kernel's parent-death signal, ``PR_SET_PDEATHSIG``, would reach the script's leader only,
not its children, and it must be armed in a ``preexec_fn``, which is not safe in a process that
runs threads, as a tuner does.) Where the watchdog cannot start (no interpreter to run it, in an
embedded Python) stopping a script works as before; only a killed tuner may leave it running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

#: The watchdog's whole program: wait for the pipe to close, then end the group unless told not to.
_WATCHDOG = """\
import os, signal, sys
told = sys.stdin.buffer.read()
if told != b"done":
    try:
        os.killpg(int(sys.argv[1]), signal.SIGKILL)
    except OSError:
        pass
"""


class Watchdog:
    """Ends process group ``pgid`` with SIGKILL if this process dies before :meth:`release`."""

    def __init__(self, pgid: int):
        self.pgid = pgid
        try:
            # Its own session: a Ctrl-C in the terminal or a signal to the tuner's group must not
            # take the watchdog down before it has done its one job. -I -S: no site, fast start.
            self.process: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pgid)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError):
            self.process = None  # no interpreter to start (an embedded Python): no guard

    def release(self) -> None:
        """The group was stopped (or ended): the watchdog leaves it alone and exits."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.stdin.write(b"done")
            process.stdin.flush()
        except OSError:
            pass  # the watchdog is gone already
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2.0)
