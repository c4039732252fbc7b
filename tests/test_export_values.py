"""Values the exports must carry as they are: infinities in Excel, the real steps of a curve in
TensorBoard. Each file is opened in its own reader."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import pytest

import tunelab as tl
from tunelab.tracking.export import write


def test_xlsx_spells_infinities_as_the_json_export_does(tmp_path):
    """openpyxl wrote inf and -inf as empty cells: a diverged metric looked as if never reported."""
    openpyxl = pytest.importorskip("openpyxl")
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="inf")
    trial = study.ask()
    trial.report(1, loss=0.5, grad=math.inf, low=-math.inf, gap=math.nan)
    study.tell(trial, {"loss": 0.5, "grad": math.inf})
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "inf.xlsx"))
    header, row = [[cell.value for cell in line] for line in book["trials"].iter_rows()]
    assert row[header.index("metrics.grad")] == "Infinity" and row[header.index("metrics.loss")] == 0.5
    header, row = [[cell.value for cell in line] for line in book["reports"].iter_rows()]
    assert dict(zip(header, row)) == {"trial": 0, "step": 1, "gap": "NaN", "grad": "Infinity", "loss": 0.5,
                                      "low": "-Infinity"}


@pytest.mark.parametrize("steps", [(1.0, 2.5), (1.5, 2.0), (0.5, 1.0)])
def test_tensorboard_keeps_the_real_steps_of_every_counted_curve(tmp_path, steps):
    """Counted steps (a curve with a fractional step) came with the real ones only when the last
    counted step differed from the last real step rounded: steps 1 and 2.5 were drawn at 1 and 2."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="steps")
    trial = study.ask()
    for step in steps:
        trial.report(step, loss=step)
    study.tell(trial)
    events = EventAccumulator(f"{write(study, 'tensorboard', tmp_path / 'tb')}/trial-0")
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("curve/loss")] == [(1, steps[0]), (2, steps[1])]
    assert [(e.step, e.value) for e in events.Scalars("curve/step")] == [(1, steps[0]), (2, steps[1])]


def test_csv_and_json_files_are_utf8_with_their_newlines_whatever_the_locale(tmp_path):
    """The CSV file was written in the locale's encoding: a parameter named "λ" failed to export
    where that is ASCII (LC_ALL=C) or cp1252 (Windows), and Windows made "\\n" in a value "\\r\\n"."""
    script = (
        "import sys, tunelab as tl\n"
        "from tunelab.tracking.export import write\n"
        "s = tl.create_study({'\\u03bb': tl.choice(['\\u65e5\\u672c', 'a\\nb'])}, metric='loss', mode='min',"
        " name='u', seed=0)\n"
        "for v in ('\\u65e5\\u672c', 'a\\nb'): s.enqueue({'\\u03bb': v}); s.tell(s.ask(), 0.5)\n"
        "write(s, 'csv', sys.argv[1]); write(s, 'json', sys.argv[2])\n")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": ""}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "u.csv"), str(tmp_path / "u.json")], env=env,
                   check=True, capture_output=True)
    with open(tmp_path / "u.csv", encoding="utf-8", newline="") as handle:
        assert [row["params.λ"] for row in csv.DictReader(handle)] == ["日本", "a\nb"]
    document = json.loads((tmp_path / "u.json").read_text(encoding="utf-8"))
    assert [t["config"]["λ"] for t in document["trials"]] == ["日本", "a\nb"]


def test_exporting_to_tensorboard_again_replaces_the_earlier_export(tmp_path):
    """A second export into the same folder (after more trials) added event files beside the first
    ones: TensorBoard read both and drew every curve twice. Other files there stay."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="again")
    trial = study.ask()
    for epoch in (1, 2, 3):
        trial.report(epoch, loss=1 / epoch)
    study.tell(trial)
    root = write(study, "tensorboard", tmp_path)
    (tmp_path / "again" / "trial-0" / "notes.txt").write_text("mine")
    study.tell(study.ask(), 0.25)
    assert write(study, "tensorboard", tmp_path) == root
    events = EventAccumulator(f"{root}/trial-0")
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("curve/loss")] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert [e.step for e in events.Scalars("loss")] == [3]
    assert (tmp_path / "again" / "trial-0" / "notes.txt").read_text() == "mine"
    assert len(list((tmp_path / "again").glob("events.out.tfevents.*"))) == 1


def test_xlsx_takes_text_with_control_characters_and_cells_past_excels_limit(tmp_path):
    """openpyxl refuses control characters: one colour code in an error message ("\\x1b[31m",
    as coloured logs write) failed the whole export. They are shown as \\x1b; a text past Excel's
    32,767 characters (which makes Excel "repair" the workbook) is cut, saying so."""
    openpyxl = pytest.importorskip("openpyxl")
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="ansi")
    study.tell(study.ask(), state="failed", error="\x1b[31mCUDA out of memory\x1b[0m\x00" + "x" * 40_000)
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "ansi.xlsx"))
    header, row = [[cell.value for cell in line] for line in book["trials"].iter_rows()]
    error = row[header.index("error")]
    assert error.startswith("\\x1b[31mCUDA out of memory\\x1b[0m\\x00xxx")
    assert len(error) == 32767 and error.endswith(" [cut at 32767 characters]")


def test_an_empty_studys_xlsx_has_the_header_of_its_trials(tmp_path):
    """The trials sheet of a study without trials was blank, where its CSV has the header."""
    openpyxl = pytest.importorskip("openpyxl")
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", seed=0, name="none")
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "none.xlsx"))
    (header,) = [[cell.value for cell in line] for line in book["trials"].iter_rows()]
    assert header[:4] == ["number", "state", "value", "params.x"] and header[-1] == "host"
