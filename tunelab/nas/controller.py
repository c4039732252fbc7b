"""The REINFORCE controller of early NAS (Zoph & Le, 2017), as a tunelab searcher.

An LSTM policy emits one decision per parameter of the space (for a cell: each edge's input and
operation), each conditioned on the decisions before it. After each finished trial the policy
takes one policy-gradient step, ``-(reward - baseline) * log p(architecture) - beta * entropy``,
where the baseline is a moving average of past rewards (it lowers the variance of the gradient
without biasing it) and the entropy bonus keeps the policy from collapsing too early.

Being a searcher, every architecture it proposes is a trial of the study: recorded, comparable,
reproducible, and it runs under ``tl.tune`` with any executor or scheduler. Its state is a pure
function of the study: a fresh searcher replays the finished trials in order and reaches the
same policy, so a resumed study continues where it stopped.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from tunelab.distributions import Categorical, Fixed, Int
from tunelab.errors import SpaceError, check_count, check_number
from tunelab.history import History
from tunelab.trial import TrialState
from tunelab.searchers.base import Searcher
from tunelab.space import Space
from tunelab.tracking.seeds import derive_seed

MAX_OPTIONS = 1024


def decision_options(space: Space) -> dict[str, list]:
    """The options of each decision the controller makes (fixed parameters are not decisions)."""
    steps: dict[str, list] = {}
    for name, dist in space.params.items():
        if isinstance(dist, Categorical):
            steps[name] = list(dist.options)
        elif isinstance(dist, Int) and dist.high - dist.low < MAX_OPTIONS:
            steps[name] = list(range(dist.low, dist.high + 1))
        elif not isinstance(dist, Fixed):
            raise SpaceError(f"the controller picks among discrete options; parameter {name!r} is {dist!r} "
                             f"(use tl.choice, tl.ordinal or a randint with fewer than {MAX_OPTIONS} values)")
    if not steps:
        raise SpaceError("the space has no decision to make (every parameter is fixed)")
    return steps


class Policy(nn.Module):
    """The autoregressive policy: an LSTM cell, one softmax head and one embedding per decision."""

    def __init__(self, space: Space, hidden: int = 32):
        super().__init__()
        self.space = Space.coerce(space)
        self.options = decision_options(self.space)
        self.index = {name: i for i, name in enumerate(self.options)}
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, len(opts)) for opts in self.options.values())
        self.embeddings = nn.ModuleList(nn.Embedding(len(opts), hidden) for opts in self.options.values())

    def _walk(self, choose: Callable[[str, torch.Tensor], int]) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Make every active decision in order; ``choose(name, log_probs)`` picks an option index."""
        config: dict[str, Any] = {}
        inputs, state = self.start, None
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        for name, dist in self.space.params.items():
            if dist.when and not self.space.is_active(name, config):
                continue
            if isinstance(dist, Fixed):
                config[name] = dist.value
                continue
            step = self.index[name]
            state = self.lstm(inputs, state)
            log_probs = torch.log_softmax(self.heads[step](state[0])[0], dim=-1)
            choice = choose(name, log_probs)
            log_prob = log_prob + log_probs[choice]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            config[name] = self.options[name][choice]
            inputs = self.embeddings[step](torch.tensor([choice]))
        return config, log_prob, entropy

    def sample(self, generator: torch.Generator | None = None) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """(configuration, its log-probability, the summed entropy of the decisions taken)."""
        with torch.no_grad():
            return self._walk(lambda name, lp: int(torch.multinomial(lp.exp(), 1, generator=generator)))

    def log_prob(self, config: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability (differentiable) of ``config`` and the entropy along its decisions."""
        config = self.space.validate(config, where="controller")

        def forced(name: str, log_probs: torch.Tensor) -> int:
            dist = self.space[name]
            return dist.index(config[name]) if isinstance(dist, Categorical) else config[name] - dist.low

        _, log_prob, entropy = self._walk(forced)
        return log_prob, entropy


class ReinforceSearcher(Searcher):
    """Propose architectures from a policy trained by REINFORCE on the study's results."""

    name = "reinforce"
    multi_objective = False  # its reward is the first metric

    def __init__(self, space, seed: int | None = None, lr: float = 0.02, baseline_decay: float = 0.9,
                 entropy_weight: float = 0.01, hidden: int = 32):
        super().__init__(space, seed)
        check_number("reinforce: baseline_decay", baseline_decay, "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
        check_number("reinforce: lr", lr, "a positive number", lambda v: 0.0 < v < math.inf)
        check_number("reinforce: entropy_weight", entropy_weight, "a number >= 0", lambda v: 0.0 <= v < math.inf)
        check_count("reinforce: hidden", hidden, optional=False)
        self.lr, self.baseline_decay, self.entropy_weight, self.hidden = lr, baseline_decay, entropy_weight, hidden
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.seed, self.name, "init"))
            self.policy = Policy(self.space, hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.baseline: float | None = None
        self._learned: set[int] = set()

    def options(self) -> dict[str, Any]:
        return {"lr": self.lr, "baseline_decay": self.baseline_decay, "entropy_weight": self.entropy_weight,
                "hidden": self.hidden}

    def learn(self, config: dict[str, Any], reward: float) -> float:
        """One policy-gradient step for an architecture and its reward; returns the advantage."""
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        log_prob, entropy = self.policy.log_prob(config)
        loss = -advantage * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return advantage

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        # A failed trial (it crashed, ran out of memory) earns less than the worst result before it,
        # by their spread (a tenth of the worst's size when they are all alike): a policy that
        # never hears of failures keeps proposing the architectures that fail.
        # A trial its scheduler stopped (pruned) earns the value it reached there: under a stopping
        # scheduler most trials end so, and a policy that heard only of the survivors was rewarded
        # for the good architectures and never told which were poor.
        seen: list[float] = []
        for trial in history.trials:
            ended = trial.state in (TrialState.COMPLETED, TrialState.PRUNED)
            reward = -history.score(trial) if ended else None  # scores: lower is better
            reward = reward if reward is not None and math.isfinite(reward) else None
            if trial.id not in self._learned and (ended or trial.failed_itself):
                self._learned.add(trial.id)
                if trial.state is TrialState.FAILED and seen:
                    reward = min(seen) - max(max(seen) - min(seen), 0.1 * abs(min(seen)), 1e-3)
                if reward is not None:
                    self.learn(trial.config, reward)
            if ended and reward is not None:
                seen.append(reward)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.name, "sample", history.n_trials))
        return [self.policy.sample(generator)[0] for _ in range(n)]
