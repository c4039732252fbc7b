"""``tunelab.report`` for scripts: a two-line change that works with and without tunelab.

    from tunelab import report
    report(step=epoch, val_accuracy=acc)

When ``tunelab run`` launched the script, ``TUNELAB_REPORT_FILE`` names a file in the trial's
folder and each report is appended to it as one JSON line; the tuner follows that file. A file
(rather than a pipe or a marked stdout line) survives wrappers that close inherited descriptors,
progress bars that rewrite stdout, and scripts that redirect their own output. When the script
runs on its own, ``report`` prints a plain line and does nothing else.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

REPORT_FILE_ENV = "TUNELAB_REPORT_FILE"


def _metric(name: str, value: Any) -> float:
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"report: metric {name!r} must be a number; got {value!r}")
    return float(value)


def report(step: float | None = None, **metrics: float) -> None:
    """Report ``metrics`` at ``step`` (an epoch, a number of samples; counted 1, 2, 3... if left out)."""
    if not metrics:
        raise TypeError("report needs at least one metric, e.g. report(step=epoch, val_accuracy=acc)")
    values = {name: _metric(name, value) for name, value in metrics.items()}
    if step is not None:
        step = _metric("step", step)
        if not math.isfinite(step):
            raise ValueError(f"report: step must be finite; got {step!r}")
    path = os.environ.get(REPORT_FILE_ENV)
    if not path:
        shown = " ".join(f"{name}={value:.6g}" for name, value in values.items())
        print(f"report: step={step:g} {shown}" if step is not None else f"report: {shown}", flush=True)
        return
    line = json.dumps({"step": step, **values} if step is not None else values, allow_nan=True) + "\n"
    with open(path, "a", encoding="utf-8") as handle:  # appended whole; the reader takes complete lines only
        handle.write(line)
