"""Copy each trial to MLflow as a run: parameters, reported curves, final metrics, state.

The experiment is named after the study; a run's tags say which trial, seed and environment
it was, so a run in MLflow leads back to the tunelab record. Defaults to a local SQLite store
in the working directory (``sqlite:///mlflow.db``), MLflow's recommended local backend; a
file store (``file:///path/mlruns``) works where ``MLFLOW_ALLOW_FILE_STORE=true`` is set.
"""

from __future__ import annotations

from typing import Any

from tunelab.errors import ConfigError
from tunelab.tracking.callbacks import Callback
from tunelab.trial import Trial, TrialState

_STATUS = {TrialState.COMPLETED: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAILED: "FAILED",
           TrialState.PAUSED: "SCHEDULED"}


class MLflowCallback(Callback):
    def __init__(self, tracking_uri: str = "sqlite:///mlflow.db", experiment: str | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("the MLflow callback needs mlflow: pip install 'tunelab[mlflow]'") from None
        self.client, self.experiment = MlflowClient(tracking_uri=tracking_uri), experiment
        self._experiment_ids: dict[str, str] = {}

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiment_ids:
            found = self.client.get_experiment_by_name(name)
            self._experiment_ids[name] = found.experiment_id if found else self.client.create_experiment(name)
        return self._experiment_ids[name]

    def on_trial_end(self, study: Any, trial: Trial) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self.client.create_run(self._experiment_id(self.experiment or study.name),
                                     start_time=int((trial.started_at or 0) * 1000), run_name=f"trial-{trial.number}")
        worker = trial.system_attrs.get("worker") or {}
        tags = {"tunelab.study": study.name, "tunelab.trial": str(trial.number), "tunelab.state": trial.state.value,
                "tunelab.seed": str(trial.seed), "tunelab.host": str(worker.get("host")),
                "tunelab.environment": str(worker.get("environment_fingerprint") or study.environment.get("fingerprint"))}
        if trial.error:
            tags["tunelab.error"] = trial.error[:5000]
        metrics = [Metric(k, float(v), int(r.time * 1000), int(round(r.step)))
                   for r in trial.reports for k, v in r.metrics.items()]
        end_ms = int((trial.finished_at or trial.started_at or 0) * 1000)
        end_ms = max([end_ms] + [m.timestamp + 1 for m in metrics])  # MLflow's latest value is the result
        last = int(round(trial.reports[-1].step)) if trial.reports else 0
        metrics += [Metric(k, float(v), end_ms, last) for k, v in trial.metrics.items()  # the latest: the result
                    if isinstance(v, (int, float)) and not isinstance(v, bool)]
        params = [Param(k, str(v)) for k, v in trial.config.items()]
        for start in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000],
                                  params=params if start == 0 else [],
                                  tags=[RunTag(k, v) for k, v in tags.items()] if start == 0 else [])
        self.client.set_terminated(run.info.run_id, _STATUS.get(trial.state, "FINISHED"), end_time=end_ms)
