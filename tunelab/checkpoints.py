"""Checkpoints: what a paused trial needs to continue, kept as files, never in the database.

Storage holds JSON records only (no pickle, no blobs), so a trial's state lives in the
``checkpoint`` folder of the trial's own folder (``tunelab-artifacts/<study>/<trial number>/``
beside a SQLite file; see tunelab.tracking.artifacts), next to its logs. A JSON-able object is written as ``checkpoint.json``, bytes as ``checkpoint.bin``; a
user with other formats (``torch.save`` of a state dict) writes into ``trial.checkpoint_dir``.
Writes go to a temporary file first and are renamed, so a killed trial never leaves half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import ConfigError

_JSON, _BYTES = "checkpoint.json", "checkpoint.bin"


def save(directory: str, obj: Any) -> str:
    """Write ``obj`` (JSON-able or bytes) as the trial's checkpoint; returns the file's path."""
    os.makedirs(directory, exist_ok=True)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        name, data = _BYTES, bytes(obj)
    else:
        try:
            data = json.dumps(obj, default=_plain).encode()  # a file for Python: inf and NaN round-trip
        except (TypeError, ValueError) as err:
            raise ConfigError(f"save_checkpoint takes JSON-able values or bytes ({err}); for other formats "
                              "write files into trial.checkpoint_dir yourself") from None
        name = _JSON
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, os.path.join(directory, name))
    stale = os.path.join(directory, _BYTES if name == _JSON else _JSON)
    if os.path.exists(stale):
        os.remove(stale)
    return os.path.join(directory, name)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r}")


def load(directory: str) -> Any:
    """The last saved checkpoint, or None when the trial has none (a fresh start)."""
    path = Path(directory)
    if (path / _BYTES).exists():
        return (path / _BYTES).read_bytes()
    if (path / _JSON).exists():
        return json.loads((path / _JSON).read_text())
    return None


def exists(directory: str) -> bool:
    """Whether the trial saved a checkpoint (ours, or files of its own in the folder)."""
    try:
        return any(not name.startswith(".tmp-") for name in os.listdir(directory))
    except OSError:
        return False


def start_afresh(directory: str, where: str) -> None:
    """A trial that starts from nothing must find no checkpoint: one in its folder was left by
    another study of the same name (deleted without tunelab, or in another database that uses
    the same artefact folder), and going on from it would train someone else's model. It is
    removed, with a warning that names the cause."""
    if exists(directory):
        warnings.warn(f"{where} found a checkpoint it did not save in {directory} (left by another study of "
                      "the same name?); removed it so that the trial starts afresh", stacklevel=3)
        delete(directory)


def delete(directory: str) -> bool:
    """Remove a trial's checkpoint directory; True when there was one."""
    if os.path.isdir(directory):
        shutil.rmtree(directory, ignore_errors=True)
        return True
    return False
