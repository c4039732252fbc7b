"""The shell face as a new user's first session meets it: the demo's closing hints are commands
to paste, a choice of ``None`` reads as a value and not as an absent parameter, and a plot named
with the wrong suffix leaves nothing behind. Run in process, read by exit code and output."""

from __future__ import annotations

import re
import shlex

import pytest

import tunelab as tl
from tunelab.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_demo_s_closing_hints_run_as_printed_and_the_export_one_writes_a_file(tmp_path, monkeypatch, capsys):
    """The hints are pasted into a shell: a storage path with a space must stay one word, and
    'Export it' must leave a file behind (it printed the whole CSV into the terminal)."""
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'my runs' / 'lab.db'}"
    (tmp_path / "my runs").mkdir()
    code, out, err = run(capsys, "demo", "--trials", "1", "--workers", "1", "--storage", url)
    assert code == 0, err
    hints = {m.group(1): m.group(2) for m in re.finditer(r"^(Inspect|Export) it:\s+(tunelab .+)$", out, re.M)}
    assert set(hints) == {"Inspect", "Export"}, out
    for hint in hints.values():
        code, _, err = run(capsys, *shlex.split(hint)[1:])
        assert code == 0, (hint, err)
    exported = tmp_path / "demo.csv"
    assert exported.exists(), hints["Export"]
    assert exported.read_text().startswith("number,state,value,")


def test_show_writes_a_choice_of_none_as_none_and_an_inactive_parameter_as_a_dash(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    space = {"features": tl.choice(["sqrt", None]), "kind": tl.choice(["plain", "fancy"]),
             "depth": tl.randint(1, 3, when={"kind": "fancy"})}
    study = tl.create_study(space, metric="loss", mode="min", name="nones", storage=url, seed=0)
    study.tell(study.ask({"features": None, "kind": "plain"}), 0.1)  # the best: None chosen, depth off
    study.tell(study.ask({"features": "sqrt", "kind": "fancy", "depth": 2}), 0.5)
    code, out, err = run(capsys, "show", "nones", "--storage", url)
    assert code == 0, err
    assert "features=None, kind=plain" in out  # the best trial's line, not "features=-"
    best_row = next(line for line in out.splitlines() if re.match(r"\W+0\W", line))
    cells = [cell.strip() for cell in re.split(r"[│┃|]", best_row) if cell.strip()]
    assert cells[-2:] == ["plain", "-"] and "None" in cells, cells  # depth is off; features is None


def test_a_plot_named_with_a_suffix_it_cannot_write_leaves_no_folder_behind(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = tl.create_study({"x": tl.uniform(0, 1)}, metric="loss", mode="min", name="p", storage=url)
    study.tell(study.ask(), 0.5)
    target = tmp_path / "figures" / "history.pdf"
    code, _, err = run(capsys, "plot", "p", "-o", str(target), "--storage", url)
    assert code == 2 and ".html (self-contained) or .png" in err
    assert not target.parent.exists()
