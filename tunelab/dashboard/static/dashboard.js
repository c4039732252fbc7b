"use strict";
// The dashboard's only script: fetch the JSON API, draw tables with the DOM (never innerHTML, so
// names and logs cannot inject markup) and figures with plotly.js, and poll to follow live studies.

const BODY = document.body;
const POLL_MS = parseFloat(BODY.dataset.poll || "2") * 1000;
const content = document.getElementById("content");
const statusLine = document.getElementById("status");
const enc = encodeURIComponent;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function table(columns, rows, rowClass) {
  return el("table", {}, el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map((row, i) => el("tr", {class: rowClass ? rowClass(i) : ""},
      row.map((cell) => el("td", {}, cell instanceof Node ? cell : fmt(cell)))))));
}

function keyValues(object) {
  return table(["", "value"], Object.entries(object || {}).map(([k, v]) => [k, v]));
}

// A live page redraws its sections on every poll; what the reader did in one (a <details> opened,
// a log scrolled, or followed at its end) must survive the redraw, or it snaps back every few seconds.
function keepReaderState(old, fresh) {
  const pairs = (selector) => {
    const before = old.querySelectorAll(selector), after = fresh.querySelectorAll(selector);
    return Array.from(after).slice(0, before.length).map((node, i) => [before[i], node]);
  };
  for (const [was, now] of pairs("details")) now.open = was.open;
  const scrolled = [];
  for (const [was, now] of pairs("pre")) {
    if (was.scrollTop === 0) continue;
    const atEnd = was.scrollTop + was.clientHeight >= was.scrollHeight - 2;
    scrolled.push([now, atEnd, was.scrollTop]);
  }
  return scrolled;  // applied once the fresh section is in the page (a detached node cannot scroll)
}

function section(id, title, ...children) {
  let node = document.getElementById(id);
  const fresh = el("section", {id: id}, el("h2", {}, title), ...children);
  const scrolled = node ? keepReaderState(node, fresh) : [];
  if (node) node.replaceWith(fresh); else content.append(fresh);
  for (const [pre, atEnd, top] of scrolled) pre.scrollTop = atEnd ? pre.scrollHeight : top;
  return fresh;
}

function plot(id, figure) {
  let node = document.getElementById(id);
  if (!node) return;
  // a note that stood in for the figure ("no reports", importance not available yet) goes once
  // there is one to draw, or it stays above the figure, contradicting it
  for (const stale of node.querySelectorAll(":scope > .note")) stale.remove();
  // A constant uirevision keeps the reader's zoom, pan and hidden legend entries when the next
  // poll redraws the figure with new data (without it every redraw reset them).
  const layout = Object.assign({}, figure.layout, {uirevision: id});
  Plotly.react(node, figure.data, layout, {responsive: true, displaylogo: false});
}

function plotBox(id) { return el("div", {id: id, class: "plot"}); }

// A figure's box says why it is empty; a figure drawn there before is taken down first, so that
// drawing one again later starts afresh instead of updating a plot whose parts are gone.
function plotNote(id, text) {
  const node = document.getElementById(id);
  if (!node) return;
  if (node.querySelector(":scope > .note")?.textContent === text) return;
  Plotly.purge(node);
  node.replaceChildren(el("p", {class: "note"}, text));
}

async function getJSON(url) {
  const response = await fetch(url, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "status error" : "status";
}

async function poll(render, url, keepGoing) {
  try {
    const data = await getJSON(url);
    // the placeholder, or an error shown in its place (a study opened before its run created it)
    if (content.textContent === "loading..." || content.dataset.failed) {
      content.textContent = "";
      delete content.dataset.failed;
    }
    render(data);
    BODY.dataset.updates = String(parseInt(BODY.dataset.updates || "0", 10) + 1);
    BODY.dataset.ready = "1";
    showStatus("updated " + new Date().toLocaleTimeString(), false);
    if (!keepGoing || keepGoing(data)) setTimeout(() => poll(render, url, keepGoing), POLL_MS);
  } catch (error) {
    showStatus(String(error.message || error), true);
    if (content.textContent === "loading...") {
      content.textContent = String(error.message || error);
      content.dataset.failed = "1";
    }
    setTimeout(() => poll(render, url, keepGoing), POLL_MS * 2);
  }
}

function studyLink(name) { return el("a", {href: "/study/" + enc(name)}, name); }
function trialLink(study, number) { return el("a", {href: "/study/" + enc(study) + "/trial/" + number}, String(number)); }

// -- pages ------------------------------------------------------------------------------------------
// Every state a trial can be counted in, so that the columns of a row add up to its trials.
const STATES = ["completed", "pruned", "failed", "cancelled", "running", "paused", "waiting"];

function renderStudies(studies) {
  // paused and waiting only where a study has such trials (most never pause or queue)
  const states = STATES.filter((k, i) => i < 5 || studies.some((s) => s.counts[k]));
  section("studies", "studies", studies.length ? table(
    ["name", "created", "metric", "trials", ...states, "best"],
    studies.map((s) => [studyLink(s.name), s.created, s.metrics.map((m, i) => m + " (" + s.modes[i] + ")").join(", "),
      s.trials, ...states.map((k) => s.counts[k] || 0), s.best])) :
    el("p", {class: "note"}, "no studies yet"));
}

// "auto" says what it picked: "auto: bo".
const pick = (chosen) => chosen ? chosen.name + (chosen.picked ? ": " + chosen.picked : "") : "-";
const IMPORTANCE_MS = Math.max(POLL_MS, 5000);
let importanceAskedAt = 0;

function renderStudy(study) {
  const name = study.name;
  if (!document.getElementById("figures")) {
    content.append(el("section", {id: "summary"}), el("section", {id: "best"}),
      el("div", {id: "figures", class: "grid"}, ["history", ...(study.metrics.length > 1 ? ["pareto"] : []),
        "parallel", "importance", "curves", "cost"].map((f) => plotBox("plot-" + f))), el("section", {id: "top"}),
      el("section", {id: "trials"}));
  }
  const counts = Object.entries(study.counts).map(([k, v]) => v + " " + k).join(", ") || "no trials yet";
  section("summary", "summary", keyValues({
    "metric": study.metrics.map((m, i) => m + " (" + study.modes[i] + ")").join(", "), "trials": counts,
    "searcher": pick(study.settings.searcher), "scheduler": pick(study.settings.scheduler),
    "objective": study.settings.objective, "seed": study.seed,
    "cost": study.cost.total.toPrecision(4) + " " + study.cost.currency,
    "environment": study.environment.fingerprint, "files": study.folder}));
  // several metrics: the front, with each metric that defines it
  const several = study.metrics.length > 1;
  section("best", several ? "Pareto front" : "best trial", study.best.length ? table(
    ["trial", ...(several ? study.metrics : ["value"]), "config"],
    study.best.map((t) => [trialLink(name, t.number), ...(several ? study.metrics.map((m, i) => i === 0 ? t.value : t.metrics[m]) : [t.value]),
      t.config])) :
    el("p", {class: "note"}, "no completed trial yet"));
  for (const [key, figure] of Object.entries(study.figures)) plot("plot-" + key, figure);
  for (const key of ["parallel", "pareto"]) {  // drawn from completed trials (and searched parameters) only
    if (!study.figures[key]) plotNote("plot-" + key, key + (study.completed ? ": no searched parameter" : ": no completed trial yet"));
  }
  const top = study.top;
  const columns = top.length ? Object.keys(top[0]) : [];
  section("top", "top " + top.length, top.length ? table(columns, top.map((row) => columns.map(
    (c) => c === "number" ? trialLink(name, row[c]) : row[c]))) : el("p", {class: "note"}, "-"));
  section("trials", "all trials (" + study.n_trials + ")", table(["trial", "state", "value", "duration s", "host", "error"],
    study.trials.map((t) => [trialLink(name, t.number), t.state, t.value, t.duration_s, t.host, t.error]),
    (i) => study.trials[i].state));
  // Importance also reads rung values, so it is asked again when trials report, not only when
  // they complete (a multi-fidelity study completes few); at most every IMPORTANCE_MS then.
  const now = Date.now();
  const completedMoved = study.completed !== parseInt(BODY.dataset.completed || "-1", 10);
  const evidenceMoved = study.evidence !== parseInt(BODY.dataset.evidence || "-1", 10);
  if (completedMoved || (evidenceMoved && now - importanceAskedAt >= IMPORTANCE_MS)) {
    BODY.dataset.completed = String(study.completed);
    BODY.dataset.evidence = String(study.evidence);
    importanceAskedAt = now;
    getJSON("/api/study/" + enc(name) + "/importance").then((imp) => {
      if (imp.available) plot("plot-importance", imp.figure);
      else plotNote("plot-importance", "importance: " + imp.reason);
    }).catch((error) => showStatus(String(error.message || error), true));
  }
}

function renderTrial(trial) {
  const study = BODY.dataset.study;
  if (!document.getElementById("plot-curve")) content.append(el("section", {id: "overview"}), plotBox("plot-curve"));
  section("overview", "trial " + trial.number + ": " + trial.state, keyValues({
    "study": studyLink(study).textContent, "value": trial.value, "seed": trial.seed, "budget": trial.budget,
    "started": trial.started, "finished": trial.finished, "duration s": trial.duration_s, "cost": trial.cost,
    "host": trial.worker.host, "pid": trial.worker.pid, "error": trial.error}));
  section("config", "configuration", keyValues(trial.config));
  section("metrics", "metrics", keyValues(trial.metrics));
  const attrs = Object.keys(trial.user_attrs || {}).length;
  section("user-attrs", "user attributes", attrs ? keyValues(trial.user_attrs) : el("p", {class: "note"}, "none"));
  if (trial.reports.length) plot("plot-curve", trial.figure);
  else plotNote("plot-curve", "no reports");
  const env = Object.assign({}, trial.environment);
  const packages = env.packages; delete env.packages;
  section("environment", trial.environment_differs ? "environment (differs from the study's)" : "environment (the study's)",
    keyValues(env), el("details", {}, el("summary", {}, "packages"), keyValues(packages)));
  section("logs", "logs", el("h3", {}, "stdout"), el("pre", {id: "stdout"}, trial.logs.stdout || "(nothing)"),
    el("h3", {}, "stderr"), el("pre", {id: "stderr"}, trial.logs.stderr || "(nothing)"),
    trial.traceback ? el("pre", {id: "traceback"}, trial.traceback) : null);
  section("artifacts", "files in " + trial.artifact_dir, trial.artifacts.length ?
    el("ul", {}, trial.artifacts.map((f) => el("li", {}, f))) : el("p", {class: "note"}, "none"));
}

function renderCompare(result) {
  const [a, b] = result.names;
  if (!document.getElementById("plot-compare")) content.append(plotBox("plot-compare"));
  section("compare-summary", "summary", table(["", a, b], result.summary));
  section("compare-configs", "best configurations", table(["parameter", a, b], result.configs));
  section("compare-history", "best after n trials", table(["trials", a, b], result.history));
  plot("plot-compare", result.figure);
}

async function compareForm() {
  const studies = await getJSON("/api/studies");
  const choose = (name, chosen) => el("select", {name: name}, studies.map((s) => {
    const option = el("option", {value: s.name}, s.name);
    if (s.name === chosen) option.selected = true;
    return option;
  }));
  content.replaceChildren(el("form", {method: "get", action: "/compare"},
    choose("a", BODY.dataset.a), choose("b", BODY.dataset.b || (studies[1] || {}).name), el("button", {}, "compare")));
  if (BODY.dataset.a && BODY.dataset.b) {
    poll(renderCompare, "/api/compare?a=" + enc(BODY.dataset.a) + "&b=" + enc(BODY.dataset.b));
  } else {
    BODY.dataset.ready = "1";
  }
}

const finished = (trial) => !["completed", "failed", "cancelled", "pruned"].includes(trial.state);
const pages = {
  studies: () => poll(renderStudies, "/api/studies"),
  study: () => poll(renderStudy, "/api/study/" + enc(BODY.dataset.study)),
  trial: () => poll(renderTrial, "/api/study/" + enc(BODY.dataset.study) + "/trial/" + enc(BODY.dataset.trial), finished),
  compare: () => compareForm().catch((error) => showStatus(String(error.message || error), true)),
};
pages[BODY.dataset.page]();
