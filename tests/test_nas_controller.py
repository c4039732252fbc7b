"""The REINFORCE controller: valid samples, exact log-probabilities, learning, recording."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")
torch.set_num_threads(1)

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.distributions import Categorical  # noqa: E402
from tunelab.trial import TrialState  # noqa: E402


def test_samples_respect_the_space_including_conditions():
    space = tl.Space(nas.macro_space("cnn", max_layers=3))
    policy = nas.Policy(space, hidden=8)
    generator = torch.Generator().manual_seed(0)
    depths = set()
    for _ in range(40):
        config, log_prob, entropy = policy.sample(generator)
        assert space.validate(config) == config  # raises on anything outside the space
        assert config["kind"] == "cnn" and set(config) == set(space.validate(config))
        assert f"width_{config['layers']}" not in config
        assert log_prob.item() < 0 and entropy.item() > 0
        depths.add(config["layers"])
    assert depths == {1, 2, 3}


def manual_log_prob(policy: nas.Policy, config: dict) -> float:
    """Re-run the policy by hand: LSTM step, linear head, softmax written out, log of the chosen one."""
    total, inputs, state = 0.0, policy.start, None
    with torch.no_grad():
        for name, dist in policy.space.params.items():
            if name not in config or name not in policy.index:
                continue
            step = policy.index[name]
            state = policy.lstm(inputs, state)
            logits = policy.heads[step](state[0])[0].tolist()
            choice = dist.index(config[name]) if isinstance(dist, Categorical) else config[name] - dist.low
            denominator = sum(math.exp(v) for v in logits)
            total += math.log(math.exp(logits[choice]) / denominator)
            inputs = policy.embeddings[step](torch.tensor([choice]))
    return total


@pytest.mark.parametrize("space", [nas.cell_space(2), nas.macro_space("mlp", max_layers=3)])
def test_log_probabilities_match_a_manual_softmax(space):
    policy = nas.Policy(tl.Space(space), hidden=8)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        config, sampled_log_prob, _ = policy.sample(generator)
        log_prob, _ = policy.log_prob(config)
        assert log_prob.item() == pytest.approx(manual_log_prob(policy, config), abs=1e-5)
        assert sampled_log_prob.item() == pytest.approx(log_prob.item(), abs=1e-5)
        assert log_prob.requires_grad


def fraction_sep3(config: dict) -> float:
    ops = [v for k, v in config.items() if "_op" in k]
    return sum(op == "sep_conv_3x3" for op in ops) / len(ops)


def expected_reward(searcher: nas.ReinforceSearcher, samples: int = 150) -> float:
    generator = torch.Generator().manual_seed(123)
    return sum(fraction_sep3(searcher.policy.sample(generator)[0]) for _ in range(samples)) / samples


def run_study(space: dict, searcher, mode: str, steps: int, seed: int) -> tl.Study:
    """Ask/tell loop: the reward is the fraction of sep_conv_3x3 (its complement when minimised)."""
    study = tl.create_study(space, metric="score", mode=mode, searcher=searcher, seed=seed)
    for _ in range(steps):
        trial = study.ask()
        reward = fraction_sep3(trial.config)
        study.tell(trial, reward if mode == "max" else 1.0 - reward)
    return study


def test_reinforce_improves_expected_reward_and_records_every_architecture():
    space = nas.cell_space(2)
    searcher = nas.ReinforceSearcher(space, seed=0, lr=0.05)
    before = expected_reward(searcher)
    study = run_study(space, searcher, "max", 40, seed=0)
    after = expected_reward(searcher)
    assert before == pytest.approx(1 / len(nas.CELL_OPS), abs=0.06)
    assert after > before + 0.2
    assert len(study.trials) == 40 and study.counts() == {"completed": 40}
    assert searcher.baseline is not None and searcher.baseline > before


def test_minimised_metric_is_turned_into_a_reward():
    space = nas.cell_space(1)
    searcher = nas.ReinforceSearcher(space, seed=1, lr=0.05)
    before = expected_reward(searcher)
    run_study(space, searcher, "min", 40, seed=1)
    assert expected_reward(searcher) > before + 0.2


def test_a_fresh_controller_replays_the_study_to_the_same_proposals():
    space = nas.cell_space(2)
    study = run_study(space, nas.ReinforceSearcher(space, seed=5), "max", 8, seed=5)
    first = nas.ReinforceSearcher(space, seed=5).suggest(study.history(), 3)
    second = nas.ReinforceSearcher(space, seed=5).suggest(study.history(), 3)
    assert first == second == study.searcher.suggest(study.history(), 3)  # the one that ran the study
    assert first != nas.ReinforceSearcher(space, seed=6).suggest(study.history(), 3)


def test_continuous_parameters_are_refused():
    with pytest.raises(tl.SpaceError, match="parameter 'lr'"):
        nas.ReinforceSearcher({**nas.cell_space(1), "lr": tl.loguniform(1e-3, 1e-1)})
    with pytest.raises(tl.ConfigError, match="baseline_decay"):
        nas.ReinforceSearcher(nas.cell_space(1), baseline_decay=1.0)


def test_registered_by_name_with_options_and_reopened_from_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    space = nas.cell_space(1)
    study = tl.tune(fraction_sep3, space, metric="score", mode="max", searcher="reinforce",
                    searcher_options={"lr": 0.05, "hidden": 8}, n_trials=4, seed=2, storage=url, name="rl")
    assert study.searcher.describe()["lr"] == 0.05
    reopened = tl.load_study("rl", storage=url)
    assert isinstance(reopened.searcher, nas.ReinforceSearcher) and reopened.searcher.hidden == 8
    assert reopened.searcher.suggest(reopened.history(), 1) == study.searcher.suggest(study.history(), 1)


def test_the_controller_learns_to_keep_away_from_architectures_that_fail():
    """Failed trials taught it nothing: it kept proposing the op that ran out of memory."""
    space = {"op": tl.choice(list(nas.CELL_OPS)), "op2": tl.choice(list(nas.CELL_OPS))}

    def objective(config):
        if config["op"] == "max_pool_3x3":
            raise RuntimeError("out of memory")
        return 1.0

    study = tl.tune(objective, space, metric="acc", mode="max", n_trials=120, seed=0, progress=False,
                    searcher=nas.ReinforceSearcher(space, seed=0, lr=0.1), max_failures=None)
    failed = [t.state is TrialState.FAILED for t in study.trials]
    assert sum(failed[-40:]) < sum(failed[:40])


def test_the_controller_learns_from_trials_its_scheduler_stopped():
    """It learned from completed trials only: under a stopping scheduler most trials are pruned, and
    the architectures they showed to be poor kept their probability."""
    space = {"op": tl.choice(list(nas.CELL_OPS))}
    searcher = nas.ReinforceSearcher(space, seed=0)
    study = tl.create_study(space, metric="acc", mode="max", searcher=searcher, seed=0)

    def probability(op: str) -> float:
        with torch.no_grad():
            return float(searcher.policy.log_prob({"op": op})[0].exp())

    before = probability("max_pool_3x3")
    study.tell(config={"op": "skip_connect"}, value=0.9)
    for _ in range(5):
        study.tell(config={"op": "max_pool_3x3"}, value={"acc": 0.1}, state="pruned")
    searcher.suggest(study.history(), 1)
    assert probability("max_pool_3x3") < 0.75 * before


@pytest.mark.parametrize("option, value", [("lr", "0.1"), ("hidden", 2.5), ("entropy_weight", None)])
def test_bad_options_are_refused_with_their_name(option, value):
    """lr='0.1' was a TypeError from a comparison, hidden=2.5 one from inside torch."""
    with pytest.raises(tl.ConfigError, match=f"reinforce: {option} must be"):
        nas.ReinforceSearcher(nas.cell_space(1), **{option: value})
