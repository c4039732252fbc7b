"""Checkpoints: what a paused trial needs to continue, kept as files, never in the database.

Storage holds JSON records only (no pickle, no blobs), so a trial's state lives in the
``checkpoint`` folder of the trial's own folder (``tunelab-artifacts/<study>/<trial number>/``
beside a SQLite file; see tunelab.tracking.artifacts), next to its logs. A JSON-able object is written as ``checkpoint.json``, bytes as ``checkpoint.bin``; a
user with other formats (``torch.save`` of a state dict) writes into ``trial.checkpoint_dir``.
Writes go to a temporary file first and are renamed, so a killed trial never leaves half a file.

A checkpoint saved before the report of its epoch (the order a pause needs) runs one step ahead
of storage until that report is stored; a run killed in between would go on from a state whose
report never came, and fail at a rung it has no report for, or store the epoch before's value
as the rung's. So each save notes the last step reported when it was made, and keeps the
checkpoint saved before that report: ``roll_back`` puts an interrupted trial back on a state its
stored reports cover (at worst one epoch is trained again). Files a user writes into the folder
directly are not versioned this way.
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
_REPORTED = "checkpoint.reported"  # the last step reported when the checkpoint was saved (JSON; null: none)
_PREVIOUS = "previous-"  # prefix of the files of the checkpoint saved before that report
_OURS = (_JSON, _BYTES, _REPORTED)


def save(directory: str, obj: Any, reported: float | None = None) -> str:
    """Write ``obj`` (JSON-able or bytes) as the trial's checkpoint; returns the file's path.
    ``reported``: the trial's last reported step (None: none yet). The checkpoint it replaces is
    kept as the previous one when it was saved before that report."""
    os.makedirs(directory, exist_ok=True)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        name, data = _BYTES, bytes(obj)
    else:
        _string_keys(obj)
        try:
            data = json.dumps(obj, default=_plain).encode()  # a file for Python: inf and NaN round-trip
        except (TypeError, ValueError) as err:
            raise ConfigError(f"save_checkpoint takes JSON-able values or bytes ({err}); for other formats "
                              "write files into trial.checkpoint_dir yourself") from None
        name = _JSON
    current = _reported(directory)
    if current is not None and _below(current[0], reported):
        _move(directory, "", _PREVIOUS)
    _write(directory, _REPORTED, json.dumps(reported).encode())
    _write(directory, name, data)
    stale = os.path.join(directory, _BYTES if name == _JSON else _JSON)
    if os.path.exists(stale):
        os.remove(stale)
    return os.path.join(directory, name)


def roll_back(directory: str, last_step: float | None) -> None:
    """Before an interrupted trial goes on: if its checkpoint may be ahead of its stored reports
    (saved when the last of them was already stored, so it may hold the next step), put back
    the one saved before that report, or none when there is none."""
    current = _reported(directory)
    if current is None or _below(current[0], last_step):
        return  # saved before the last stored report: that report covers it
    _move(directory, "", None)
    previous = _reported(directory, _PREVIOUS)
    if previous is not None and _below(previous[0], last_step):
        _move(directory, _PREVIOUS, "")
    else:
        _move(directory, _PREVIOUS, None)


def _below(step: float | None, than: float | None) -> bool:
    """step < than, where None (nothing reported) is below every step."""
    return than is not None and (step is None or step < than)


def _reported(directory: str, prefix: str = "") -> tuple[float | None] | None:
    """(the step noted with the checkpoint,) or None when there is no noted checkpoint."""
    try:
        with open(os.path.join(directory, prefix + _REPORTED)) as handle:
            return (json.load(handle),)
    except (OSError, ValueError):
        return None


def _move(directory: str, source: str, target: str | None) -> None:
    """Rename the checkpoint files with prefix ``source`` to prefix ``target`` (None: delete them)."""
    for name in _OURS:
        path = os.path.join(directory, source + name)
        destination = None if target is None else os.path.join(directory, target + name)
        if destination is not None and os.path.exists(destination):
            os.remove(destination)
        if os.path.exists(path):
            os.replace(path, destination) if destination is not None else os.remove(path)


def _write(directory: str, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, os.path.join(directory, name))


def _string_keys(obj: Any, where: str = "checkpoint") -> None:
    """Refuse dict keys that JSON would turn into strings: ``{0: w}`` would load as ``{"0": w}``
    and the resumed run would fail far from the cause. (Tuples load as lists, numpy values as
    Python numbers and lists: those still index and iterate as before.)"""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                try:
                    loaded = f"it would load as {next(iter(json.loads(json.dumps({key: 0}))))!r}"
                except TypeError:
                    loaded = "JSON cannot store it"
                raise ConfigError(f"save_checkpoint: {where} has the key {key!r} ({type(key).__name__}); JSON keys "
                                  f"are strings, so {loaded}: use string keys")
            _string_keys(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _string_keys(value, f"{where}[{i}]")


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
