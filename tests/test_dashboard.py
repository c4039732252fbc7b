"""The dashboard for real: the `tunelab dashboard` command serving a SQLite study, pages loaded in
headless Chromium, no JavaScript errors, plots drawn, live updates followed, and a screenshot."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tunelab as tl

import lab_objectives as objectives

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"x": tl.uniform(0, 1), "y": tl.loguniform(1e-3, 1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'lab.db'}"
    tl.tune(objectives.quadratic, SPACE, metric="loss", mode="min", n_trials=12, storage=url, name="alpha", seed=0)
    tl.tune(objectives.chatty, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=3, storage=url,
            name="beta", seed=1)
    tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="live", seed=2)
    tl.tune(lambda c: {"acc": c["x"], "lat": c["x"] + c["y"]}, SPACE, metric=["acc", "lat"], mode=["max", "min"],
            n_trials=8, storage=url, name="front", seed=4, progress=False)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{Path(__file__).parent}"}
    process = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "dashboard", "--storage", url, "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(base + "/api/studies")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the dashboard did not start: {process.stdout.read()}")
        time.sleep(0.2)
    yield base, url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _open(browser, url: str, updates: int = 1):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: int(d.execute_script("return document.body.dataset.updates || '0'")) >= updates
        or d.execute_script("return document.body.dataset.ready === '1'") and updates == 0)
    return browser


def _errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _text(browser, element_id: str) -> str:
    """An element's text read in one script call: the page re-renders live parts, so a found element
    can go stale between finding it and reading it."""
    return browser.execute_script(
        f"const e = document.getElementById('{element_id}'); return e ? e.innerText.trim() : ''")


def _plots(browser, selector: str = ".js-plotly-plot") -> int:
    return browser.execute_script(
        f"return Array.from(document.querySelectorAll('{selector}')).filter(p => p.querySelector('svg.main-svg')).length")


def test_studies_page_lists_every_study(server, browser):
    base, _ = server
    _open(browser, base + "/")
    links = browser.execute_script("return Array.from(document.querySelectorAll('#studies a')).map(a => a.innerText)")
    assert links == ["alpha", "beta", "live", "front"]
    assert _errors(browser) == []


def test_study_page_draws_its_plots(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = server
    _open(browser, base + "/study/alpha")
    WebDriverWait(browser, 30).until(lambda d: _plots(d, "#plot-importance") == 1)  # fetched separately
    assert _plots(browser) == 5 and not browser.find_elements("css selector", "#plot-pareto")  # one metric: no front
    assert browser.find_elements("css selector", "#plot-parallel .parcoords")
    assert len(browser.find_elements("css selector", "#plot-history .scatterlayer .point")) >= 12
    assert "best trial" in _text(browser, "best")
    summary = _text(browser, "summary")
    assert "auto: bo" in summary and os.path.join("tunelab-artifacts", "alpha") in summary  # the pick, its files
    assert len(browser.find_elements("css selector", "#trials tbody tr")) == 12
    assert _errors(browser) == []


def test_study_page_follows_a_running_study(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = server
    _open(browser, base + "/study/live")
    assert "all trials (0)" in _text(browser, "trials")
    study = tl.load_study("live", storage=url)
    for _ in range(5):
        trial = study.ask()
        trial.report(1, loss=trial.config["x"])
        study.tell(trial, trial.config["x"])
    WebDriverWait(browser, 30).until(lambda d: "all trials (5)" in _text(d, "trials"))
    WebDriverWait(browser, 30).until(lambda d: _plots(d, "#plot-importance") == 1)
    assert _errors(browser) == []


def test_importance_follows_a_multi_fidelity_study_whose_trials_pause_at_rungs(server, browser):
    """Such a study completes few trials; importance reads its rung values and must follow them."""
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = server
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="rungs", seed=3,
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    _open(browser, base + "/study/rungs")
    for _ in range(12):
        trial = study.ask()
        trial.report(trial.budget, loss=trial.config["x"] + trial.config["y"])
        study.tell(trial)
    assert study.counts().get("completed", 0) == 0
    WebDriverWait(browser, 40).until(lambda d: _plots(d, "#plot-importance") == 1)
    assert _errors(browser) == []


def test_trial_page_shows_config_logs_files_and_curve(server, browser):
    base, _ = server
    _open(browser, base + "/study/beta/trial/1")
    assert _text(browser, "stdout") == "stdout of trial 1"  # inline: Python output is teed
    assert _text(browser, "stderr") == "stderr of trial 1"
    assert "model/weights.txt" in _text(browser, "artifacts")
    assert "environment (the study's)" in _text(browser, "environment")
    assert "attribute of trial 1" in _text(browser, "user-attrs")
    assert _plots(browser, "#plot-curve") == 1
    assert _errors(browser) == []


def test_a_pareto_front_is_shown_with_each_metric_that_defines_it(server, browser):
    base, url = server
    _open(browser, base + "/study/front")
    best = _text(browser, "best")
    assert best.startswith("Pareto front") and "acc" in best and "lat" in best
    front = tl.load_study("front", storage=url).best_trials
    assert f"{front[0].metrics['lat']:.6g}"[:5] in best  # the second metric's values, not only the first's
    assert _plots(browser, "#plot-pareto") == 1  # and the trade-off drawn
    drawn = browser.execute_script("return document.getElementById('plot-pareto').data.map(t => t.x.length)")
    assert len(front) in drawn, drawn
    assert _errors(browser) == []


def test_compare_page(server, browser):
    base, _ = server
    _open(browser, base + "/compare?a=alpha&b=beta")
    assert "alpha" in _text(browser, "compare-summary")
    assert _plots(browser, "#plot-compare") == 1
    assert _errors(browser) == []


def test_screenshot_of_a_study(server, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = server
    _open(browser, base + "/study/alpha")
    WebDriverWait(browser, 30).until(lambda d: _plots(d) == 5)
    path = tmp_path / "study.png"
    assert browser.save_screenshot(str(path))
    image = Image.open(path).convert("RGB")
    assert image.size[0] >= 1000 and image.size[1] >= 600
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 100  # plots and text, not a blank or error page


def test_json_api_answers_bad_requests_with_clear_errors(server):
    base, _ = server
    assert _get(base + "/api/study/nope") == (404, {"error": "no study named 'nope' in " + server[1]})
    status, body = _get(base + "/api/study/alpha/trial/x")
    assert status == 400 and "integer" in body["error"]
    status, body = _get(base + "/api/study/alpha")
    assert status == 200 and body["n_trials"] == 12 and set(body["figures"]) >= {"history", "parallel", "curves", "cost"}


def _updated(browser, times: int = 2) -> None:
    """Wait until the page has redrawn from ``times`` more polls."""
    from selenium.webdriver.support.ui import WebDriverWait

    updates = "return parseInt(document.body.dataset.updates, 10)"
    seen = browser.execute_script(updates)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(updates) >= seen + times)


def test_the_studies_list_counts_pruned_and_paused_trials(server, browser):
    """A multi-fidelity study of trials paused at a rung and one pruned was listed with 0
    completed, 0 failed, 0 cancelled and 0 running: the columns did not add up to its trials."""
    base, url = server
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="paused", seed=5,
                            fidelity=tl.fidelity("epochs", min=1, max=9, resumable=True))
    for _ in range(3):
        trial = study.ask()
        trial.report(trial.budget, loss=trial.config["x"])
        study.tell(trial)
    pruned = study.ask()
    pruned.report(1, loss=1.0)
    study.tell(pruned, state="pruned")
    counts = study.counts()
    assert set(counts) == {"paused", "pruned"}
    _open(browser, base + "/")
    rows = browser.execute_script("""
        const heads = Array.from(document.querySelectorAll('#studies th')).map(h => h.innerText);
        return Array.from(document.querySelectorAll('#studies tbody tr')).map(tr => Object.fromEntries(
            Array.from(tr.children).map((td, i) => [heads[i], td.innerText])));""")
    row = next(r for r in rows if r["name"] == "paused")
    assert row["paused"] == str(counts["paused"]) and row["pruned"] == "1"
    states = ("completed", "pruned", "failed", "cancelled", "running", "paused", "waiting")
    for each in rows:  # every row's states add up to its trials
        assert sum(int(each.get(k, 0)) for k in states) == int(each["trials"]), each
    assert _errors(browser) == []


def test_a_zoomed_plot_stays_zoomed_when_the_page_updates(server, browser):
    """The study page redraws its figures every poll; a reader's zoom snapped back every 2 s."""
    from selenium.webdriver.common.action_chains import ActionChains

    base, _ = server
    _open(browser, base + "/study/alpha")
    drag = browser.find_element("css selector", "#plot-history .nsewdrag")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", drag)
    width, height = drag.rect["width"], drag.rect["height"]
    ranges = "const a = document.getElementById('plot-history').layout; return [a.xaxis.range, a.yaxis.range]"
    drawn = browser.execute_script(ranges)
    ActionChains(browser).move_to_element_with_offset(drag, -int(width * 0.3), -int(height * 0.3)).click_and_hold() \
        .move_by_offset(int(width * 0.3), int(height * 0.4)).release().perform()  # a box zoom
    zoomed = browser.execute_script(ranges)
    assert zoomed != drawn
    _updated(browser)
    assert browser.execute_script(ranges) == zoomed
    assert _errors(browser) == []


def test_a_running_trials_page_keeps_what_the_reader_opened_and_scrolled(server, browser):
    """A running trial's page redraws every poll: the packages list a reader opened closed again,
    and a log scrolled back to its top, every 2 s."""
    base, url = server
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="running", seed=6)
    trial = study.ask()
    trial.report(1, loss=0.5)
    folder = study.trial_dir(trial.number)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stdout.log").write_text("".join(f"epoch {i}\n" for i in range(400)))  # as a script trial's
    _open(browser, base + f"/study/running/trial/{trial.number}")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                           browser.find_element("css selector", "#environment summary"))
    browser.find_element("css selector", "#environment summary").click()
    browser.execute_script("document.getElementById('stdout').scrollTop = 300")
    _updated(browser)
    assert browser.execute_script("return document.querySelector('#environment details').open")
    assert browser.execute_script("return document.getElementById('stdout').scrollTop") == 300
    browser.execute_script("const p = document.getElementById('stdout'); p.scrollTop = p.scrollHeight")
    (folder / "stdout.log").write_text("".join(f"epoch {i}\n" for i in range(500)))
    _updated(browser)  # a log followed at its end stays at its end as it grows
    assert browser.execute_script(
        "const p = document.getElementById('stdout'); return p.scrollTop + p.clientHeight >= p.scrollHeight - 2")
    study.tell(trial, 0.5)
    assert _errors(browser) == []


def test_a_study_page_opened_before_its_study_exists_drops_the_error_once_it_does(server, browser):
    """The page said "no study named ..." and, once the run created the study, drew it below that
    message, which stayed."""
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = server
    browser.get(base + "/study/later")
    WebDriverWait(browser, 30).until(lambda d: "no study named 'later'" in _text(d, "content"))
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="later", seed=7)
    study.tell(study.ask(), 0.5)
    WebDriverWait(browser, 30).until(lambda d: "all trials (1)" in _text(d, "trials"))
    assert "no study named" not in _text(browser, "content")
    assert _text(browser, "status").startswith("updated")


def test_a_note_that_stood_in_for_a_figure_goes_once_the_figure_is_drawn(server, browser):
    """A running trial's page said "no reports", and a new study's page said importance needs more
    trials; once reports and trials came, the figures were drawn below those notes, which stayed.
    A figure with nothing to draw yet (parallel coordinates) was an empty box."""
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = server
    study = tl.create_study(SPACE, metric="loss", mode="min", storage=url, name="notes", seed=8)
    browser.get_log("browser")  # (what earlier pages logged)
    _open(browser, base + "/study/notes")
    assert _text(browser, "plot-parallel") == "parallel: no completed trial yet"
    WebDriverWait(browser, 30).until(lambda d: _text(d, "plot-importance").startswith("importance: "))
    for _ in range(5):
        trial = study.ask()
        study.tell(trial, trial.config["x"])
    WebDriverWait(browser, 30).until(lambda d: _plots(d, "#plot-importance") == 1 and _plots(d, "#plot-parallel") == 1)
    for box in ("plot-importance", "plot-parallel"):
        assert not browser.find_elements("css selector", f"#{box} .note"), _text(browser, box)
    running = study.ask()
    _open(browser, base + f"/study/notes/trial/{running.number}")
    assert _text(browser, "plot-curve") == "no reports"
    running.report(1, loss=0.5)
    WebDriverWait(browser, 30).until(lambda d: _plots(d, "#plot-curve") == 1)
    assert "no reports" not in _text(browser, "plot-curve")
    study.tell(running, 0.5)
    assert _errors(browser) == []
