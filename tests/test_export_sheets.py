"""An Excel export of a long study: more reports (or trials) than a sheet holds go on in more
sheets, each with its header, every value in its place."""

from __future__ import annotations

import pytest

import tunelab as tl
from tunelab.tracking.export import write


def _long_study(n_trials, n_reports):
    study = tl.create_study({"opt": tl.choice(["=1+2", "sgd"])}, metric="loss", mode="min", name="long", seed=0)
    for _ in range(n_trials):
        trial = study.ask()
        for epoch in range(1, n_reports + 1):
            trial.report(epoch, loss=trial.number + 1 / epoch)
        study.tell(trial)
    return study


def _sheet(book, title):
    header, *rows = [[cell.value for cell in row] for row in book[title].iter_rows()]
    return header, rows


def test_rows_past_a_sheets_limit_go_on_in_numbered_sheets_with_their_header(tmp_path, monkeypatch):
    """Past Excel's 1,048,576 rows a sheet, openpyxl failed ("Row numbers must be between 1 and
    1048576"): a study of a million reports could not be exported. Here the limit is made small."""
    openpyxl = pytest.importorskip("openpyxl")
    from tunelab.tracking import export_xlsx

    monkeypatch.setattr(export_xlsx, "MAX_SHEET_ROWS", 4)  # a header and three rows a sheet
    study = _long_study(n_trials=5, n_reports=2)
    book = openpyxl.load_workbook(write(study, "xlsx", tmp_path / "long.xlsx"))
    names = book.sheetnames
    assert [n for n in names if n.startswith("trials")] == ["trials", "trials (2)"]
    assert [n for n in names if n.startswith("reports")] == ["reports", "reports (2)", "reports (3)", "reports (4)"]
    assert names.index("trials (2)") < names.index("study") < names.index("reports")
    trial_sheets = [_sheet(book, t) for t in ("trials", "trials (2)")]
    assert {tuple(header) for header, _ in trial_sheets} == {tuple(trial_sheets[0][0])}
    numbers = [row[0] for _, rows in trial_sheets for row in rows]
    assert numbers == [0, 1, 2, 3, 4] and all(book[t].freeze_panes == "B2" for t in ("trials", "trials (2)"))
    opts = [row[trial_sheets[0][0].index("params.opt")] for _, rows in trial_sheets for row in rows]
    assert opts == [t.config["opt"] for t in study.trials]  # "=1+2" kept as text on every sheet
    reports = [_sheet(book, t) for t in ("reports", "reports (2)", "reports (3)", "reports (4)")]
    assert {tuple(header) for header, _ in reports} == {("trial", "step", "loss")}
    assert [tuple(row) for _, rows in reports for row in rows] == [
        (t.number, r.step, pytest.approx(r.metrics["loss"])) for t in study.trials for r in t.reports]


def test_the_sheet_limit_is_excels():
    pytest.importorskip("openpyxl")
    from openpyxl.xml.constants import MAX_ROW

    from tunelab.tracking.export_xlsx import MAX_SHEET_ROWS

    assert MAX_SHEET_ROWS == MAX_ROW == 1_048_576
