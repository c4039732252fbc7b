"""The analysis commands: importance, sensitivity, seed-check, compare (run in process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunelab as tl
from tunelab.cli import main

import lab_objectives as objectives
import mf_objectives

SPACE = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'lab.db'}"
    tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=16, storage=url, name="q", seed=0)
    tl.tune(objectives.noisy, {"x": tl.uniform(0, 1), "noise": 0.5}, metric="loss", mode="min", n_trials=8,
            storage=url, name="n", seed=0)
    return url


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_importance_command(url, capsys):
    code, out = run(capsys, "importance", "q", "--json", "--storage", url)
    assert code == 0 and list(json.loads(out)["scores"])[0] == "x"
    code, out = run(capsys, "importance", "q", "--method", "permutation", "--storage", url)
    assert code == 0 and "permutation" in out


def test_importance_of_a_multi_fidelity_study_says_at_which_level(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    tl.tune(mf_objectives.by_epochs, mf_objectives.SPACE, metric="loss", mode="min", n_trials=12, storage=url,
            name="mf", seed=0, scheduler="asha", fidelity=mf_objectives.EPOCHS)
    code, out = run(capsys, "importance", "mf", "--budget", "1", "--json", "--storage", url)
    assert code == 0 and json.loads(out)["budget"] == 1.0 and json.loads(out)["n_trials"] == 12
    code, out = run(capsys, "importance", "mf", "--storage", url)
    assert code == 0 and "at budget" in out
    # the default level is one the rungs below screened: the table says how to explain them all
    assert "12 reached the first rung: --budget 1 explains those" in " ".join(out.split())


def test_sensitivity_command_starts_from_the_best_trial(url, capsys, tmp_path):
    pytest.importorskip("plotly")
    html = tmp_path / "s.html"
    code, out = run(capsys, "sensitivity", "q", "--points", "3", "--json", "--html", str(html), "--storage", url)
    data = json.loads(out[:out.rindex("}") + 1])
    best = tl.load_study("q", storage=url).best
    assert code == 0 and data["baseline"] == best.config and data["ranking"][0] == "x"
    assert data["baseline_value"] == pytest.approx(best.value)
    assert "<script" in html.read_text() and "Plotly.newPlot" in html.read_text()


def test_json_output_is_strict_json_when_a_value_is_not_a_number(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    tl.tune(objectives.fails_on_round_y, SPACE, metric="loss", mode="min", n_trials=4, storage=url, name="f", seed=0)
    code, out = run(capsys, "sensitivity", "f", "--points", "3", "--json", "--storage", url)
    data = json.loads(out, parse_constant=lambda token: pytest.fail(f"{token} is not JSON"))
    assert code == 0 and data["sweeps"]["y"]["spread"] == "NaN" and data["sweeps"]["y"]["metric"] == [None] * 3


def test_output_paths_are_checked_before_the_work_is_done(url, capsys, tmp_path):
    (tmp_path / "taken.csv").write_text("")
    for args in (["sensitivity", "q", "--points", "3", "--html", str(tmp_path)],  # before its re-runs
                 ["compare", "q", "n", "--html", str(tmp_path)],
                 ["export", "q", "--format", "tensorboard", "-o", str(tmp_path / "taken.csv")]):
        assert main([*args, "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.count("is a folder; name a file in it") == 2 and "taken.csv is a file; this writes a folder" in err
    pytest.importorskip("plotly")
    code, _ = run(capsys, "compare", "q", "n", "--html", str(tmp_path / "new" / "c.html"), "--storage", url)
    assert code == 0 and (tmp_path / "new" / "c.html").exists()  # a missing folder is made


def test_seed_check_command_flags_the_noisy_study(url, capsys):
    code, out = run(capsys, "seed-check", "n", "--seeds", "6", "--storage", url)
    assert code == 0 and "UNSTABLE" in out
    code, out = run(capsys, "seed-check", "q", "--trial", "3", "--seeds", "3", "--json", "--storage", url)
    data = json.loads(out)
    assert code == 0 and data["std"] == 0.0 and not data["unstable"]
    assert data["seeds"][0] == tl.load_study("q", storage=url).get_trial(3).seed


def test_compare_command(url, capsys):
    code, out = run(capsys, "compare", "q", "n", "--json", "--storage", url)
    data = json.loads(out)
    assert code == 0 and data["names"] == ["q", "n"]
    assert dict((r[0], r[1:]) for r in data["summary"])["trials"] == [16, 8]
    code, out = run(capsys, "compare", "q", "n", "--storage", url)
    assert "best after n trials" in out


def test_errors_are_one_line(url, capsys):
    assert main(["sensitivity", "q", "--trial", "99", "--storage", url]) == 2
    assert "no trial number 99" in capsys.readouterr().err


def test_sensitivitys_best_setting_is_the_baseline_when_no_swept_value_beats_it(url, capsys):
    """The best of the swept points was shown even when it was worse than the baseline's own setting."""
    code, out = run(capsys, "sensitivity", "q", "--points", "2", "--storage", url)
    best = tl.load_study("q", storage=url).best
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
            if line.startswith("│")}
    assert code == 0 and rows["y"][2] == f"{best.config['y']:.6g}"  # 0 and 1 are worse than the best trial's y


def two_metrics(config, trial):
    """Accuracy moved by x only, latency by y only: a sweep tells which metric it read."""
    return {"acc": 1.0 - (config["x"] - 0.3) ** 2, "latency": 1.0 + 2.0 * config["y"]}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('two') / 'two.db'}"
    tl.tune(two_metrics, SPACE, metric=["acc", "latency"], mode=["max", "min"], n_trials=8, storage=url, name="two",
            seed=0)
    return url


def test_sensitivity_and_seed_check_read_the_metric_named_by_metric(two, capsys):
    """They read the study's first metric whatever was wanted; --metric now picks it, and the
    trial to start from: the best on that metric."""
    study = tl.load_study("two", storage=two)
    fastest = min(study.trials, key=lambda t: t.metrics["latency"])
    code, out = run(capsys, "sensitivity", "two", "--metric", "latency", "--points", "3", "--json", "--storage", two)
    data = json.loads(out)
    assert code == 0 and data["metric"] == "latency" and data["baseline"] == fastest.config
    assert data["baseline_value"] == pytest.approx(fastest.metrics["latency"]) and data["ranking"][0] == "y"
    assert data["sweeps"]["x"]["spread"] == 0.0  # latency does not depend on x
    code, out = run(capsys, "seed-check", "two", "--metric", "latency", "--seeds", "2", "--json", "--storage", two)
    data = json.loads(out)
    latencies = sorted(t.metrics["latency"] for t in study.trials)
    assert code == 0 and data["metric"] == "latency" and data["values"] == [fastest.metrics["latency"]] * 2
    assert data["recorded"] == fastest.metrics["latency"] and data["repeats"]
    assert data["top_gap"] == pytest.approx(latencies[1] - latencies[0])  # the lead on latency, not on accuracy


def test_without_metric_a_study_of_several_says_which_it_used_and_a_wrong_name_lists_them(two, url, capsys):
    assert main(["seed-check", "two", "--trial", "1", "--seeds", "2", "--json", "--storage", two]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["metric"] == "acc"  # the first, as before, and said on stderr (the JSON stays JSON)
    assert "study 'two' has 2 metrics (acc, latency); this is about acc: choose another with --metric NAME" in out.err
    assert main(["sensitivity", "two", "--points", "2", "--storage", two]) == 2  # no best trial of both metrics
    assert "--trial N, or the best on one metric with --metric NAME" in capsys.readouterr().err
    for args in (["sensitivity", "two", "--trial", "1", "--storage", two], ["seed-check", "two", "--storage", two],
                 ["sensitivity", "q", "--storage", url]):
        assert main([*args, "--metric", "speed"]) == 2, args  # refused before any re-run
    err = capsys.readouterr().err
    assert err.count("has no metric 'speed'; its metrics: acc, latency") == 2
    assert "study 'q' has no metric 'speed'; its metrics: loss" in err


def test_importance_of_a_study_of_several_metrics_says_which_it_explains(two, capsys):
    """importance explained the first metric without a word, as the other analyses no longer do."""
    assert main(["importance", "two", "--json", "--storage", two]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["metric"] == "acc"
    assert "study 'two' has 2 metrics (acc, latency); this is about acc: choose another with --metric NAME" in out.err
    assert main(["importance", "two", "--metric", "latency", "--json", "--storage", two]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["metric"] == "latency" and "note:" not in out.err
    assert main(["importance", "two", "--metric", "speed", "--storage", two]) == 2
    assert "study 'two' has no metric 'speed'; its metrics: acc, latency" in capsys.readouterr().err


def noisy_by_budget(config, trial):
    """A multi-fidelity objective whose value the seed moves."""
    return {"loss": config["x"] + 1.0 / trial.budget + 0.1 * np.random.default_rng(trial.seed).random()}


def test_seed_check_of_a_multi_fidelity_study_with_one_completed_trial_gives_a_verdict_or_says_what_it_needs(
        capsys, tmp_path):
    """The default scheduler let one of three trials finish: no runner-up, and seed-check ended
    with the numbers and no verdict at all."""
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    for name, objective in (("steady", mf_objectives.by_epochs), ("noisy", noisy_by_budget)):
        study = tl.tune(objective, mf_objectives.SPACE, metric="loss", mode="min", n_trials=3, storage=url,
                        name=name, seed=0, fidelity=mf_objectives.EPOCHS)
        assert study.counts().get("completed") == 1 and sum(study.counts().values()) == 3
    code, out = run(capsys, "seed-check", "steady", "--seeds", "2", "--storage", url)
    assert code == 0 and "stable: the seed does not move loss at all" in out
    code, out = run(capsys, "seed-check", "noisy", "--seeds", "3", "--storage", url)
    text = " ".join(out.split())
    assert code == 0 and "no verdict: the seed moves loss" in text
    assert "study 'noisy' has 1 completed trial(s) with a value of loss (2 more stopped or paused by its " \
           "scheduler" in text
    assert "a lead needs two: run more of its trials" in text


def noisy_choice(config, trial):
    """Configuration 'a' is better than 'b' by 1.0; the seed moves the loss by about 0.1."""
    return {"loss": {"a": 0.0, "b": 1.0}[config["c"]] + 0.1 * np.random.default_rng(trial.seed).normal()}


def test_seed_check_weighs_the_spread_against_the_lead_over_another_configuration_not_a_repeat(capsys, tmp_path):
    """The best configuration, tried twice, was its own runner-up: the "lead" was the seed's noise
    between its two runs, and the verdict weighed the seed against itself (UNSTABLE here)."""
    url = f"sqlite:///{tmp_path / 'rep.db'}"
    study = tl.tune(noisy_choice, {"c": tl.choice(["a", "b"])}, metric="loss", mode="min", n_trials=1, storage=url,
                    name="rep", seed=0, enqueue=[{"c": "a"}])
    best = study.best.value
    study.tell(config={"c": "a"}, value=best + 0.03)  # 'a' again, as a searcher repeating a finite space does
    code, out = run(capsys, "seed-check", "rep", "--seeds", "3", "--json", "--storage", url)
    data = json.loads(out)
    assert code == 0 and data["top_gap"] is None and data["stable"] is None
    assert "has 2 completed trial(s) with a value of loss, all of one configuration" in data["no_verdict"]
    study.tell(config={"c": "b"}, value=1.0)
    code, out = run(capsys, "seed-check", "rep", "--seeds", "3", "--json", "--storage", url)
    data = json.loads(out)
    assert code == 0 and data["top_gap"] == pytest.approx(1.0 - best) and data["stable"] is True


def test_an_html_file_named_as_another_kind_is_refused_before_the_work(url, capsys, tmp_path):
    assert main(["compare", "q", "n", "--html", str(tmp_path / "c.png"), "--storage", url]) == 2
    assert "--html writes .html or .htm; got" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
