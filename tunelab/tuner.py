"""The one loop: ask the searcher, hand trials to the executor, route every report through the
scheduler, write everything to storage, and stop when a budget says so.

Failures are data here: an objective that raises, returns NaN or kills its worker fails its own
trial and the study goes on, until ``max_failures`` says the objective itself is broken. A
diverged run (NaN or infinite) is the configuration's doing: divergences count only when that
many come in a row (a search over learning rates meets many; an objective always NaN is broken).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from typing import Any, Callable, Mapping, Sequence

from tunelab.api import create_study, recorded_searcher, resolve_setup
from tunelab.reloading import refuse_while_loading_script
from tunelab.budgets import Budgets, run_options
from tunelab.errors import ConfigError, SearchExhausted, SetupWarning, warn_caller
from tunelab.executors import Executor, Outcome, make_executor
from tunelab.executors.base import HEARTBEAT_SECONDS
from tunelab.fidelity import coerce_fidelity
from tunelab.history import better
from tunelab.interrupts import StopSignals, raise_if_stopped
from tunelab.progress import ProgressDisplay
from tunelab.recovery import ENDS, INTERRUPTED, RECOVER_SECONDS, continue_later, retry_dead, stop_trial
from tunelab.space import Space, config_key
from tunelab.storage import Storage
from tunelab.study import Study
from tunelab.tracking.callbacks import Callback, check_callbacks, close_all, notify
from tunelab.tracking.cost import CostMeter, Prices, Resources
from tunelab.trial import Decision, ReportSink, Trial, TrialState, diverged

log = logging.getLogger("tunelab")

#: A trial from another machine is abandoned when its heartbeat is older than this.
STALE_SECONDS = 120.0


class Tuner(ReportSink):
    """The loop. ``wait_for_others`` keeps it alive while other processes still run trials of the
    study (a ``tunelab worker`` does this, so that it picks up their retries if they die);
    ``stale_after`` and ``max_retries`` govern the recovery of abandoned trials, which runs at the
    start and every RECOVER_SECONDS."""

    def __init__(self, study: Study, objective: Callable, executor: Executor, budgets: Budgets,
                 trial_timeout: float | None = None, progress: bool | None = None, callbacks: Sequence[Callback] = (),
                 clock: Callable[[], float] | None = None, *,
                 wait_for_others: bool = False, stale_after: float = STALE_SECONDS, max_retries: int = 1):
        self.study, self.objective, self.executor, self.budgets = study, objective, executor, budgets
        self.callbacks = list(callbacks)
        # Time is read from a clock, not the wall: the simulator's executor brings a simulated one.
        self.clock = clock or getattr(executor, "clock", None) or time.monotonic
        self.trial_timeout = trial_timeout
        if not stale_after >= 2 * HEARTBEAT_SECONDS:  # a live trial elsewhere would pass for abandoned, and run twice
            raise ConfigError(f"stale_after must be at least {2 * HEARTBEAT_SECONDS:g} s (two heartbeats: a running "
                              f"trial's tuner beats every {HEARTBEAT_SECONDS:g} s); got {stale_after!r}")
        self.wait_for_others, self.stale_after, self.max_retries = wait_for_others, stale_after, max_retries
        self.running: dict[int, Trial] = {}
        self.stop_reason: str | None = None
        total = budgets.n_trials or getattr(study.searcher, "size", None)
        self._display = ProgressDisplay(study, total, enabled=progress)

    # -- reports come through here on their way to the study and its scheduler -----------------
    def report(self, trial_id: int, step: float, metrics: dict[str, float]) -> Decision:
        if trial_id not in self.running:  # a late report from a run this loop has ended (timed out)
            return Decision.STOP
        return self.study.report(trial_id, step, metrics)

    def set_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.study.set_user_attr(trial_id, key, value)

    def heartbeat(self, trial_id: int) -> None:
        if trial_id in self.running:
            self.study.storage.heartbeat([trial_id])

    def started(self, trial_id: int) -> None:
        trial, at = self.running.get(trial_id), time.time()
        if trial is not None and trial.running_since is not None and trial.running_since < at:
            self.study.storage.start_clock(trial_id, at)
            trial.started_at = at if trial.started_at == trial.running_since else trial.started_at
            trial.running_since = at  # what the cost meter reads of it while it runs

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> str:
        """Run until a budget ends it. A Ctrl-C (KeyboardInterrupt) cancels the running trials and
        propagates; it is remembered, so that one lost on its way (see :mod:`tunelab.interrupts`)
        still stops the loop at its next turn instead of starting more trials.

        A SIGTERM (``kill``, ``docker stop``, preemption) ends the run the same way, as
        ``SystemExit(143)``, unless the application handles SIGTERM itself: else the process would
        die on the spot, its trials left RUNNING until the next start took them for dead."""
        with StopSignals(sigterm=signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)):
            return self._run()

    def _run(self) -> str:
        study, budgets = self.study, self.budgets
        self._recover()
        self.study.scheduler.plan(budgets.n_trials)
        self._started_at = self.clock()
        self._best, self._since_best, self._failures, self._diverged_in_row = self._initial_best(), 0, 0, 0
        self._caught = False  # an objective caught the exception that ended its run (said once)
        self._exhausted = False
        self._meter = CostMeter(study)
        self._last_heartbeat = self._last_recovery = self.clock()
        self.executor.open(self.objective, self, study.metrics)
        counts = study.counts()
        self._display.start(done=sum(n for state, n in counts.items() if TrialState(state).finished), best=self._best)
        study._tuning, study._stop_asked = True, False
        try:
            while self.stop_reason is None:
                raise_if_stopped()
                self._fill_slots()
                if not self.running:
                    if self.wait_for_others and not study._stop_asked and self._budget_reason() is None \
                            and self._others_running():
                        time.sleep(0.2)
                        self._maintain()
                        continue
                    if self._recover():  # before it ends: a dead process's trial left running is run here
                        continue
                    self.stop_reason = self._idle_reason()
                    break
                for outcome in self.executor.poll(timeout=0.2):
                    self._record(outcome)
                self._maintain()
                self.stop_reason = self.stop_reason or self._budget_reason()
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            raise
        except SystemExit:
            self.stop_reason = "terminated"
            raise
        finally:
            study._tuning = False
            self._cancel_running(self.stop_reason or "tuner stopped")
            self.executor.close()
            close_all(self.callbacks)
            self._display.stop(self.stop_reason)
        if self.stop_reason and self.stop_reason.startswith("max_failures"):  # heard without a progress bar too
            log.warning("%s: stopped, %s", study.name, self.stop_reason)
        return self.stop_reason

    def _initial_best(self) -> float | None:
        if len(self.study.metrics) == 1:
            best = self.study.top_trials(1)
            return best[0].value if best else None
        best = self.study.history().best()
        return None if best is None else best.value

    def _recover(self) -> bool:
        """Queue again the trials of dead processes; whether there were any."""
        requeued = self.study.recover_abandoned(self.stale_after, self.max_retries)
        for trial in requeued:
            same = INTERRUPTED in trial.system_attrs  # else a copy of it starts over
            log.warning("trial %s was abandoned by a dead process; %s", trial.number if same else
                        trial.system_attrs.get("retry_of"), "it goes on from its checkpoint" if same else
                        f"queued again as trial {trial.number}")
        return bool(requeued)

    def _others_running(self) -> bool:
        return any(trial_id not in self.running for trial_id, _, _ in
                   self.study.storage.running_trials(self.study.record.id))

    def _maintain(self) -> None:
        """Heartbeats for our trials, and now and then a look for trials whose process died."""
        self._heartbeat()
        if self.clock() - self._last_recovery >= RECOVER_SECONDS:
            self._last_recovery = self.clock()
            self._recover()

    def _fill_slots(self) -> None:
        while not self.study._stop_asked and self._budget_reason() is None and self.executor.free_slots() > 0:
            n_trials = self.budgets.n_trials
            allow_new = not self._exhausted and (n_trials is None or self.study.counted_trials() < n_trials)
            try:
                started = self.study._start(allow_new=allow_new, limit=n_trials)
            except SearchExhausted:  # paused trials still go on; the study's size is known now
                self._exhausted = True
                self.study.scheduler.plan(self.study.counted_trials())
                continue
            finally:  # paused trials its scheduler pruned for good end here: the callbacks hear it
                while self.study.retired:
                    notify(self.callbacks, self.study, self.study.retired.pop(0))
            if started is None:
                return
            trial, _ = started
            self.running[trial.id] = trial
            self.executor.submit(self.study.spec(trial, self.trial_timeout))

    def _idle_reason(self) -> str:
        if self.study._stop_asked:
            return "study.stop() was called"
        if self._exhausted:
            return "the searcher has nothing new to propose"
        if self.budgets.n_trials is not None and self.study.counted_trials() >= self.budgets.n_trials:
            return f"n_trials={self.budgets.n_trials} reached"
        return self._budget_reason() or "nothing left to run"

    def _record(self, outcome: Outcome) -> None:
        # The trial leaves ``running`` once its end is stored: a Ctrl-C landing before that leaves
        # it for _cancel_running to stop, not "running" in storage for ever.
        trial = self.running.get(outcome.trial_id)
        if trial is None:
            return
        if outcome.died and continue_later(self.study, self.study._trial(trial.id), outcome.error or "its worker died",
                                           self.study.owner, self.max_retries):
            self.running.pop(outcome.trial_id, None)
            log.warning("trial %d: %s; it goes on from its checkpoint", trial.number, outcome.error)
            self._meter.add(self.study._trial(trial.id))  # the stretch it ran before it died
            return
        if outcome.warnings and (outcome.worker or {}).get("pid") != os.getpid():
            for message in outcome.warnings:  # said in a worker process, where only the trial's log saw it
                warn_caller(message)
        state, metrics = outcome.state, outcome.metrics
        told = self.study._decisions.get(trial.id)
        if state is TrialState.COMPLETED and told in ENDS:  # the objective went on after STOP or PAUSE
            state, metrics = ENDS[told], None  # judged where the scheduler said, on what it reported there
            if not self._caught:  # once a run
                warn_caller(f"trial {trial.number}'s objective returned a result after its scheduler answered "
                            f"{told.value.upper()}: the TrialPruned or TrialPaused that trial.report() raised was "
                            f"caught (by an `except Exception:`?); let it propagate. The trial is recorded "
                            f"{state.value}.")
            self._caught = True
        finished = self.study.finish(outcome.trial_id, state, metrics=metrics,
                                     error=outcome.error, traceback=outcome.traceback, worker=outcome.worker)
        self.running.pop(outcome.trial_id, None)
        retried = outcome.died and retry_dead(self.study, finished, self.max_retries) is not None
        self._meter.add(finished)
        notify(self.callbacks, self.study, finished)
        if finished.state.finished or finished.state is TrialState.PAUSED:
            self._diverged_in_row = self._diverged_in_row + 1 if diverged(finished.error) else 0
        if finished.state is TrialState.FAILED:
            self._failures += not diverged(finished.error) and not retried  # a death counts once out of retries
            log.warning("trial %d failed: %s", finished.number, (finished.error or "unknown error").splitlines()[0])
        elif finished.state is TrialState.COMPLETED and finished.value is not None and \
                better(finished.value, self._best, self.study.mode):
            self._best, self._since_best = finished.value, 0
        elif finished.state in (TrialState.COMPLETED, TrialState.PRUNED):  # a pruned one did not improve either
            self._since_best += 1
        if finished.state.finished:  # a paused trial is not done: it may be resumed
            self._display.update(finished, self._best)

    def _budget_reason(self) -> str | None:
        budgets = self.budgets
        if budgets.timeout is not None and self.clock() - self._started_at >= budgets.timeout:
            return f"timeout={budgets.timeout:g}s reached"
        if budgets.target is not None and self._best is not None and not better(budgets.target, self._best, self.study.mode):
            return f"target={budgets.target:g} reached (best {self._best:.6g})"
        if budgets.patience is not None and self._since_best >= budgets.patience:
            return f"no improvement in the last {budgets.patience} trials (patience)"
        if budgets.max_cost is not None and self._meter.spent(self.running.values()) >= budgets.max_cost:
            return f"max_cost={budgets.max_cost:g} {self._meter.prices.currency} reached"
        if budgets.max_failures is not None and self._failures >= budgets.max_failures:
            return (f"max_failures={budgets.max_failures} trials failed in this run; "
                    "check the objective (tunelab show lists their errors)")
        if budgets.max_failures is not None and self._diverged_in_row >= budgets.max_failures:
            which = self.study.metric if len(self.study.metrics) == 1 else "metric"  # several: any of them
            return (f"max_failures={budgets.max_failures} trials in a row diverged (NaN or infinite {which}); "
                    "check the objective and the space (tunelab show lists them)")
        return None

    def _heartbeat(self) -> None:
        if self.running and self.clock() - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self.study.storage.heartbeat(self.running)
            self._last_heartbeat = self.clock()

    def _cancel_running(self, reason: str) -> None:
        """Trials still running when the tuner stops: what they finished meanwhile is recorded,
        then each is stopped as ``tunelab.recovery.stop_trial`` says."""
        if self.running:
            with contextlib.suppress(Exception):  # a broken executor must not keep them running
                for outcome in self.executor.collect():
                    self._record(outcome)
        for trial_id in list(self.running):
            self.executor.cancel(trial_id)
            stop_trial(self.study, trial_id, reason)
        self.running.clear()


def _first_configs(enqueue: Sequence[Mapping[str, Any]] | None, space: Space) -> list[dict[str, Any]]:
    """``enqueue``'s configurations, checked against the space, each once (in its first place)."""
    if isinstance(enqueue, (Mapping, str, bytes)) or not hasattr(enqueue if enqueue is not None else (), "__iter__"):
        one = " (one configuration: put it in a list)" if isinstance(enqueue, Mapping) else ""
        raise ConfigError(f"enqueue is a list of configurations, e.g. enqueue=[{{'lr': 0.01, ...}}]; got "
                          f"{type(enqueue).__name__}{one}")
    queue = {}
    for config in () if enqueue is None else enqueue:
        config = space.validate(config, where="enqueue")
        queue.setdefault(config_key(config), config)
    return list(queue.values())


def _ends_by_itself(searcher: Any) -> bool:
    """Whether a searcher (or the name of one) ends a run when it is used up, as a grid does."""
    return hasattr(searcher, "size") or (isinstance(searcher, str) and searcher.strip().lower() == "grid")


def tune(
    objective: Callable,
    space: Space | Mapping[str, Any],
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str] | None = None,
    searcher: Any = None,
    scheduler: Any = None,
    fidelity: Any = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    target: float | None = None,
    patience: int | None = None,
    max_failures: int | None = 20,
    max_retries: int = 1,
    workers: int = 1,
    executor: "str | Executor | None" = None,
    executor_options: Mapping[str, Any] | None = None,
    trial_timeout: float | None = None,
    storage: "str | Storage | None" = None,
    name: str | None = None,
    seed: int | None = None,
    searcher_options: Mapping[str, Any] | None = None,
    scheduler_options: Mapping[str, Any] | None = None,
    enqueue: Sequence[Mapping[str, Any]] = (),
    progress: bool | None = None,
    max_cost: float | None = None,
    resources: "Resources | Mapping[str, Any] | None" = None,
    prices: "Prices | Mapping[str, Any] | None" = None,
    artifact_dir: "str | os.PathLike | None" = None,
    callbacks: Sequence[Callback] = (),
) -> Study:
    """Tune ``objective(config, trial)`` over ``space`` and return the study.

    The run ends at the first budget reached: ``n_trials`` (the study's total), ``timeout``
    seconds, ``target`` value, ``patience`` trials without improvement, ``max_failures`` failed
    trials (diverged ones, NaN or inf, only when that many come in a row), ``max_cost`` spent
    (each trial holds ``resources`` at ``prices``, see :mod:`tunelab.tracking.cost`), or when the searcher is exhausted (a finished grid). A trial
    whose process dies (a killed worker, a killed tuner, the machine lost) is run again up to
    ``max_retries`` times, from its checkpoint when it saved one; raise it on machines that get
    preempted, set 0 to fail such trials at once. A study of the same ``name`` in ``storage`` is
    continued, with its own searcher and scheduler unless given. ``enqueue`` lists configurations
    (e.g. a baseline) to try first. ``fidelity`` (``tl.fidelity("epochs", min=1, max=81, resumable=True)``)
    lets a multi-fidelity ``scheduler`` (asha, hyperband, bohb, ...) decide how far each trial runs.
    Trials' logs and files go to ``artifact_dir``; ``callbacks`` (e.g.
    :class:`tunelab.tracking.mlflow_logger.MLflowCallback`) hear of each trial as it is recorded; one
    may end the run with ``study.stop()`` (the running trials finish, no more start).
    ``executor`` is "inline", "processes", "ray" or "dask" (or an Executor); ``executor_options``
    go to its constructor (e.g. ``{"address": "ray://head:10001", "resources": {"cpus": 2}}``).
    The budgets are stored with the study, so that ``tunelab worker`` processes joining it know
    when it is done; n_trials is claimed atomically, so together they never run more.
    """
    if not callable(objective):
        raise ConfigError(f"objective must be a function objective(config, trial); got {objective!r}")
    budgets = Budgets(n_trials, timeout, target, patience, max_failures, max_cost)
    budgets.validate()  # numpy numbers become plain ones, here and in run_options
    refuse_while_loading_script()  # before anything is opened: a re-run loading a script must not tune
    n_trials, (workers, trial_timeout, max_retries) = budgets.n_trials, run_options(workers, trial_timeout, max_retries)
    fidelity = coerce_fidelity(fidelity)
    # Refused before the study is opened: a refused call left an empty study (a new name each time)
    space = Space.coerce(space)
    queue = _first_configs(enqueue, space)
    budgets.check_room(len(queue), 0, name)
    recorded = recorded_searcher(storage, name) if searcher is None else None  # (read once: it opens the storage)
    if not budgets.ends() and not _ends_by_itself(searcher if searcher is not None else recorded):
        raise ConfigError("give n_trials, timeout, target or patience (or max_cost) so that the run ends")
    run_executor = make_executor(executor, workers, trial_timeout, executor_options)
    run_executor.check_objective(objective)
    resolved, _, _ = resolve_setup(searcher, scheduler, scheduler_options, fidelity)
    # auto picks by budget and workers; a study continued without a searcher keeps the one it had
    if isinstance(resolved, str) and resolved.strip().lower() == "auto" and \
            (searcher is not None or recorded in (None, "auto")):
        searcher, searcher_options = "auto", {"n_trials": n_trials, "workers": workers, **(searcher_options or {})}
    study = create_study(space, metric=metric, mode=mode, name=name, storage=storage, seed=seed,
                         searcher=searcher, scheduler=scheduler, searcher_options=searcher_options,
                         scheduler_options=scheduler_options, load_if_exists=True, objective=objective,
                         artifact_dir=artifact_dir, resources=resources, prices=prices, fidelity=fidelity)
    if len(study.metrics) > 1 and (target is not None or patience is not None):
        warn_caller(f"target and patience follow the first metric, {study.metrics[0]!r}, alone: a study with "
                    "several metrics has a Pareto front, not one best (stop on the front with a callback that "
                    "calls study.stop())", SetupWarning)
    if _ends_by_itself(study.searcher) and n_trials is not None and n_trials < study.searcher.size:
        warn_caller(f"grid: n_trials={n_trials} runs {n_trials} of the grid's {study.searcher.size} points, in the "
                    "grid's order (every value of the last parameter before the next value of the one before it): "
                    "the first values of the first parameters only; raise n_trials, or search with random or sobol")
    stored = {"budgets": budgets.to_settings(), "trial_timeout": trial_timeout}
    study.storage.update_study(study.record.id, settings=stored)
    study.record.settings = {**study.record.settings, **stored}
    already = {config_key(t.config) for t in study.trials}
    queue = [study.space.validate(config) for config in queue if config_key(config) not in already]  # its order
    budgets.check_room(len(queue), study.counted_trials(), study.name)
    for config in queue:
        study.enqueue(config, once=True)  # another process starting the study now may have queued it
    Tuner(study, objective, run_executor, budgets, trial_timeout, progress, check_callbacks(callbacks),
          max_retries=max_retries).run()
    return study
