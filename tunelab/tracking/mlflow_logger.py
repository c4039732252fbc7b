"""Copy each trial to MLflow as a run: parameters, reported curves, final metrics, state.

The experiment is named after the study; a run's tags say which trial, seed and environment
it was, so a run in MLflow leads back to the tunelab record. Defaults to a local SQLite store
in the working directory (``sqlite:///mlflow.db``), MLflow's recommended local backend; a
file store (``file:///path/mlruns``) works where ``MLFLOW_ALLOW_FILE_STORE=true`` is set.

MLflow takes parameter and metric names of letters, digits, ``_ - . /``, space and (but on
Windows) ``:`` only; any other character of a name (``acc@1``, ``top-5 (%)``) is logged as
``_`` (and ``_2``, ``_3``... added where that is another name of the run), and the run's tag
``tunelab.renamed`` maps the names logged to the names the study holds.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import Any, Iterable

from tunelab.errors import ConfigError, is_plain_number
from tunelab.tracking.callbacks import Callback, integer_steps, whole_steps
from tunelab.trial import Trial, TrialState

_STATUS = {TrialState.COMPLETED: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAILED: "FAILED",
           TrialState.PAUSED: "SCHEDULED"}
_NOT_IN_A_NAME = re.compile(r"[^/\w.\- ]" if os.name == "nt" else r"[^/\w.\- :]")  # Windows: no colon either
_MAX_NAME = 250  # MLflow's longest key


def mlflow_name(name: str) -> str:
    """``name`` as MLflow accepts a parameter or metric name: other characters become ``_``, and
    a name that reads as a path going elsewhere (``a//b``, ``/a``, ``..``) loses its slashes."""
    key = _NOT_IN_A_NAME.sub("_", str(name))[:_MAX_NAME]
    if posixpath.normpath(key) != key or key.startswith(("/", "..")):
        key = key.replace("/", "_")
    return "_" + key[:_MAX_NAME - 1] if key in ("", ".") or key.startswith("..") else key


def mlflow_names(names: Iterable[str]) -> dict[str, str]:
    """Each of a run's parameter and metric ``names`` as it is logged: itself where MLflow takes
    it, else :func:`mlflow_name`, with ``_2``, ``_3``... added where that is another name of the
    run (``acc@1`` and ``acc_1`` both became ``acc_1``: two curves were logged as one, and the tag
    ``tunelab.renamed`` named only one of them). A name MLflow takes keeps it, whatever order
    the names come in."""
    names = list(dict.fromkeys(str(name) for name in names))
    logged = {name: name for name in names if mlflow_name(name) == name}
    taken = set(logged)
    for name in sorted(set(names) - taken):
        key = base = mlflow_name(name)
        k = 1
        while key in taken:
            k += 1
            key = base[:_MAX_NAME - len(f"_{k}")] + f"_{k}"
        taken.add(key)
        logged[name] = key
    return logged


class MLflowCallback(Callback):
    def __init__(self, tracking_uri: str = "sqlite:///mlflow.db", experiment: str | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("the MLflow callback needs mlflow: pip install 'tunelab[mlflow]'") from None
        self.client, self.experiment = MlflowClient(tracking_uri=tracking_uri), experiment
        self._experiment_ids: dict[str, str] = {}
        # (experiment id, study name, study created, trial) -> (run id, reports logged)
        self._runs: dict[tuple[str, str, str, int], tuple[str, int]] = {}

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiment_ids:
            found = self.client.get_experiment_by_name(name)
            self._experiment_ids[name] = found.experiment_id if found else self.client.create_experiment(name)
        return self._experiment_ids[name]

    def _run(self, experiment_id: str, study: str, created: str, trial: Trial) -> tuple[str, int]:
        """The trial's run and how many of its reports it holds: one run per trial, which a trial
        paused at a rung and resumed later (in this process or another) goes on in. A run is
        found by the study's name and creation time: another study of that name (logged to the
        same experiment, or one made again after a delete) has runs of its own."""
        key = (experiment_id, study, created, trial.number)
        if key not in self._runs:
            found = self.client.search_runs([experiment_id], f"tags.`tunelab.study` = '{study}' and "
                                            f"tags.`tunelab.study_created` = '{created}' and "
                                            f"tags.`tunelab.trial` = '{trial.number}'", max_results=1)
            if found:
                self._runs[key] = (found[0].info.run_id, int(found[0].data.tags.get("tunelab.reports", 0)))
            else:
                run = self.client.create_run(experiment_id, start_time=int((trial.started_at or 0) * 1000),
                                             run_name=f"trial-{trial.number}")
                self._runs[key] = (run.info.run_id, -1)  # -1: its parameters are not logged yet
        return self._runs[key]

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        from mlflow.entities import Metric, Param, RunTag

        experiment_id = self._experiment_id(self.experiment or study.name)
        created = repr(study.record.created_at)
        run_id, logged = self._run(experiment_id, study.name, created, trial)
        worker = trial.system_attrs.get("worker") or {}
        tags = {"tunelab.study": study.name, "tunelab.study_created": created, "tunelab.trial": str(trial.number),
                "tunelab.state": trial.state.value,
                "tunelab.seed": str(trial.seed), "tunelab.host": str(worker.get("host")),
                "tunelab.environment": str(worker.get("environment_fingerprint") or study.environment.get("fingerprint"))}
        if trial.error:
            tags["tunelab.error"] = trial.error[:5000]
        # MLflow's steps are integers: a fractional step (a report every half epoch) is logged at
        # its report's index, its real step beside it as the metric "step", so that none overwrites another
        steps = integer_steps(trial.reports)
        whole = whole_steps(trial.reports)
        names = mlflow_names([*trial.config, *trial.metrics, *(k for r in trial.reports for k in r.metrics),
                              *([] if whole else ["step"])])
        metrics = [Metric(names[k], float(v), int(r.time * 1000), step)
                   for r, step in list(zip(trial.reports, steps))[max(logged, 0):]
                   for k, v in ({**r.metrics} if whole else {**r.metrics, "step": r.step}).items()]
        end_ms = int((trial.finished_at or trial.started_at or 0) * 1000)
        end_ms = max([end_ms] + [m.timestamp + 1 for m in metrics])  # MLflow's latest value is the result
        if trial.state.finished:
            metrics += [Metric(names[k], float(v), end_ms, steps[-1] if steps else 0)
                        for k, v in trial.metrics.items()
                        if is_plain_number(v)]  # the latest: the result
        tags["tunelab.reports"] = str(len(trial.reports))
        renamed = {key: name for name, key in names.items() if key != name}
        if renamed:
            tags["tunelab.renamed"] = json.dumps(renamed, ensure_ascii=False)[:8000]
        params = [Param(names[k], str(v)) for k, v in trial.config.items()] if logged < 0 else []
        for start in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000], params=params if start == 0 else [],
                                  tags=[RunTag(k, v) for k, v in tags.items()] if start == 0 else [])
        self._runs[(experiment_id, study.name, created, trial.number)] = (run_id, len(trial.reports))
        self.client.set_terminated(run_id, _STATUS.get(trial.state, "FINISHED"), end_time=end_ms)
