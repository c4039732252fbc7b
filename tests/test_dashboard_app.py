"""The dashboard's JSON API, read in-process (the browser tests in test_dashboard.py need Chromium)."""

from __future__ import annotations

import math

import pytest

import tunelab as tl

pytest.importorskip("starlette")
pytest.importorskip("httpx")  # starlette's TestClient


def test_a_trial_that_reported_nan_is_served_with_nan_spelled_out(tmp_path):
    """A diverged run's NaN made every page of its trial an HTTP 500 (JSON has no NaN)."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="nan")
    trial = study.ask()
    trial.report(1, loss=0.5, grad_norm=math.nan)
    trial.set_user_attr("best_val", math.inf)
    study.tell(trial, 0.4)
    diverged = study.ask()
    diverged.report(1, loss=math.nan)
    study.tell(diverged, math.nan)
    client = TestClient(create_app(url))
    first = client.get("/api/study/nan/trial/0")
    assert first.status_code == 200
    assert first.json()["reports"] == [{"step": 1.0, "metrics": {"loss": 0.5, "grad_norm": "NaN"}}]
    second = client.get("/api/study/nan/trial/1")
    assert second.status_code == 200 and second.json()["state"] == "failed"
    assert client.get("/api/study/nan").status_code == 200


def test_a_study_deleted_or_made_again_under_its_name_is_served_as_storage_has_it_now(tmp_path):
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    old = tl.create_study({"x": tl.uniform(0, 1)}, metric="old", mode="min", storage=url, name="s")
    old.tell(old.ask(), 0.5)
    client = TestClient(create_app(url))
    assert client.get("/api/study/s").json()["metrics"] == ["old"]
    tl.delete_study("s", storage=url)
    assert client.get("/api/study/s").status_code == 404
    new = tl.create_study({"y": tl.choice(["a", "b"])}, metric="new", mode="max", storage=url, name="s")
    new.tell(new.ask({"y": "b"}), 4.0)
    served = client.get("/api/study/s").json()
    assert served["metrics"] == ["new"] and served["modes"] == ["max"]
    missing = client.get("/api/study/s/trial/7")
    assert missing.status_code == 404 and "7" in missing.json()["error"]


def test_a_dashboard_on_a_loopback_address_answers_only_to_loopback_host_names(tmp_path):
    """A page elsewhere that points its own domain at 127.0.0.1 (DNS rebinding) must not read the studies."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import LOOPBACK_HOSTS, create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="s")
    client = TestClient(create_app(url, allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1:8050")
    assert client.get("/api/studies").status_code == 200
    assert client.get("/api/studies", headers={"host": "localhost:8050"}).status_code == 200
    assert client.get("/api/studies", headers={"host": "attacker.example:8050"}).status_code == 400


def test_cancelled_trials_are_served_as_cancelled_and_counted_apart(tmp_path):
    """The study page's counts said "cancelled" while its trial table and the trial page said
    "failed", and the studies list had no place for them at all."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="c")
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), state="failed", error="ValueError: boom")
    study.storage.cancel_trial(study.ask().id, "cancelled: target reached")
    client = TestClient(create_app(url))
    page = client.get("/api/study/c").json()
    assert [t["state"] for t in page["trials"]] == ["completed", "failed", "cancelled"]
    assert page["counts"] == {"completed": 1, "failed": 1, "cancelled": 1}
    assert client.get("/api/study/c/trial/2").json()["state"] == "cancelled"
    assert client.get("/api/studies").json()[0]["counts"] == {"completed": 1, "failed": 1, "cancelled": 1}


def test_a_trial_number_is_plain_digits(tmp_path):
    """int() also reads "1_0" as 10 and " 1 " as 1: an address that names no trial showed another one."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="s")
    for _ in range(11):
        study.tell(study.ask(), 0.5)
    client = TestClient(create_app(url))
    assert client.get("/api/study/s/trial/10").json()["number"] == 10
    for text in ("1_0", "%201%20", "+1", "%D9%A1"):  # the last: ARABIC-INDIC DIGIT ONE
        answer = client.get(f"/api/study/s/trial/{text}")
        assert answer.status_code == 400 and "must be an integer" in answer.json()["error"], text
    assert client.get("/api/study/s/trial/-1").status_code == 404


def test_a_non_finite_metric_is_spelled_out_not_shown_as_missing(tmp_path):
    """A grad norm that overflowed to inf was served as null, which the pages show as "-" (never
    reported), while the same value in the trial's reports read "Infinity"."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="s")
    trial = study.ask()
    trial.report(1, loss=0.5, norm=math.inf)
    study.tell(trial, {"loss": 0.4, "norm": math.inf})
    client = TestClient(create_app(url))
    page = client.get("/api/study/s").json()
    assert page["trials"][0]["metrics"] == {"loss": 0.4, "norm": "Infinity"}
    assert page["best"][0]["metrics"]["norm"] == "Infinity"
    served = client.get("/api/study/s/trial/0").json()
    assert served["metrics"] == {"loss": 0.4, "norm": "Infinity"}
    assert served["reports"][0]["metrics"]["norm"] == "Infinity"


def test_comparing_two_studies_in_both_orders_at_once_cannot_deadlock(tmp_path):
    """Two pages comparing a with b and b with a each took its first study's lock and waited for
    the other's: both hung, and with them every later request of either study. The locks are
    taken in one order (by name) whatever the order of the comparison."""
    import threading

    from tunelab.dashboard.data import DashboardData
    from tunelab.storage import open_storage

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    for name in ("a", "b"):
        study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name=name, seed=1)
        study.tell(study.ask(), 0.5)
    data = DashboardData(open_storage(url))
    lock_a, lock_b = data._open("a")[1], data._open("b")[1]
    results: list = []
    with lock_b:  # as a request of study b holds it
        comparing = threading.Thread(target=lambda: results.append(data.compare("b", "a")), daemon=True)
        comparing.start()
        # the comparison of b with a takes a's lock first, then waits for b's: holding b's lock,
        # nobody waits on a lock held by one who waits for b's
        assert _until(lock_a.locked), "compare('b', 'a') waited for b's lock before taking a's"
    comparing.join(30)
    assert results and results[0]["names"] == ["b", "a"]


def _until(condition, limit: float = 20.0) -> bool:
    """Whether ``condition()`` becomes true within ``limit`` seconds (checked every 10 ms)."""
    import time

    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_file_whose_name_is_not_utf8_is_listed_not_a_server_error(tmp_path):
    """A trial folder holding a file named in Latin-1 (unpacked from an old archive) made the
    trial's page an HTTP 500: the name, a lone surrogate in Python, has no JSON encoding."""
    import os

    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", storage=url, name="s")
    study.tell(study.ask(), 0.5)
    folder = study.trial_dir(0)
    (folder / "data").mkdir(parents=True)
    with open(os.path.join(os.fsencode(folder / "data"), b"caf\xe9.csv"), "wb") as handle:
        handle.write(b"1,2\n")
    (folder / "notes.txt").write_text("ok")
    answer = TestClient(create_app(url), raise_server_exceptions=False).get("/api/study/s/trial/0")
    assert answer.status_code == 200, answer.text
    assert answer.json()["artifacts"] == ["data/caf\\xe9.csv", "notes.txt"]


def test_a_study_tuned_with_the_users_own_searcher_and_scheduler_is_shown(tmp_path):
    """A study set up with a searcher and a scheduler of the user's own (classes of the script
    that tuned) was refused on every page: "unknown searcher 'halton'". The dashboard proposes
    and decides nothing, so it needs neither."""
    from starlette.testclient import TestClient

    from tunelab.dashboard.app import create_app
    from tunelab.schedulers.fifo import FIFOScheduler
    from tunelab.searchers.random import RandomSearcher

    class Halton(RandomSearcher):
        name = "halton"

    class Patient(FIFOScheduler):
        name = "patient"

    url = f"sqlite:///{tmp_path / 'lab.db'}"
    space = {"x": tl.uniform(0, 1), "y": tl.uniform(0, 1)}
    study = tl.create_study(space, metric="loss", mode="min", storage=url, name="own", seed=0,
                            searcher=Halton(tl.Space(space), seed=0), scheduler=Patient("loss", "min"))
    for _ in range(5):
        trial = study.ask()
        study.tell(trial, trial.config["x"])
    client = TestClient(create_app(url))
    page = client.get("/api/study/own")
    assert page.status_code == 200, page.text
    assert page.json()["n_trials"] == 5
    assert (page.json()["settings"]["searcher"]["name"], page.json()["settings"]["scheduler"]["name"]) == \
        ("halton", "patient")  # what the study was tuned with, as recorded
    assert client.get("/api/study/own/trial/4").json()["config"] == study.get_trial(4).config
    assert client.get("/api/study/own/importance").json()["available"]
    assert client.get("/api/compare?a=own&b=own").status_code == 200
