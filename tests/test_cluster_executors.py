"""The same study code on local processes, Ray and Dask: trials run remotely, every report
reaches the tuner and its scheduler (which stops some trials), user attributes come back, and
the records are the same whatever ran them. Ray and Dask are real (a local Ray started once for
the module, a LocalCluster per run); their tests skip only where the package is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
import time

import pytest

import tunelab as tl
from tunelab.errors import ConfigError
from tunelab.executors import make_executor
from tunelab.trial import TrialState

from mf_objectives import EPOCHS, by_epochs, loss_at
from mf_objectives import SPACE as MF_SPACE
from objectives import SPACE, StopOddTrialsAtStep2, reporting

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster needs no token


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunelab[ray]')")
    from tunelab.executors.ray import local_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env())
    yield ray
    ray.shutdown()


@pytest.fixture(params=["processes", "ray", "dask"])
def executor(request) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    if request.param == "dask":
        pytest.importorskip("distributed", reason="Dask is not installed (pip install 'tunelab[dask]')")
    return request.param


def test_the_same_study_runs_on_every_executor(executor, tmp_path):
    # searcher named: with none, auto would pick by the number of workers (2 here, 1 below)
    study = tl.tune(reporting, SPACE, metric="loss", mode="min", n_trials=6, workers=2, executor=executor,
                    scheduler=StopOddTrialsAtStep2("loss", "min"), storage=f"sqlite:///{tmp_path / 'e.db'}",
                    name="same", seed=3, progress=False, searcher="bo")
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETED, TrialState.PRUNED] * 3
    assert [len(t.reports) for t in trials] == [4, 2] * 3  # the STOP answered on the cluster, at step 2
    assert all(t.user_attrs == {"where": "worker"} for t in trials)
    for trial in trials:
        assert [r.step for r in trial.reports] == list(range(1, len(trial.reports) + 1))
        if trial.state is TrialState.COMPLETED:
            assert trial.value == pytest.approx(trial.config["x"] ** 2)
    local = tl.tune(reporting, SPACE, metric="loss", mode="min", n_trials=6, executor="inline",
                    scheduler=StopOddTrialsAtStep2("loss", "min"), storage=None, seed=3, progress=False,
                    searcher="bo")
    assert [(t.config, t.seed, t.value) for t in local.trials] == [(t.config, t.seed, t.value) for t in trials]


def test_trial_timeout_cancels_remote_trials(executor):
    if executor == "processes":
        pytest.skip("tests/test_executors.py covers timeouts in local processes")
    started = time.monotonic()
    study = tl.tune(sleepy_forever, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, workers=2,
                    executor=executor, trial_timeout=1.0, storage=None, seed=0, progress=False)
    assert [t.state for t in study.trials] == [TrialState.FAILED] * 2
    assert all("trial_timeout" in t.error for t in study.trials)
    assert time.monotonic() - started < 60  # the run did not wait for the trials to end on their own


def sleepy_forever(config, trial):
    for step in range(600):
        time.sleep(0.1)
        trial.report(step, loss=1.0)


@pytest.mark.parametrize("name, options, message", [
    ("ray", {"resources": {"tpus": 1}}, "resources per trial"),
    ("ray", {"resources": {"cpus": -1}}, "non-negative"),
    ("ray", {"colour": "blue"}, "colour"),
    ("dask", {"resources": 3}, "resources must be a dict"),
    ("dask", {"nodes": 3}, "nodes"),
    ("processes", {"address": "x"}, "address"),
    ("inline", {"address": "x"}, "no options"),
    ("processes", ["not", "a", "dict"], "must be a dict"),
    ("dask", {"processes": "no"}, "processes must be True or False; got 'no'"),  # 'no' ran worker processes
    ("dask", {"address": 8786}, "address must be a scheduler address"),
    ("ray", {"init_options": "x"}, "init_options must be a dict of ray.init arguments"),
    ("ray", {"address": 10001}, "address must be a Ray address"),
    # Dask took any amount: a string failed every trial ("'>=' not supported"), a negative one ran
    ("dask", {"resources": {"GPU": "1"}}, r"resources\['GPU'\] must be a non-negative number; got '1'"),
    ("dask", {"resources": {"GPU": -1}}, r"resources\['GPU'\] must be a non-negative number"),
    ("dask", {"resources": {5: 1}}, "resource names must be non-empty strings"),  # trials waited for ever
    ("ray", {"resources": {"cpus": float("nan")}}, "non-negative number"),
])
def test_bad_executor_options_are_clear(name, options, message):
    with pytest.raises(ConfigError, match=message):
        make_executor(name, 2 if name != "inline" else 1, None, options)


def test_paused_trials_resume_from_their_checkpoints_on_every_executor(executor, tmp_path):
    """ASHA promotion with a resumable fidelity: a trial paused at a rung on one worker is resumed
    later, maybe on another worker, from the checkpoint it saved, and never trains an epoch twice.
    Dask runs worker processes here, so the checkpoint crosses processes as it does on Ray."""
    if executor == "processes":
        pytest.skip("tests/test_scheduler_asha.py covers pause and resume in local processes")
    study = tl.tune(by_epochs, MF_SPACE, metric="loss", mode="min", scheduler="asha", fidelity=EPOCHS,
                    n_trials=9, workers=2, executor=executor, seed=3, storage=f"sqlite:///{tmp_path / 'p.db'}",
                    executor_options={"processes": True} if executor == "dask" else None, name="pause",
                    progress=False)
    completed = [t for t in study.trials if t.state is TrialState.COMPLETED]
    assert completed, study.counts()
    assert set(study.counts()) <= {"completed", "paused", "pruned"}, study.counts()
    for trial in study.trials:
        steps = [r.step for r in trial.reports]
        assert steps == [float(e) for e in range(1, len(steps) + 1)], trial  # no epoch trained twice
        state = tl.checkpoints.load(study.checkpoint_dir(trial)) if trial.state is not TrialState.PRUNED else None
        if trial.state is TrialState.COMPLETED:
            assert state["starts"] == [1, 2, 4] and state["epoch"] == 9  # three runs: to 1, to 3, to 9
            assert trial.value == pytest.approx(loss_at(trial.config, 9))
        elif trial.state is TrialState.PAUSED:
            assert state["epoch"] == trial.budget == steps[-1]


def test_trials_that_print_on_dask_threads_all_complete(tmp_path):
    """Dask's default workers are threads of one process: every trial printing at once must not
    take another's log (it failed trials with "I/O operation on closed file")."""
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'tunelab[dask]')")
    from objectives import chatty_sleeper

    study = tl.tune(chatty_sleeper, SPACE, metric="loss", mode="min", n_trials=8, workers=2, executor="dask",
                    storage=None, seed=0, progress=False, artifact_dir=tmp_path)
    assert study.counts() == {"completed": 8}
    for trial in study.trials:
        assert (study.trial_dir(trial.number) / "stdout.txt").read_text() == f"trial {trial.number}\n" * 3


def test_a_dask_worker_process_that_dies_fails_its_trial_which_runs_again_and_nothing_hangs():
    """The dead worker may hold another trial's finished result: Dask would run that trial again
    to get it, and the rerun would wait for answers from the tuner, itself waiting for the result."""
    import threading

    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'tunelab[dask]')")
    from objectives import kills_its_worker_on_trial_1

    done = {}

    def run():
        done["study"] = tl.tune(kills_its_worker_on_trial_1, SPACE, metric="loss", mode="min", n_trials=3,
                                workers=2, executor="dask", executor_options={"processes": True}, seed=0,
                                progress=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=240)  # a guard against the hang, not a speed check
    assert "study" in done, "tl.tune hung after a Dask worker died"
    trials = {t.number: t for t in done["study"].trials}
    assert trials[1].state is TrialState.FAILED and "Dask worker" in trials[1].error
    retry = [t for t in trials.values() if t.system_attrs.get("retry_of") == 1]
    assert len(retry) <= 1 and all(t.config == trials[1].config for t in retry)
    assert sum(t.state is TrialState.COMPLETED for t in trials.values()) >= 2


@pytest.mark.parametrize("name", ["ray", "dask"])
def test_trial_timeout_counts_from_when_the_trial_starts_not_from_its_wait_in_a_queue(name):
    """Ray runs one trial at a time here (each takes both CPUs of a local Ray given two); the
    second waits its turn, and starting a cluster's workers takes time too: none of that is the
    trial's running time."""
    pytest.importorskip(name if name == "ray" else "distributed")
    from objectives import sleeps_two_seconds

    options = {"init_options": {"num_cpus": 2}, "resources": {"cpus": 2}} if name == "ray" else None
    study = tl.tune(sleeps_two_seconds, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=2, workers=2,
                    executor=name, executor_options=options, trial_timeout=3.5, seed=0, progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETED] * 2, [t.error for t in study.trials]
    # their durations and cost too (the queued one's was its wait and its two seconds)
    assert all(1.9 < t.duration < 3.4 for t in study.trials), [t.duration for t in study.trials]


def test_a_trial_whose_ray_worker_dies_goes_on_from_its_checkpoint(ray_cluster, tmp_path):
    """Ray's WorkerCrashedError failed the trial for good (and its checkpoint with it), where a
    dead local or Dask worker process has its trial run again."""
    from objectives import dies_on_its_first_run

    study = tl.tune(dies_on_its_first_run, SPACE, metric="loss", mode="min", n_trials=2, workers=2, executor="ray",
                    seed=0, storage=f"sqlite:///{tmp_path / 'r.db'}", progress=False)
    assert study.counts() == {"completed": 2}
    assert all([r.step for r in t.reports] == [1.0, 2.0] for t in study.trials)




def test_a_task_the_cluster_runs_again_for_a_finished_trial_does_not_run_its_objective():
    """Dask computes again the results a dead worker held, finished trials' too: the task asks
    the tuner before it runs, and a trial the tuner no longer waits for is not run again."""
    from tunelab.executors.remote import Channel, RemoteExecutor, run_remote
    from tunelab.trial import ReportSink, TrialSpec

    class Backend(RemoteExecutor):
        def __init__(self):
            super().__init__(workers=2)
            self.inbox, self.answers = [], {}

        def _connect(self, objective): pass
        def _disconnect(self): pass
        def _launch(self, spec): return spec
        def _done(self, handles): return []
        def _result(self, handle): raise AssertionError("not asked")
        def _kill(self, handle): pass
        def _messages(self): out, self.inbox = self.inbox, []; return out
        def _answer(self, key, decision): self.answers[key] = decision

    class Asks(Channel):
        def __init__(self, backend): self.backend = backend
        def send(self, message): self.backend.inbox.append(message)
        def ask(self, key, message):
            self.backend.inbox.append(message)
            self.backend._serve()
            return self.backend.answers.pop(key)

    backend, ran = Backend(), []
    backend.open(None, ReportSink(), ["loss"])
    spec = TrialSpec(id=7, number=0, config={"x": 0.5}, seed=1, study="s")
    backend.submit(spec)
    objective = lambda config: ran.append(config) or config["x"]  # noqa: E731
    assert run_remote(objective, spec, ["loss"], Asks(backend)).state is TrialState.COMPLETED and len(ran) == 1
    del backend._tasks[7]  # its result was read: the tuner waits for it no more
    again = run_remote(objective, spec, ["loss"], Asks(backend))
    assert again.state is TrialState.FAILED and "not run again" in again.error and len(ran) == 1


def test_starting_ray_keeps_the_tuner_s_sigterm_handler(tmp_path):
    """ray.init set its own: a tuner told to stop ended at once (exit 15, a stack dump) instead of
    cancelling its trials and queueing them again, as on every other executor."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunelab[ray]')")
    script = tmp_path / "keeps.py"
    script.write_text(
        "import signal\n"
        "from tunelab.executors.ray import RayExecutor\n"
        "def mine(signum, frame): pass\n"
        "signal.signal(signal.SIGTERM, mine)\n"
        "executor = RayExecutor(workers=1, init_options={'num_cpus': 1})\n"
        "executor._connect(len)\n"
        "print('kept' if signal.getsignal(signal.SIGTERM) is mine else 'replaced')\n"
        "executor._disconnect()\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=180)
    assert done.stdout.strip().splitlines()[-1:] == ["kept"], done.stdout + done.stderr


def test_a_trial_that_asks_for_more_than_the_local_cluster_has_is_refused_instead_of_waiting_for_ever(ray_cluster):
    with pytest.raises(ConfigError, match=r"each trial asks Ray for \{'cpus': 100\}.*no trial could ever start"):
        tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=1, workers=1, executor="ray",
                executor_options={"resources": {"cpus": 100}}, progress=False)
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'tunelab[dask]')")
    with pytest.raises(ConfigError, match="the local cluster tunelab starts declares none"):
        tl.tune(lambda config: config["x"], SPACE, metric="loss", mode="min", n_trials=1, workers=1, executor="dask",
                executor_options={"resources": {"GPU": 1}}, progress=False)


def test_a_run_whose_trials_never_start_on_a_cluster_says_so(monkeypatch, caplog):
    """Workers of a cluster tunelab did not start that lack what each trial asks for hold the
    trials in the queue for ever; the run says so (once), and a timeout still ends it."""
    distributed = pytest.importorskip("distributed")
    import tunelab.executors.remote as remote
    from objectives import quadratic

    monkeypatch.setattr(remote, "STALL_SECONDS", 0.5)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with caplog.at_level("WARNING", logger="tunelab"):
            study = tl.tune(quadratic, SPACE, metric="loss", mode="min", n_trials=2, timeout=2.5, seed=0,
                            executor="dask", executor_options={"address": cluster.scheduler_address,
                                                               "resources": {"GPU": 1}}, progress=False)
    said = [r.getMessage() for r in caplog.records if "has started" in r.getMessage()]
    assert len(said) == 1 and "resources={'GPU': 1}" in said[0], said
    assert not any(t.state is TrialState.COMPLETED for t in study.trials)
    # cancelled in the queue, they ran for no time (each was billed the run's 2.5 s)
    ran = [t.duration for t in study.trials if t.started_at is not None]  # (not the copy queued to run again)
    assert ran and all(d < 1.0 for d in ran), ran


def records_when_it_runs(config, trial):
    """Reports every step (each report waits for the tuner's answer) and writes when it ran."""
    start = time.time()
    for step in range(1, 9):
        time.sleep(0.15)
        trial.report(step, loss=config["x"] ** 2 + 1.0 / step)
    end = time.time()
    (Path(config["dir"]) / f"{trial.number}.span").write_text(f"{start!r} {end!r}")
    return config["x"] ** 2


def test_a_ray_trial_waiting_for_the_tuner_s_answer_keeps_its_cpus(ray_cluster, tmp_path):
    """A task waiting in ray.get lends its CPUs to the next queued task: each trial, waiting for
    the answer to its start and to each report, let another start beside it, so trials given the
    whole machine each ran two or three at once (oversubscribed, their durations and cost
    inflated). Here each trial asks for both CPUs of the module's Ray: they must run one by one."""
    space = {"x": tl.uniform(-1.0, 1.0), "dir": tl.choice([str(tmp_path)])}
    study = tl.tune(records_when_it_runs, space, metric="loss", mode="min", n_trials=3, workers=3, executor="ray",
                    executor_options={"resources": {"cpus": 2}}, storage=None, seed=0, progress=False)
    assert study.counts() == {"completed": 3}, [t.error for t in study.trials]
    assert all(len(t.reports) == 8 for t in study.trials)
    spans = sorted(tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*.span"))
    assert len(spans) == 3
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert not overlaps, f"trials ran at once on one slot: {spans}"
