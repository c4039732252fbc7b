"""Stop signals that are never lost: Ctrl-C (SIGINT) and ``kill`` (SIGTERM) end a tuning run.

Python raises a signal handler's exception in whatever Python code the main thread runs at that
moment, and two kinds of place lose it:

* a finalizer that the garbage collector calls (an object's ``__del__``, a ``weakref.finalize``
  callback such as SQLAlchemy's return of a connection to its pool): the interpreter prints
  "Exception ignored in ..." and drops the exception;
* library code that is not signal-safe, where the exception turns into another one: a
  KeyboardInterrupt that lands in ``threading.Condition.wait`` (``queue.Queue.get``) between its
  timed wait and taking the lock back comes out as ``RuntimeError: release unlocked lock``, which
  an ``except Exception`` then treats as an ordinary failure of the trial.

Either way a tuner that waits on a script running for hours kept waiting, and went on to start the
next trial. So within :class:`StopSignals` the handlers also write the signal down, and the places
that wait or decide to go on (the tuner's loop, a script trial's loop, the executor that turns an
objective's exception into a failed trial) call :func:`raise_if_stopped`, which raises the
exception again when a stop signal came.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

#: Signals received inside a StopSignals block, in order; cleared when the outermost block ends.
_received: list[int] = []
_depth = 0


def stop_exception(signum: int) -> BaseException:
    """What a stop signal raises: KeyboardInterrupt for Ctrl-C, SystemExit(128 + n) otherwise."""
    return KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)


def stop_requested() -> int | None:
    """The first stop signal received in the current StopSignals block, or None."""
    return _received[0] if _received else None


def raise_if_stopped() -> None:
    """Raise the exception of a stop signal that came, in case it went missing on its way.

    Call it only where a run would otherwise go on (never in a ``finally`` that cleans up after
    the exception, which must not be interrupted by its own signal once more)."""
    if _received:
        raise stop_exception(_received[0])


class StopSignals:
    """In the main thread, for the duration of the block: the first SIGTERM raises
    ``SystemExit(143)`` so that ``finally`` blocks run (the scripts of running trials are stopped,
    the trials cancelled), and with ``sigint=True`` each Ctrl-C raises KeyboardInterrupt as
    Python's own handler does. Both are also remembered for :func:`raise_if_stopped`.

    A SIGINT whose handler is not Python's default is left alone: a worker process that ignores
    Ctrl-C (the tuner handles it) keeps ignoring it, and an application's own handler stays.
    Outside the main thread this does nothing (signals are only delivered there)."""

    def __init__(self, *, sigint: bool = True, sigterm: bool = True) -> None:
        self.signalled = False
        self._wanted = [s for s, on in ((signal.SIGINT, sigint), (signal.SIGTERM, sigterm)) if on]
        self._previous: dict[int, Any] = {}
        self._entered = False

    def __enter__(self) -> "StopSignals":
        global _depth
        if threading.current_thread() is not threading.main_thread():
            return self
        self._entered = True
        if _depth == 0:
            _received.clear()
        _depth += 1
        for signum in self._wanted:
            current = signal.getsignal(signum)
            ours = isinstance(getattr(current, "__self__", None), StopSignals)
            if signum == signal.SIGTERM or current is signal.default_int_handler or ours:
                self._previous[signum] = current
                signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        first = signum not in _received
        _received.append(signum)
        self.signalled = True
        if signum == signal.SIGINT or first:  # a second SIGTERM must not interrupt the cleanup of the first
            raise stop_exception(signum)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: Any) -> None:
        """Put the previous handlers back and, when a stop signal came but the block is ending
        without its exception, raise it here. A SIGTERM whose exception was lost in a finalizer
        (a Study's lock leaving its WeakKeyDictionary) on the run's last turn, one that a budget
        (target, timeout, patience) ended, was otherwise forgotten: tl.tune returned as if nothing
        had come, and a program running one study after another (tunelab bench-mf) went on with
        the next. An ordinary exception on its way out gives way to the stop as well (it may be
        the stop itself turned into another exception, and a caller that catches it goes on)."""
        global _depth
        if not self._entered:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        self._entered = False
        pending = stop_requested()
        _depth -= 1
        if _depth == 0:
            _received.clear()
        if pending is not None and (exc_type is None or not issubclass(exc_type, (KeyboardInterrupt, SystemExit))):
            raise stop_exception(pending)
