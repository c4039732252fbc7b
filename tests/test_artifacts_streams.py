"""A trial run in the tuner's process sees ``sys.stdout`` as the stream it was: more than write()."""

from __future__ import annotations

import faulthandler
import subprocess
import sys

import tunelab as tl


def _uses_the_stream(config, trial):
    print("before the child")
    subprocess.run([sys.executable, "-c", "print('from the child')"], stdout=sys.stdout, stderr=sys.stderr,
                   check=True)
    faulthandler.enable(file=sys.stderr)
    faulthandler.disable()
    sys.stdout.flush()
    sys.stdout.buffer.flush()
    assert isinstance(sys.stdout.name, (str, int))
    return config["x"]


def test_an_inline_trial_may_hand_its_stdout_to_a_child_process_or_faulthandler(tmp_path, capfd):
    """The stream stood in for stdout had no fileno, buffer or name: subprocess.run(..., stdout=sys.stdout)
    and faulthandler.enable() failed the trial inside tl.tune, and worked outside it."""
    study = tl.tune(_uses_the_stream, {"x": tl.uniform(0, 1)}, metric="loss", mode="min", n_trials=1, seed=0,
                    name="streams", artifact_dir=tmp_path, progress=False)
    (trial,) = study.trials
    assert trial.state is tl.TrialState.COMPLETED, trial.error
    assert (tmp_path / "streams" / "0" / "stdout.txt").read_text() == "before the child\n"
    assert "from the child" in capfd.readouterr().out  # a child writes to the console's descriptor
