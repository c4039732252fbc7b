"""A live progress bar for a tuning run: trials done, best so far, elapsed time.

Shown only on an interactive terminal unless asked for, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunelab.trial import Trial


class ProgressDisplay:
    def __init__(self, study: Any, total: int | None, enabled: bool | None = None):
        self.study, self.total = study, total
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self._progress: Progress | None = None
        self._task = None

    def start(self, done: int, best: float | None) -> None:
        if not self.enabled:
            return
        self._progress = Progress(  # names go in as fields, escaped: rich reads [..] in them as markup
            TextColumn("[bold]{task.fields[name]}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("tune", total=self.total, completed=done, best=self._best_text(best),
                                             name=escape(self.study.name))

    def _best_text(self, best: float | None) -> str:
        """Markup: a metric such as 'acc[val]' or 'loss[/]' is shown as it is, not read as a style
        (which hid it, or ended the run in a MarkupError)."""
        return "best: -" if best is None else f"best {escape(self.study.metric)}: {best:.6g}"

    def update(self, trial: Trial, best: float | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, best=self._best_text(best))

    def stop(self, reason: str | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress.console.print(f"[dim]{escape(f'{self.study.name}: stopped, {reason}')}[/]")
            self._progress = None
