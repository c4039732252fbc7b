"""An objective that runs a command: each trial is a subprocess, its reports read from its output.

The configuration reaches the script three ways, so that any script can take it: placeholders in
the command line (``--lr {lr}``), environment variables (``TUNELAB_PARAM_LR``, ``TUNELAB_SEED``,
``TUNELAB_TRIAL``, ``TUNELAB_CONFIG`` naming a JSON file) and that JSON file. Reports come back
from stdout (lines matching the declared pattern, or JSON lines) and from ``tunelab.report``.
Each trial's stdout and stderr are saved in its own folder and their paths recorded with the
trial. A scheduler's STOP, a ``trial_timeout`` or a cancelled run stops the script's whole
process group (SIGTERM, then SIGKILL after ``kill_grace`` seconds); a run that reached its budget
at a rung gets ``kill_grace`` seconds to end by itself first, to save its checkpoint.

The objective is a plain dataclass so that it pickles to worker processes.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import TrialPaused, is_plain_number
from tunelab.fidelity import Fidelity
from tunelab.interrupts import raise_if_stopped
from tunelab.script.outputs import JsonLines, RegexLines
from tunelab.script.process import ExitOnSigterm, ScriptProcess
from tunelab.script.reporter import REPORT_FILE_ENV
from tunelab.script.studyfile import StudyFile
from tunelab.script.template import Template, env_name, format_value, whole
from tunelab.tracking.environment import SOURCE_SUFFIXES
from tunelab.trial import RunningTrial, TrialTimeout

#: Seconds to keep reading after the script exited while a child it left still holds its stdout.
LINGER_SECONDS = 2.0
#: Grace period when the worker itself is being terminated (its executor will not wait long).
TERMINATED_GRACE = 1.0


class ScriptFailed(Exception):
    """The script exited with an error code or was killed by a signal."""


class ScriptOutputError(Exception):
    """The script could not start, or ran without delivering the study's metric: a problem of the
    study's setup rather than of one configuration, so ``tunelab run`` stops at the first one."""


@dataclass(frozen=True)
class CommandObjective:
    command: Template
    workdir: str
    metrics: tuple[str, ...]
    artifacts: str  # this study's folder: one sub-folder per trial number
    reader: JsonLines | RegexLines = field(default_factory=JsonLines)
    env: dict[str, str] = field(default_factory=dict)
    result_file: Template | None = None
    fidelity: Fidelity | None = None
    trial_timeout: float | None = None
    kill_grace: float = 10.0

    @classmethod
    def from_study_file(cls, study_file: StudyFile, artifacts: str | Path) -> "CommandObjective":
        return cls(command=study_file.command, workdir=str(study_file.workdir), metrics=tuple(study_file.metrics),
                   artifacts=str(artifacts), reader=study_file.reader, env=dict(study_file.env),
                   result_file=study_file.result_file, fidelity=study_file.fidelity,
                   trial_timeout=study_file.trial_timeout, kill_grace=study_file.kill_grace)

    def __call__(self, config: dict[str, Any], trial: RunningTrial) -> dict[str, float]:
        return _TrialRun(self, config, trial).run()

    @property
    def code_path(self) -> str:
        return code_on_record(self.command, self.workdir)


def code_on_record(command: Template, workdir: str | Path) -> str:
    """The code a command's environment record describes: the script it runs (the first of its
    words naming a source file in the working folder), else the working folder; never the folder
    tunelab was started from, which may be another repository or none."""
    for token in command.tokens:
        path = Path(workdir, token)
        if token.endswith(SOURCE_SUFFIXES) and path.is_file():
            return str(path.resolve())
    return str(Path(workdir).resolve())


class _TrialRun:
    """One trial's run of the command, from folders and environment to the final metrics."""

    def __init__(self, objective: CommandObjective, config: dict[str, Any], trial: RunningTrial):
        self.objective, self.config, self.trial = objective, config, trial
        self.dir = Path(objective.artifacts).resolve() / str(trial.number)
        self.report_file = self.dir / "reports.jsonl"
        self.reports_read = 0  # bytes of the report file consumed so far
        self.count = 0
        self.last: dict[str, float] = {}
        # Lines of one step are one report: a script often prints its training and its validation
        # metrics on lines of their own; reported line by line, the second (the study's metric)
        # came at a step already reported, and was dropped (or a scheduler refused the first).
        self.pending: tuple[float | None, dict[str, float]] | None = None
        self.sent_step: float | None = None  # the step of this run's last report
        self.timed_out = False

    def run(self) -> dict[str, float]:
        obj = self.objective
        values = self._prepare()
        argv = obj.command.render(values)
        result_path = None
        if obj.result_file is not None:
            result_path = Path(obj.workdir, obj.result_file.render_one(values))
            if result_path.is_dir():
                raise ScriptOutputError(f"result_file {obj.result_file.text!r} names the folder {result_path}; "
                                        "name a file in it, e.g. '{trial_dir}/result.json'")
            result_path.unlink(missing_ok=True)  # a stale file must not pass for this trial's result
        stdout_path, stderr_path = self.dir / "stdout.log", self.dir / "stderr.log"
        for key, value in (("command", shlex.join(argv)), ("trial_dir", str(self.dir)),
                           ("stdout", str(stdout_path)), ("stderr", str(stderr_path))):
            self.trial.set_user_attr(key, value)
        try:
            process = ScriptProcess(argv, cwd=obj.workdir, env=self._environment(values, result_path),
                                    stdout_path=stdout_path, stderr_path=stderr_path)
        except OSError as err:
            raise ScriptOutputError(f"cannot start {argv[0]!r} in {obj.workdir}: {err.strerror or err}") from None
        with ExitOnSigterm() as guard:
            try:
                self._follow(process)
            except TrialPaused:
                budget = self.trial.budget
                if budget is not None and (self.trial.last_step or 0) >= budget * (1 - 1e-9):
                    self._let_end(process, obj.kill_grace, budget)
                raise
            finally:
                process.stop(min(obj.kill_grace, TERMINATED_GRACE) if guard.signalled else obj.kill_grace)
        if self.timed_out:
            last = f"; its last line of stdout: {process.stdout_tail[-1][:200]!r}" if process.stdout_tail else ""
            raise TrialTimeout(f"the script ran past trial_timeout={obj.trial_timeout:g}s and was killed{last}")
        self._read(process, wait=0)
        self._flush()
        code = process.returncode
        self.trial.set_user_attr("exit_code", code)
        if code != 0:
            raise ScriptFailed(_failure(code, list(process.stderr_tail)))
        return self._result(process, result_path)

    def _prepare(self) -> dict[str, Any]:
        """Make the trial's folders and config file; the values placeholders can take."""
        obj, trial = self.objective, self.trial
        checkpoints = self.dir / "checkpoint"
        checkpoints.mkdir(parents=True, exist_ok=True)  # kept: a resumed trial finds its checkpoints
        config_file = self.dir / "config.json"
        config_file.write_text(json.dumps(self.config, indent=2) + "\n")
        with open(self.report_file, "ab"):  # kept, as the logs are: a promoted trial's file holds all its runs
            pass
        self.reports_read = self.report_file.stat().st_size  # this run reads from here on
        values: dict[str, Any] = dict(self.config)
        values.update(seed=trial.seed, trial=trial.number, trial_dir=str(self.dir), checkpoint_dir=str(checkpoints),
                      config_file=str(config_file), python=sys.executable, study=trial.study_name)
        if obj.fidelity is not None:
            budget = trial.budget if trial.budget is not None else obj.fidelity.max
            values["budget"] = values[obj.fidelity.name] = whole(budget)
        return values

    def _environment(self, values: dict[str, Any], result_path: Path | None) -> dict[str, str]:
        # What a tunelab that launched *us* passed down must not leak into this trial's script.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELAB_") or k == "TUNELAB_STORAGE"}
        env.setdefault("PYTHONUNBUFFERED", "1")  # Python scripts otherwise hold back piped output
        env.update(self.objective.env)
        env.update({env_name(name): format_value(value) for name, value in self.config.items()})
        env.update(TUNELAB_CONFIG=values["config_file"], TUNELAB_SEED=str(values["seed"]),
                   TUNELAB_TRIAL=str(values["trial"]), TUNELAB_TRIAL_DIR=values["trial_dir"],
                   TUNELAB_CHECKPOINT_DIR=values["checkpoint_dir"], TUNELAB_STUDY=values["study"])
        env[REPORT_FILE_ENV] = str(self.report_file)
        if "budget" in values:
            env["TUNELAB_BUDGET"] = format_value(values["budget"])
        if result_path is not None:
            env["TUNELAB_RESULT_FILE"] = str(result_path)
        return env

    # -- following the script ------------------------------------------------------------------
    def _follow(self, process: ScriptProcess) -> None:
        """Turn output into reports until the script ends or runs out of time. A report may raise
        TrialPruned (the scheduler's STOP); the caller then stops the process group."""
        started, exited_at = time.monotonic(), None
        timeout = self.objective.trial_timeout
        while True:
            raise_if_stopped()  # a Ctrl-C or SIGTERM whose exception got lost must still end the wait
            self._read(process, wait=0.1)
            if process.returncode is not None:
                exited_at = exited_at or time.monotonic()
                if process.stdout_closed or time.monotonic() - exited_at > LINGER_SECONDS:
                    return
            elif timeout is not None and time.monotonic() - started > timeout:
                self.timed_out = True  # only while it runs: one that ended in time is read to its end
                return

    def _let_end(self, process: ScriptProcess, grace: float, budget: float) -> None:
        """The run reached its budget, where it waits for a promotion: the script, told to go
        that far, ends by itself once it has saved what a promoted run goes on from (often after
        printing that epoch's line). It gets ``grace`` seconds for it before it is stopped;
        stopped at once, it would lose that checkpoint or leave it half written. (A pause before
        the budget is a scheduler's own, and the script is stopped at once.) A script that
        reports a step past its budget does not read it: said once, and stopped at once (each
        run trained to the end, unseen, and the scheduler saved nothing)."""
        deadline = time.monotonic() + grace
        while process.returncode is None and time.monotonic() < deadline:
            raise_if_stopped()
            for line in process.lines(wait=0.1):  # drained, so that the script never blocks on a full pipe
                parsed = self.objective.reader.parse(line)
                if parsed is not None and parsed[0] is not None and parsed[0] > budget * (1 + 1e-9):
                    self.trial._warn(f"went on to step {parsed[0]:g} past its budget {budget:g}: the command should "
                                     f"read {{budget}} (or $TUNELAB_BUDGET) and stop there, or every run trains "
                                     "to the end whatever the scheduler decides")
                    return

    def _read(self, process: ScriptProcess, wait: float) -> None:
        for line in process.lines(wait):
            self._emit(self.objective.reader.parse(line))
        with open(self.report_file, "rb") as handle:
            handle.seek(self.reports_read)
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.reports_read += complete
        for line in chunk[:complete].decode("utf-8", errors="replace").splitlines():
            self._emit(JsonLines().parse(line))

    def _emit(self, parsed) -> None:
        """Gather a line's metrics into the report of its step, sent as soon as it holds the
        study's metric (the one a scheduler judges, so that it decides at once), else when a line
        of another step comes or the script ends."""
        if parsed is None:
            return
        step, metrics = parsed
        self.count += 1
        self.last.update(metrics)
        if step is None:
            fidelity = self.objective.fidelity
            if fidelity is not None and not fidelity.resumable:
                return  # one run at one level: its values are its result, reported at trial.budget
        elif step == self.sent_step:
            return  # more of a step already reported: kept in the result, too late for its report
        pending = self.pending
        if pending is not None and (pending[0] != step or (step is None and metrics.keys() & pending[1].keys())):
            self._flush()  # a new step (without one: a metric again) begins a new report
        if self.pending is None:
            self.pending = (step, {})
        self.pending[1].update(metrics)
        if self.objective.metrics[0] in self.pending[1]:
            self._flush()

    def _flush(self) -> None:
        if self.pending is None:
            return
        step, metrics = self.pending
        self.pending = None
        if self.trial.judged_on is not None and self.trial.judged_on not in metrics:
            return  # a step without the metric its scheduler judges (one every k epochs): kept in the result only
        if step is None:
            step = (self.trial.last_step or 0) + 1  # the next epoch, also after a pause or a restart
        self.sent_step = step
        self.trial.report(step, **metrics)

    # -- the end -------------------------------------------------------------------------------
    def _result(self, process: ScriptProcess, result_path: Path | None) -> dict[str, float]:
        metrics = list(self.objective.metrics)
        if result_path is not None:
            return {**self.last, **_read_result_file(result_path, metrics)}
        missing = [m for m in metrics if m not in self.last]
        if missing:
            raise ScriptOutputError(self._missing(missing[0], process))
        return dict(self.last)

    def _missing(self, metric: str, process: ScriptProcess) -> str:
        source = f"{self.objective.reader.describe()} on stdout, or tunelab.report"
        if self.last:
            seen = f"it reported {', '.join(sorted(self.last))} in {self.count} report(s)"
        else:
            tail = " | ".join(repr(line[:120]) for line in process.stdout_tail) or "nothing"
            seen = f"no report at all in {process.stdout_count} line(s) of stdout; the last: {tail}"
        return f"the script finished but never reported the metric {metric!r} (read from {source}); {seen}"


def _read_result_file(path: Path, metrics: list[str]) -> dict[str, float]:
    if not path.is_file():
        raise ScriptOutputError(f"the script finished but wrote no result file {path}")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ScriptOutputError(f"result file {path} is not JSON: {err}") from None
    if is_plain_number(data):
        data = {metrics[0]: data}
    example = f"{{{json.dumps(metrics[0])}: 0.93}}"
    if not isinstance(data, dict):
        raise ScriptOutputError(f"result file {path} must hold a JSON object of metrics, e.g. {example}, or a "
                                f"single number; it holds {_json_kind(data)}")
    missing = [m for m in metrics if m not in data]
    if missing:
        raise ScriptOutputError(f"result file {path} holds {', '.join(sorted(data)) or 'nothing'} "
                                f"but not the metric {missing[0]!r}")
    # A metric written as text or true/false is so in every trial: said here, the run stops at its first
    # (null may be one run's "no value", a diverged run's: that trial fails, the others go on)
    wrong = next((m for m in metrics if data[m] is not None and not is_plain_number(data[m])), None)
    if wrong is not None:
        raise ScriptOutputError(f"result file {path}: the metric {wrong!r} must be a JSON number, e.g. {example}; "
                                f"it holds {_json_kind(data[wrong])}: {json.dumps(data[wrong])[:80]}")
    return data


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's terms (the file is JSON, not Python)."""
    return "null" if value is None else "true/false" if isinstance(value, bool) else \
        "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else \
        "a number" if is_plain_number(value) else "a string"


def _failure(code: int | None, stderr_tail: list[str]) -> str:
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    if not stderr_tail:
        return f"{how}, nothing on stderr"
    return f"{how}: {stderr_tail[-1]}\n--- end of stderr ---\n" + "\n".join(stderr_tail)
