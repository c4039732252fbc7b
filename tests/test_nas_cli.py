"""`tunelab nas show` through a real subprocess, and the error a user without torch meets."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "tunelab.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def ops_count(config: dict) -> float:
    return sum(v == "avg_pool_3x3" for k, v in config.items() if "_op" in k)


@pytest.fixture
def stored(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    space = nas.cell_space(2)
    study = tl.tune(ops_count, space, metric="pools", mode="max", n_trials=6, seed=0, storage=url, name="cells",
                    searcher=nas.RegularizedEvolution(space, seed=0, population=3, sample=2))
    study.set_user_attr(study.get_trial(2).id, "genotype",
                        nas.Genotype.from_config(study.get_trial(2).config).to_json())
    return url


def test_nas_show_prints_the_best_cell_and_writes_svg(stored, tmp_path):
    study = tl.load_study("cells", storage=stored, searcher="random")
    best = nas.Genotype.from_config(study.best.config)
    out = run("nas", "show", "cells", "--storage", stored, "--output", "cell.svg", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"trial {study.best.number}" in out.stdout
    assert nas.describe(best) in out.stdout
    svg = ElementTree.parse(tmp_path / "cell.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"


def test_nas_show_reads_a_chosen_trial_and_its_stored_genotype(stored, capsys):
    genotype = nas.Genotype.from_config(tl.load_study("cells", storage=stored, searcher="random").get_trial(2).config)
    assert main(["nas", "show", "cells", "--trial", "2", "--storage", stored]) == 0
    out = capsys.readouterr().out
    assert "trial 2 " in out and nas.describe(genotype) in out


@pytest.mark.parametrize("args, message", [
    (["cells", "--trial", "99"], "has no trial number 99"),
    (["cells", "--output", "cell.png"], "--output must name an .svg file"),
    (["plain"], "holds no cell architecture"),
])
def test_nas_show_mistakes_are_one_line_errors(stored, capsys, args, message):
    tl.tune(lambda c: c["x"], {"x": tl.uniform(0, 1)}, metric="y", mode="min", n_trials=2, storage=stored,
            name="plain")
    assert main(["nas", "show", *args, "--storage", stored]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


HIDE_TORCH = "import sys; sys.modules['torch'] = None\n"


def test_missing_torch_gives_an_install_hint(tmp_path):
    out = run(cwd=tmp_path, code=HIDE_TORCH + "import tunelab.nas")
    assert out.returncode == 1
    assert "MissingExtra" in out.stderr and "pip install 'tunelab[nas]'" in out.stderr
    caught = run(cwd=tmp_path, code=HIDE_TORCH + (
        "import tunelab as tl\n"
        "try:\n    import tunelab.nas\nexcept tl.TunelabError as err:\n    print('caught:', err)\n"))
    assert caught.returncode == 0 and "caught: tunelab.nas needs PyTorch" in caught.stdout


def test_tunelab_and_its_cli_work_without_torch(tmp_path):
    out = run(cwd=tmp_path, code=HIDE_TORCH + (
        "import tunelab as tl, sys\n"
        "from tunelab.cli import main\n"
        "study = tl.tune(lambda c: c['x'], {'x': tl.uniform(0, 1)}, metric='y', mode='min', n_trials=2,\n"
        "            searcher='random')\n"
        "sys.exit(main(['nas', 'show', 'nothing', '--storage', 'sqlite:///none.db']))\n"))
    assert out.returncode == 2, out.stderr
    assert "no tunelab database" in out.stderr
    url = f"sqlite:///{tmp_path / 'n.db'}"
    stored = run(cwd=tmp_path, code=f"import tunelab as tl\ntl.tune(lambda c: 0.5, {{'normal_n0_op0': 'skip_connect'}}, "
                                    f"metric='y', mode='min', n_trials=1, storage='{url}', name='s')")
    assert stored.returncode == 0, stored.stderr
    hidden = run(cwd=tmp_path, code=HIDE_TORCH + f"import sys\nfrom tunelab.cli import main\n"
                                                 f"sys.exit(main(['nas', 'show', 's', '--storage', '{url}']))")
    assert hidden.returncode == 2 and "pip install 'tunelab[nas]'" in hidden.stderr and "Traceback" not in hidden.stderr


def test_nas_show_of_a_study_with_several_metrics_takes_trial_or_metric(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    study = tl.create_study(nas.cell_space(1), metric=["accuracy", "params"], mode=["max", "min"], name="multi",
                            storage=url, seed=0)
    for accuracy, params in ((0.9, 300), (0.5, 100)):
        study.tell(study.ask(), {"accuracy": accuracy, "params": params})
    assert main(["nas", "show", "multi", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "pick a trial with --trial N, or the best on one metric with --metric NAME" in err
    assert main(["nas", "show", "multi", "--metric", "params", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "trial 1 (completed), params = 100" in out
    assert nas.describe(study.get_trial(1).config) in out
    assert main(["nas", "show", "multi", "--trial", "0", "--storage", url]) == 0
    assert "trial 0 (completed), accuracy = 0.9" in capsys.readouterr().out
