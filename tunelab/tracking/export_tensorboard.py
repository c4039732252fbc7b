"""A study as TensorBoard event files: one run per trial, and the HParams view.

Layout under the output folder: ``<study>/`` holds the experiment description (which hparams and
metrics exist, and their domains); each ``<study>/trial-<n>/`` is one session, with its hparams,
its reports as scalars ``curve/<metric>`` against the step, its final metrics as scalars
``<metric>``, and how it ended. TensorBoard's HParams tab then lists, filters and plots the trials.
The events are written with the ``tensorboard`` package alone (no TensorFlow, no PyTorch).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tunelab.errors import ConfigError, is_plain_number
from tunelab.tracking.callbacks import integer_steps, whole_steps
from tunelab.trial import TrialState


def _tensorboard() -> SimpleNamespace:
    try:
        from google.protobuf import struct_pb2
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        raise ConfigError("TensorBoard export needs tensorboard: pip install 'tunelab[export]'") from None
    return SimpleNamespace(event=event_pb2, summary=summary_pb2, api=api_pb2, metadata=metadata,
                           plugin=plugin_data_pb2, struct=struct_pb2, Writer=EventFileWriter)


def _hparam_info(tb: SimpleNamespace, name: str, dist: Any) -> Any:
    api = tb.api
    info = api.HParamInfo(name=name)
    options = getattr(dist, "options", None)
    values = options if options is not None else ([dist.value] if hasattr(dist, "value") else None)
    if values is None:
        info.type = api.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = float(dist.low), float(dist.high)
        return info
    kinds = {type(v) for v in values}
    info.type = (api.DATA_TYPE_BOOL if kinds == {bool} else api.DATA_TYPE_FLOAT64
                 if kinds <= {int, float} else api.DATA_TYPE_STRING)
    for v in values:
        info.domain_discrete.values.add().CopyFrom(_value(tb, v))
    return info


def _value(tb: SimpleNamespace, v: Any) -> Any:
    """An hparam value as TensorBoard stores it: bool, number, or (for anything else) a string."""
    out = tb.struct.Value()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, (int, float)):
        out.number_value = float(v)
    else:
        out.string_value = "None" if v is None else str(v)
    return out


def _plugin_event(tb: SimpleNamespace, at: float, tag: str, **content: Any) -> Any:
    data = tb.plugin.HParamsPluginData(version=tb.metadata.PLUGIN_DATA_VERSION, **content)
    summary = tb.summary.Summary(value=[tb.summary.Summary.Value(
        tag=tag, metadata=tb.metadata.create_summary_metadata(data), tensor=tb.metadata.NULL_TENSOR)])
    return tb.event.Event(wall_time=at, summary=summary)


def _scalar_event(tb: SimpleNamespace, at: float, step: int, tag: str, value: float) -> Any:
    summary = tb.summary.Summary(value=[tb.summary.Summary.Value(tag=tag, simple_value=float(value))])
    return tb.event.Event(wall_time=at, step=step, summary=summary)


_STATUS = {TrialState.COMPLETED: "STATUS_SUCCESS", TrialState.FAILED: "STATUS_FAILURE",
           TrialState.PRUNED: "STATUS_SUCCESS"}



def _remove_earlier_export(root: Path) -> None:
    """Delete the event files an earlier export of the study left in ``root``: TensorBoard reads
    every event file of a run, so exporting again (after more trials) drew each curve twice.
    Only event files go, in ``root`` and its ``trial-<n>`` folders; anything else stays."""
    folders = [root, *(p for p in root.glob("trial-*") if p.is_dir() and p.name[len("trial-"):].isdigit())]
    for folder in folders:
        for events in folder.glob("events.out.tfevents.*"):
            events.unlink()
        if folder != root and not any(folder.iterdir()):
            folder.rmdir()  # a trial the study no longer has


def write_tensorboard(study: Any, folder: str | os.PathLike) -> str:
    """Write event files for every trial of ``study`` under ``folder/<study name>``, in place of
    those of an earlier export there."""
    tb = _tensorboard()
    root = Path(folder) / study.name
    _remove_earlier_export(root)
    trials = study.trials
    numeric = sorted({k for t in trials for k, v in t.metrics.items() if is_plain_number(v)} | set(study.metrics))
    experiment = tb.api.Experiment(
        name=study.name, time_created_secs=study.record.created_at,
        hparam_infos=[_hparam_info(tb, n, d) for n, d in study.space.params.items()],
        metric_infos=[tb.api.MetricInfo(name=tb.api.MetricName(tag=m), display_name=m) for m in numeric])
    writer = tb.Writer(str(root))
    writer.add_event(_plugin_event(tb, study.record.created_at, tb.metadata.EXPERIMENT_TAG, experiment=experiment))
    writer.close()
    for trial in trials:
        _write_trial(tb, trial, root / f"trial-{trial.number}", numeric)
    return str(root)


def _write_trial(tb: SimpleNamespace, trial: Any, folder: Path, numeric: list[str]) -> None:
    start = trial.started_at or trial.created_at or 0.0
    writer = tb.Writer(str(folder))
    info = tb.plugin.SessionStartInfo(group_name=f"trial-{trial.number}", start_time_secs=start)
    for name, value in trial.config.items():
        info.hparams[name].CopyFrom(_value(tb, value))
    writer.add_event(_plugin_event(tb, start, tb.metadata.SESSION_START_INFO_TAG, session_start_info=info))
    steps, counted = integer_steps(trial.reports), not whole_steps(trial.reports)
    for report, step in zip(trial.reports, steps):
        for name, value in report.metrics.items():
            writer.add_event(_scalar_event(tb, report.time, step, f"curve/{name}", value))
        if counted:  # the real step goes along as a curve
            writer.add_event(_scalar_event(tb, report.time, step, "curve/step", report.step))
    end = trial.finished_at or start
    last_step = steps[-1] if steps else 0
    for name in numeric:
        if is_plain_number(trial.metrics.get(name)):
            writer.add_event(_scalar_event(tb, end, last_step, name, trial.metrics[name]))
    if trial.state in _STATUS:
        end_info = tb.plugin.SessionEndInfo(status=getattr(tb.api, _STATUS[trial.state]), end_time_secs=end)
        writer.add_event(_plugin_event(tb, end, tb.metadata.SESSION_END_INFO_TAG, session_end_info=end_info))
    writer.close()
