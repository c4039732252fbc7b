"""Study files of `tunelab run`: every key checked, errors naming the file, the line and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tunelab.distributions import Categorical, Fixed, Float, Int
from tunelab.script.outputs import JsonLines, RegexLines
from tunelab.script.source import StudyFileError
from tunelab.script.studyfile import load_study_file
from tunelab.script.template import Template, env_name

GOOD = """\
name: resnet-lr
command: python train.py --lr {lr} --bs {batch_size} --epochs {budget} --nesterov={nesterov}
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1e-6, 1.0e-1]}
  batch_size: {choice: [8, 16, 32]}
  momentum: {uniform: [0.85, 0.98]}
  layers: {randint: [1, 8], log: true}
  width: {ordinal: [64, 128, 256]}
  optimizer: {choice: [sgd, adam]}
  nesterov: {choice: [true, false], when: {optimizer: sgd}}
  epochs_fixed: 3
report: {regex: 'epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)'}
fidelity: {epochs: {min: 1, max: 81}}
n_trials: 10
workers: 2
trial_timeout: 30
seed: 7
env: {OMP_NUM_THREADS: 1}
enqueue:
  - {lr: 0.01, batch_size: 32, momentum: 0.9, layers: 2, width: 128, optimizer: adam, epochs_fixed: 3}
"""


def write(tmp_path, text: str, name: str = "study.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text: str, name: str = "study.yaml", overrides=()) -> str:
    with pytest.raises(StudyFileError) as info:
        load_study_file(write(tmp_path, text, name), overrides)
    return str(info.value)


def test_a_full_yaml_file_becomes_the_same_objects_as_the_python_api(tmp_path):
    study = load_study_file(write(tmp_path, GOOD))
    assert study.name == "resnet-lr" and study.metrics == ["val_accuracy"] and study.modes == ["max"]
    space = study.space
    assert space["lr"] == Float(1e-6, 0.1, log=True)  # 1e-6 read as a number, not a string
    assert space["layers"] == Int(1, 8, log=True)
    assert space["width"] == Categorical([64, 128, 256], ordered=True)
    assert space["nesterov"].when == {"optimizer": ("sgd",)}
    assert space["epochs_fixed"] == Fixed(3)
    assert isinstance(study.reader, RegexLines) and study.reader.metrics == ["val_accuracy"]
    fidelity = study.fidelity
    assert (fidelity.name, fidelity.min, fidelity.max, fidelity.resumable) == ("epochs", 1, 81, False)
    assert study.budgets == {"n_trials": 10} and study.workers == 2 and study.trial_timeout == 30
    assert study.seed == 7 and study.env == {"OMP_NUM_THREADS": "1"} and study.workdir == tmp_path.resolve()
    assert study.enqueue[0]["lr"] == 0.01 and study.max_retries == 1


def test_toml_file_with_a_preset_space_and_json_reports(tmp_path):
    study = load_study_file(write(tmp_path, """\
        command = ["{python}", "fit.py", "--backbone", "{backbone}", "--lr={lr}"]
        metric = "accuracy"
        mode = "max"
        n_trials = 3

        [space]
        preset = "image_classification"
        epochs = 5
        """, "fit.toml"))
    assert study.name == "fit" and isinstance(study.reader, JsonLines)
    assert {"backbone", "lr", "batch_size", "momentum", "weight_decay", "epochs"} == set(study.space)
    assert study.command.fields == ["python", "backbone", "lr"]


def test_toml_errors_name_the_line(tmp_path):
    message = error_of(tmp_path, """\
        command = "run {lr}"
        metric = "loss"
        mode = "min"
        n_trials = 3

        [space]
        lr = {loguniform = [0, 1]}
        """, "bad.toml")
    assert "bad.toml:7: space.lr:" in message and "loguniform needs 0 < low" in message


def test_unknown_key_gives_file_line_and_a_suggestion(tmp_path):
    message = error_of(tmp_path, GOOD.replace("n_trials: 10", "n_trails: 10"))
    assert "study.yaml:16: n_trails: unknown key; did you mean 'n_trials'?" in message


def test_wrong_distribution_names_the_line_and_the_close_one(tmp_path):
    message = error_of(tmp_path, GOOD.replace("{loguniform: [1e-6, 1.0e-1]}", "{lognormal: [1e-6, 1.0e-1]}"))
    assert "study.yaml:6: space.lr.lognormal: unknown distribution" in message
    assert "did you mean 'loguniform'?" in message


@pytest.mark.parametrize("line, expected", [
    ("  momentum: {uniform: [0.98, 0.85]}", "study.yaml:8: space.momentum.uniform: needs low < high; got [0.98, 0.85]"),
    ("  momentum: {uniform: [0.85]}", "study.yaml:8: space.momentum.uniform: needs a list of two numbers [low, high]"),
    ("  momentum: {choice: 3}", "study.yaml:8: space.momentum.choice: needs a list of options"),
    ("  momentum: [0.85, 0.98]", "study.yaml:8: space.momentum: a plain list is ambiguous"),
    ("  momentum: {uniform: [0.85, 0.98], log: yes-please}", "study.yaml:8: space.momentum.log: must be true or false"),
    ("  momentum: {uniform: [0.85, 0.98], when: {optimiser: sgd}}", "conditional on 'optimiser'"),
])
def test_bad_parameters(tmp_path, line, expected):
    assert expected in error_of(tmp_path, GOOD.replace("  momentum: {uniform: [0.85, 0.98]}", line))


def test_placeholder_not_in_the_space(tmp_path):
    message = error_of(tmp_path, GOOD.replace("--lr {lr}", "--lr {lrr}"))
    assert message.startswith(f"{tmp_path / 'study.yaml'}:2: command: placeholder {{lrr}} is not a parameter")
    assert "did you mean {lr}?" in message


def test_a_format_the_values_cannot_take_is_refused_before_any_trial_runs(tmp_path):
    message = error_of(tmp_path, GOOD.replace("--lr {lr}", "--lr {lr:.3q}"))
    assert message.startswith(f"{tmp_path / 'study.yaml'}:2: command: cannot format lr=")
    assert "with {lr:.3q}" in message
    assert "cannot format optimizer=" in error_of(tmp_path, GOOD.replace("--lr {lr}", "--opt {optimizer:.2f}"))
    assert load_study_file(write(tmp_path, GOOD.replace("--lr {lr}", "--lr {lr:.2e} --layers {layers:03d}")))


def test_budget_needs_a_fidelity_and_names_may_not_clash(tmp_path):
    assert "{budget} is the trial's fidelity level" in error_of(tmp_path, GOOD.replace(
        "fidelity: {epochs: {min: 1, max: 81}}", ""))
    assert "space.seed: is also the name of a built-in placeholder {seed}" in error_of(
        tmp_path, GOOD.replace("  epochs_fixed: 3", "  seed: 3"))


@pytest.mark.parametrize("resource", ["seed", "python", "trial_dir"])
def test_a_fidelity_named_like_a_built_in_placeholder_is_refused(tmp_path, resource):
    text = GOOD.replace("fidelity: {epochs: {min: 1, max: 81}}", f"fidelity: {{{resource}: {{min: 1, max: 9}}}}")
    assert f"fidelity.{resource}: {{{resource}}} is a built-in placeholder" in error_of(tmp_path, text)


def test_regex_must_capture_the_metric(tmp_path):
    message = error_of(tmp_path, GOOD.replace("(?P<val_accuracy>", "(?P<val_acc>"))
    assert "study.yaml:14: report.regex: captures val_acc but not the metric 'val_accuracy'" in message
    assert "not a valid regular expression" in error_of(tmp_path, GOOD.replace("(?P<step>", "(?P<step"))


def test_scheduler_auto_is_the_default_multi_fidelity_setup(tmp_path):
    study = load_study_file(write(tmp_path, GOOD + "scheduler: auto\n"))
    assert study.scheduler == "auto" and study.fidelity is not None and study.searcher == "kde"
    chosen = load_study_file(write(tmp_path, GOOD + "scheduler: auto\nsearcher: tpe\n"))
    assert chosen.searcher == "tpe"


def test_without_a_searcher_a_study_file_searches_as_tl_tune_does(tmp_path):
    """It was random search, where tl.tune's default (auto) picks a model: an expensive script
    tuned by a study file got the weaker default."""
    study = load_study_file(write(tmp_path, GOOD))
    assert (study.searcher, study.scheduler) == ("auto", "fifo")


@pytest.mark.parametrize("change, expected", [
    (("mode: max", "mode: maximise"), "study.yaml:4: mode: must be min or max (a list of them with a list of metrics); got the text 'maximise'"),
    (("n_trials: 10", "n_trials: 0"), "study.yaml:16: n_trials: must be a whole number, 1 or more; got the number 0"),
    (("workers: 2", "workers: two"), "study.yaml:17: workers: must be a whole number, 1 or more; got the text 'two'"),
    (("seed: 7", "seed: -1"), "study.yaml:19: seed: must be a whole number from 0 to 9223372036854775807; got the number -1"),
    (("trial_timeout: 30", "trial_timeout: soon"), "trial_timeout: must be a number of seconds above 0; got the text 'soon'"),
    (("n_trials: 10", "n_trials: 10\nsearcher: randomm"), "searcher: unknown searcher 'randomm'; did you mean 'random'?"),
    (("n_trials: 10", "n_trials: 10\nscheduler: nope"), "scheduler: unknown scheduler 'nope'"),
    (("n_trials: 10", "n_trials: 10\nexecutor: inline"), "inline executor runs one trial at a time"),
    (("n_trials: 10", "n_trials: 10\nn_trials: 11"), "study.yaml:17: n_trials: duplicate key"),
    (("name: resnet-lr", "name: resnet lr"), "study.yaml:1: name: 'resnet lr' cannot name a study: use letters, digits"),
    (("lr: 0.01, batch", "lr: 5, batch"), "study.yaml:22: enqueue[0]: "),
    (("fidelity: {epochs: {min: 1, max: 81}}", "fidelity: {epochs: {min: 9, max: 3}}"), "fidelity.epochs: needs numbers"),
    (("fidelity: {epochs: {min: 1, max: 81}}", "fidelity: {epochs: {min: 1, max: 81, resumable: yes please}}"),
     "fidelity.epochs.resumable: must be true or false; got the text 'yes please'"),
    (("fidelity: {epochs: {min: 1, max: 81}}", "fidelity: {epochs: {min: 1, max: 81, resume: true}}"),
     "fidelity.epochs: needs min and max (and resumable: true"),
    (("n_trials: 10\n", ""), "give n_trials, timeout, target or patience"),
    (("n_trials: 10", "n_trials: 10\nscheduler: asha\nscheduler_options: {etaa: 3}"),
     "study.yaml:18: scheduler_options: scheduler 'asha' has no option 'etaa'"),
    (("n_trials: 10", "n_trials: 10\nsearcher: tpe\nsearcher_options: {gamma: 5}"), "study.yaml:18: searcher_options: "),
    (("n_trials: 10", "n_trials: 10\nscheduler: threshold"), "study.yaml:17: scheduler: "),
    (("n_trials: 10", "n_trials: 10\nmax_retries: -1"), "study.yaml:17: max_retries: must be a whole number, 0 or more; got the number -1"),
    (("mode: max\n", ""), "the key 'mode' is missing"),
    (("space:\n", "space:\n  bad: [\n"), "not valid YAML"),
    (("n_trials: 10", "n_trials: 10\non: push"), "study.yaml:17: on: YAML reads this key as true/false (true), not as a name: write it in quotes, 'on'"),
    (("n_trials: 10", "n_trials: 10\n1: 3"), "study.yaml:17: 1: YAML reads this key as a number (1), not as a name"),
    (("n_trials: 10", "n_trials: 10\nresult_file: result.json"),  # workers: 2 in GOOD
     "study.yaml:17: result_file: 'result.json' is one file for all 2 trials running at once"),
])
def test_each_key_is_checked(tmp_path, change, expected):
    assert expected in error_of(tmp_path, GOOD.replace(*change, 1))


def test_a_format_is_tried_on_every_option_of_a_choice(tmp_path):
    """Tried on eight drawn configurations only, {bs:d} passed and then failed the trial that drew 'auto'."""
    text = GOOD.replace("--bs {batch_size}", "--bs {batch_size:d}").replace(
        "batch_size: {choice: [8, 16, 32]}", f"batch_size: {{choice: [{', '.join(str(2 ** i) for i in range(20))}, auto]}}")
    assert "cannot format batch_size='auto' with {batch_size:d}" in error_of(tmp_path, text)


def test_set_overrides_apply_before_checking_and_errors_name_the_flag(tmp_path):
    path = write(tmp_path, GOOD)
    study = load_study_file(path, ["n_trials=20", "workers=4", "space.lr={uniform: [0.001, 0.2]}",
                                   "storage=sqlite:///x.db", "name=other"])
    assert study.budgets["n_trials"] == 20 and study.workers == 4 and study.storage == f"sqlite:///{Path.cwd() / 'x.db'}"
    assert study.space["lr"] == Float(0.001, 0.2) and study.name == "other"
    assert "--set n_trial=3: n_trial: unknown key; did you mean 'n_trials'?" in error_of(
        tmp_path, GOOD, overrides=["n_trial=3"])
    assert "--set workers=0: workers: must be a whole number, 1 or more; got the number 0" in error_of(tmp_path, GOOD, overrides=["workers=0"])
    assert "--set needs key=value" in error_of(tmp_path, GOOD, overrides=["workers"])
    # another flag that sets a key is named as the user wrote it; a name is text, even all digits
    assert error_of(tmp_path, GOOD, overrides=[("--executor foo", "executor=foo")]).startswith(
        "--executor foo: executor: unknown executor 'foo'")
    assert load_study_file(write(tmp_path, GOOD), ["name=123"]).name == "123"


def test_a_set_value_that_opens_a_structure_but_does_not_parse_is_refused_not_taken_as_text(tmp_path):
    assert error_of(tmp_path, GOOD, overrides=["space.optimizer={choice: [sgd, adam}"]).startswith(
        "--set space.optimizer={choice: [sgd, adam}: the value '{choice: [sgd, adam}' does not parse as YAML: "
        "expected ',' or ']'")
    assert "single quotes keep it as it is" in error_of(
        tmp_path, GOOD, overrides=['report={regex: "epoch (?P<step>\\d+) val_acc (?P<val_accuracy>[\\d.]+)"}'])
    # text where text belongs: a command with placeholders is no YAML, a constant is a word
    study = load_study_file(write(tmp_path, GOOD), ["command={python} t.py --lr {lr} --epochs {budget}",
                                                    "space.momentum=0.9"])
    assert str(study.command) == "{python} t.py --lr {lr} --epochs {budget}" and study.space["momentum"] == Fixed(0.9)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(StudyFileError, match="no study file at"):
        load_study_file(tmp_path / "nope.yaml")
    assert "ends in .yaml, .yml or .toml" in error_of(tmp_path, GOOD, name="study.json")
    (tmp_path / "latin1.yaml").write_bytes(b"# tuning\n# r\xe9glage\n")
    with pytest.raises(StudyFileError, match=r"latin1.yaml:2: a study file is UTF-8 text; byte 0xe9 is not"):
        load_study_file(tmp_path / "latin1.yaml")


def test_templates_render_values_and_drop_inactive_conditional_tokens():
    template = Template("python t.py --lr {lr:.3f} --opt {opt} --nesterov={nesterov} --flag {flag} '{{x}}' {name}")
    argv = template.render({"lr": 0.012345, "opt": "sgd", "flag": True, "name": "a b"})
    assert argv == ["python", "t.py", "--lr", "0.012", "--opt", "sgd", "--flag", "true", "{x}", "a b"]
    assert env_name("learning-rate") == "TUNELAB_PARAM_LEARNING_RATE"


@pytest.mark.parametrize("written, name", [("123", "123"), ("007", "007"), ("1.50", "1.50"), ("1e3", "1e3"),
                                           ("2024-01-01", "2024-01-01"), ("yes", "yes"), ("'123'", "123")])
def test_a_name_is_the_text_written_in_the_file_as_on_the_command_line(tmp_path, written, name):
    """YAML reads `name: 007` as the number 7; the study is "007", as with --set name=007."""
    assert load_study_file(write(tmp_path, GOOD.replace("name: resnet-lr", f"name: {written}"))).name == name
    assert load_study_file(write(tmp_path, GOOD), [f"name={written.strip(chr(39))}"]).name == name


def test_a_toml_name_is_the_text_written_too(tmp_path):
    toml = """\
        name = 123  # a number in TOML
        command = "run {lr}"
        metric = "loss"
        mode = "min"
        n_trials = 3
        [space]
        lr = {uniform = [0, 1]}
        """
    assert load_study_file(write(tmp_path, toml, "s.toml")).name == "123"


def test_an_empty_name_is_refused_in_the_file_and_on_the_command_line(tmp_path):
    for text in ("name:", "name: ~", "name: ''"):
        message = error_of(tmp_path, GOOD.replace("name: resnet-lr", text))
        assert "study.yaml:1: name: is empty: write the study's name, or leave the key out" in message, text
    assert "--set name=: name: is empty" in error_of(tmp_path, GOOD, overrides=["name="])
    assert "study.yaml:1: name: must be text, the study's name; got a list: [a, b]" in error_of(
        tmp_path, GOOD.replace("name: resnet-lr", "name: [a, b]"))


def test_other_text_keys_keep_what_is_written(tmp_path):
    """A folder named 2024 and a command word 1 are text, not numbers that fail a type check."""
    (tmp_path / "2024").mkdir()
    study = load_study_file(write(tmp_path, """\
        command: [python, train.py, --seed, 1, --lr, '{lr}']
        workdir: 2024
        metric: loss
        mode: min
        space: {lr: {uniform: [0, 1]}}
        n_trials: 3
        """))
    assert study.workdir == (tmp_path / "2024").resolve()
    assert study.command.render({"lr": 0.5}) == ["python", "train.py", "--seed", "1", "--lr", "0.5"]


ENV_BASE = """\
command: run {lr}
metric: loss
mode: min
space: {lr: {uniform: [0, 1]}}
n_trials: 3
"""


def test_env_values_are_the_text_written_not_what_yaml_makes_of_it(tmp_path):
    """YAML reads 1.10 as 1.1, 010 as 8 (YAML 1.1 octal), yes as true and a blank as null; an
    environment variable is text, so the script must see what the file says."""
    study = load_study_file(write(tmp_path, ENV_BASE + textwrap.dedent("""\
        env:
          VERSION: 1.10
          X: 010
          FLAG: yes
          ON: off
          EMPTY:
          DAY: 2024-01-02
          BIG: 1e3
          QUOTED: '1.10'
        """)))
    assert study.env == {"VERSION": "1.10", "X": "010", "FLAG": "yes", "ON": "off", "EMPTY": "",
                         "DAY": "2024-01-02", "BIG": "1e3", "QUOTED": "1.10"}


def test_env_set_overrides_are_the_text_typed(tmp_path):
    path = write(tmp_path, ENV_BASE)
    study = load_study_file(path, ["env.VERSION=1.10", "env.X=010", "env.FLAG=yes", "env.EMPTY=", "env.N=null"])
    assert study.env == {"VERSION": "1.10", "X": "010", "FLAG": "yes", "EMPTY": "", "N": "null"}
    assert load_study_file(path, ["env={V: 1.10, W: 010, E: }"]).env == {"V": "1.10", "W": "010", "E": ""}


def test_an_unquoted_null_in_env_is_refused_as_ambiguous(tmp_path):
    for value in ("null", "~"):
        message = error_of(tmp_path, ENV_BASE + f"env: {{A: {value}}}\n")
        assert "study.yaml:6: env.A: is null, YAML's no value: write '' for an empty variable" in message
    assert load_study_file(write(tmp_path, ENV_BASE + "env: {A: 'null'}\n")).env == {"A": "null"}


def test_toml_env_numbers_are_the_text_of_their_line_or_refused(tmp_path):
    toml = """\
        command = "run {lr}"
        metric = "loss"
        mode = "min"
        n_trials = 3
        space.lr = {uniform = [0, 1]}
        [env]
        VERSION = 1.10  # a float in TOML
        MODE = 0o10
        FLAG = true
        DAY = 2024-01-02
        TEXT = "as is"
        """
    study = load_study_file(write(tmp_path, toml, "s.toml"))
    assert study.env == {"VERSION": "1.10", "MODE": "0o10", "FLAG": "true", "DAY": "2024-01-02", "TEXT": "as is"}
    inline = toml.split("[env]")[0] + "env = {PORT = 8080}\n"
    assert "s.toml:6: env.PORT: must be text; got the number 8080: write it in quotes" in error_of(
        tmp_path, inline, "s.toml")


def test_name_null_is_no_value_in_the_file_but_text_on_the_command_line(tmp_path):
    """Unquoted, YAML's null is no value (refused: a study needs a name); a shell argument is
    text, and --set has no other way to say the word, so --set name=null is the study 'null'."""
    assert "study.yaml:1: name: is empty" in error_of(tmp_path, GOOD.replace("name: resnet-lr", "name: null"))
    assert load_study_file(write(tmp_path, GOOD), ["name=null"]).name == "null"
    assert load_study_file(write(tmp_path, GOOD.replace("name: resnet-lr", "name: 'null'"))).name == "null"
