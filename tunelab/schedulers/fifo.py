"""FIFO: plain black-box tuning. Every trial runs to the end of its own loop."""

from __future__ import annotations

from tunelab.schedulers.base import Scheduler


class FIFOScheduler(Scheduler):
    name = "fifo"
    judges_reports = False
