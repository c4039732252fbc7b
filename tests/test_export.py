"""Every export opens in its own reader: the csv module, json, openpyxl/pandas, TensorBoard."""

from __future__ import annotations

import csv
import io
import json

import pytest

import tunelab as tl
from tunelab.cli import main
from tunelab.tracking.export import export, write

import lab_objectives as objectives

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1), "opt": tl.choice(["adam", "sgd"]), "flag": tl.choice([True, False]),
         "epochs": 3}


def _objective(config, trial):
    if config["x"] > 0.85:
        raise RuntimeError("diverged")
    return objectives.quadratic(config, trial)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'lab.db'}"
    return tl.tune(_objective, SPACE, metric="loss", mode="min", n_trials=10, storage=url, name="exp", seed=3,
                   enqueue=[{"x": 0.9, "y": 0.5, "opt": "sgd", "flag": True}])  # one trial fails


def test_csv_and_json_round_trip(study):
    rows = list(csv.DictReader(io.StringIO(export(study, "csv"))))
    assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
    document = json.loads(export(study, "json"))
    assert [len(t["reports"]) for t in document["trials"]] == [len(t.reports) for t in study.trials]
    assert {len(t["reports"]) for t in document["trials"] if t["state"] == "completed"} == {3}


def test_csv_and_json_carry_each_trials_cost_and_the_total(study):
    from tunelab.tracking.cost import study_cost

    cost = study_cost(study)
    rows = list(csv.DictReader(io.StringIO(export(study, "csv"))))
    assert [float(r["cost"]) for r in rows] == pytest.approx([cost.per_trial[t.number] for t in study.trials])
    document = json.loads(export(study, "json"))
    assert document["cost"] == {"total": pytest.approx(cost.total), "currency": cost.currency}
    assert [t["cost"] for t in document["trials"]] == pytest.approx([cost.per_trial[t.number] for t in study.trials])


def test_a_paused_trial_exports_the_time_it_ran_and_its_budget():
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", scheduler="asha", seed=0,
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    trial = study.ask()
    trial.report(trial.budget, loss=0.5)
    study.tell(trial)
    (row,) = csv.DictReader(io.StringIO(export(study, "csv")))
    assert row["state"] == "paused" and float(row["budget"]) == 1.0
    assert float(row["duration_s"]) == pytest.approx(study.trials[0].duration)


def test_xlsx_keeps_text_that_looks_like_a_formula_as_text(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    study = tl.create_study({"expr": tl.choice(["=1+2", "@SUM(1)", "plain"])}, metric="loss", mode="min", seed=0,
                            name="formulas")
    for expr in ("=1+2", "@SUM(1)"):
        study.tell(study.ask({"expr": expr}), 0.5)
    study.tell(study.ask({"expr": "plain"}), state="failed", error="=HYPERLINK(\"http://x\")")
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "f.xlsx"))
    cells = [cell for row in book["trials"].iter_rows() for cell in row]
    assert not [cell.value for cell in cells if cell.data_type == "f"]
    assert {"=1+2", "@SUM(1)"} <= {cell.value for cell in cells}


def test_xlsx_opens_in_openpyxl_and_pandas(study, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    pandas = pytest.importorskip("pandas")
    path = write(study, "xlsx", tmp_path / "exp.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["trials", "study", "reports"]
    trials = pandas.read_excel(path, sheet_name="trials")
    assert list(trials["number"]) == [t.number for t in study.trials]
    by_number = {t.number: t for t in study.trials}
    for _, row in trials.iterrows():
        trial = by_number[row["number"]]
        assert row["state"] == trial.state.value
        assert row["params.opt"] == trial.config["opt"] and row["params.epochs"] == 3
        if trial.value is not None:
            assert row["value"] == pytest.approx(trial.value)
        assert row["cost"] >= 0
    fields = dict(pandas.read_excel(path, sheet_name="study").values.tolist())
    assert fields["name"] == "exp" and fields["best value"] == pytest.approx(study.best.value)
    assert fields["environment fingerprint"] == study.environment["fingerprint"]
    reports = pandas.read_excel(path, sheet_name="reports")
    assert len(reports) == sum(len(t.reports) for t in study.trials)


def test_tensorboard_events_hold_scalars_and_hparams(study, tmp_path):
    assert study.counts()["failed"] >= 1
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata

    root = write(study, "tensorboard", tmp_path / "tb")
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(root)
    mux.Reload()
    runs = mux.Runs()
    assert set(runs) == {"."} | {f"trial-{t.number}" for t in study.trials}
    experiment = metadata.parse_experiment_plugin_data(
        mux.SummaryMetadata(".", metadata.EXPERIMENT_TAG).plugin_data.content)
    assert [h.name for h in experiment.hparam_infos] == list(study.space.params)
    assert {m.name.tag for m in experiment.metric_infos} == {"loss"}
    for trial in study.trials:
        run = f"trial-{trial.number}"
        start = metadata.parse_session_start_info_plugin_data(
            mux.SummaryMetadata(run, metadata.SESSION_START_INFO_TAG).plugin_data.content)
        assert start.hparams["x"].number_value == pytest.approx(trial.config["x"])
        assert start.hparams["opt"].string_value == trial.config["opt"]
        assert start.hparams["flag"].bool_value == trial.config["flag"]
        end = metadata.parse_session_end_info_plugin_data(
            mux.SummaryMetadata(run, metadata.SESSION_END_INFO_TAG).plugin_data.content)
        tags = mux.Runs()[run]["scalars"]
        if trial.value is not None:
            assert end.status == 1  # STATUS_SUCCESS
            assert mux.Scalars(run, "loss")[-1].value == pytest.approx(trial.value, rel=1e-6)
            curve = [(e.step, e.value) for e in mux.Scalars(run, "curve/loss")]
            assert curve == [(s, pytest.approx(v, rel=1e-6)) for s, v in trial.curve("loss")]
        else:
            assert end.status == 2 and "loss" not in tags  # STATUS_FAILURE, no final value


def test_the_export_command_writes_every_format(study, tmp_path, capsys):
    pytest.importorskip("openpyxl")
    pytest.importorskip("tensorboard")
    url = study.storage.url
    for fmt, name in (("xlsx", "e.xlsx"), ("tensorboard", "tb"), ("json", "e.json")):
        assert main(["export", "exp", "--format", fmt, "-o", str(tmp_path / name), "--storage", url]) == 0
    assert (tmp_path / "e.xlsx").stat().st_size > 0 and (tmp_path / "tb" / "exp").is_dir()
    assert main(["export", "exp", "--format", "xlsx", "--storage", url]) == 2
    assert "-o PATH" in capsys.readouterr().err


def test_tensorboards_hparams_tab_serves_the_trials(study, tmp_path):
    """The real TensorBoard server reads the export: its HParams backend lists every trial."""
    pytest.importorskip("tensorboard")
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    write(study, "tensorboard", tmp_path / "tb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path / "tb"),
                               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def post(path, body):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/{path}",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    query = {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE"], "startIndex": 0,
             "sliceSize": 100, "colParams": []}
    try:
        deadline, groups = time.monotonic() + 90, []
        while len(groups) < len(study.trials):
            assert time.monotonic() < deadline and server.poll() is None, "TensorBoard did not serve the trials"
            time.sleep(0.5)
            try:
                groups = post("session_groups", query).get("sessionGroups", [])
            except OSError:
                continue
        experiment = post("experiment", {"experimentName": ""})
    finally:
        server.terminate()
        server.wait(10)
    assert sorted(h["name"] for h in experiment["hparamInfos"]) == sorted(study.space.params)
    by_name = {g["name"]: g for g in groups}
    for trial in study.trials:
        group = by_name[f"trial-{trial.number}"]
        assert group["hparams"]["opt"] == trial.config["opt"]
        if trial.value is not None:
            assert group["metricValues"][0]["value"] == pytest.approx(trial.value, rel=1e-6)


def test_tensorboard_curves_by_a_share_of_the_data_keep_one_step_per_report(tmp_path):
    """Steps 0.25, 0.5, 0.75, 1.0 were rounded to 0, 0, 1, 1: two reports per step, a curve drawn wrong."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="shares")
    trial = study.ask()
    for share in (0.25, 0.5, 0.75, 1.0):
        trial.report(share, loss=1 / share)
    study.tell(trial)
    root = write(study, "tensorboard", tmp_path / "tb")
    events = EventAccumulator(f"{root}/trial-0")
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("curve/loss")] == [(1, 4.0), (2, 2.0), (3, pytest.approx(4 / 3)),
                                                                         (4, 1.0)]
    assert [e.value for e in events.Scalars("curve/step")] == [0.25, 0.5, 0.75, 1.0]


def test_an_empty_studys_csv_has_its_header():
    """It was 0 bytes, which pandas refuses to read."""
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="empty")
    assert export(study, "csv") == "number,state,value,params.x,seed,budget,started_at,finished_at,duration_s,cost," \
                                   "n_reports,error\n"


def _two_metric_study():
    """Trial 2 (0.7, 3) is beaten by trial 1 (0.8, 1) on both metrics; trial 3 failed, trial 4 was cancelled."""
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric=["acc", "latency"], mode=["max", "min"], name="two",
                            seed=0)
    for acc, latency in ((0.9, 5.0), (0.8, 1.0), (0.7, 3.0)):
        study.tell(study.ask(), {"acc": acc, "latency": latency})
    study.tell(study.ask(), state="failed", error="boom")
    study.storage.cancel_trial(study.ask().id, "cancelled: interrupted")
    return study


def test_exports_of_a_study_of_several_metrics_mark_its_pareto_front(tmp_path):
    """Its best trials, the front, were in no export: the CSV, JSON and Excel trials say which are on it."""
    openpyxl = pytest.importorskip("openpyxl")
    study = _two_metric_study()
    expected = [True, True, False, False, False]
    rows = list(csv.DictReader(io.StringIO(export(study, "csv"))))
    assert list(rows[0])[:4] == ["number", "state", "value", "on_front"]
    assert [r["on_front"] for r in rows] == [str(e) for e in expected]
    assert [t["on_front"] for t in json.loads(export(study, "json"))["trials"]] == expected
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "two.xlsx"))
    header, *values = [[cell.value for cell in row] for row in book["trials"].iter_rows()]
    assert [row[header.index("on_front")] for row in values] == expected
    fields = {row[0].value: row[1].value for row in book["study"].iter_rows(min_row=2)}
    assert fields["Pareto front (trials)"] == "0, 1"
    # counted as `tunelab show` counts them: the cancelled trial apart from the one that failed
    assert (fields["trials failed"], fields["trials cancelled"], fields["trials completed"]) == (1, 1, 3)
    # and each trial's row says which it was, as `tunelab show` does (a cancelled trial was "failed")
    states = ["completed"] * 3 + ["failed", "cancelled"]
    assert [r["state"] for r in rows] == states == [row[header.index("state")] for row in values]
    assert [t["state"] for t in json.loads(export(study, "json"))["trials"]] == states
    empty = tl.create_study({"x": tl.uniform(0, 1)}, metric=["a", "b"], mode=["min", "min"], name="none")
    assert export(empty, "csv").startswith("number,state,value,on_front,params.x,")


def test_exports_of_a_study_of_one_metric_keep_their_columns(study):
    rows = list(csv.DictReader(io.StringIO(export(study, "csv"))))
    assert "on_front" not in rows[0] and "on_front" not in json.loads(export(study, "json"))["trials"][0]
