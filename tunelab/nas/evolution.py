"""Regularised (aging) evolution (Real et al., 2019) over any discrete or mixed space.

The population is the ``population`` most recently finished trials (failed ones too, as its
worst members); each proposal is a mutant of the best of ``sample`` members drawn at random
from it. Because the oldest members leave the population whatever their score, a lucky early
architecture cannot dominate for ever, which favours architectures that stay good when
retrained. A mutation changes exactly one active parameter (for a cell: one edge's input or
operation) and re-decodes the configuration, so conditional parameters appear or vanish as
their parents change.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from tunelab.errors import ConfigError, SpaceError
from tunelab.history import History
from tunelab.searchers.base import Searcher
from tunelab.space import config_key
from tunelab.trial import Trial, TrialState

MAX_TRIES = 100
#: How many times a proposal is drawn again when its configuration was tried already (or is
#: pending): a few mutants of the same parent, then a few random configurations.
FRESH_TRIES = 10


class RegularizedEvolution(Searcher):
    name = "regularized_evolution"
    multi_objective = False  # its tournaments rank on the first metric

    def __init__(self, space, seed: int | None = None, population: int = 20, sample: int = 5):
        super().__init__(space, seed)
        if not (isinstance(population, int) and isinstance(sample, int) and 1 <= sample <= population):
            raise ConfigError(f"need integers 1 <= sample <= population; got sample={sample!r}, "
                             f"population={population!r}")
        if not self.space.dimensions:
            raise SpaceError("regularised evolution needs at least one parameter that is not fixed")
        self.population, self.sample = population, sample

    def options(self) -> dict[str, Any]:
        return {"population": self.population, "sample": self.sample}

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        rng = self._rng(history.n_trials)
        # Every trial's configuration, pending ones too: about one proposal in fifty repeated an
        # architecture already tried or being trained (a mutant that undoes its parent's last
        # mutation, or the same mutant of a popular parent), a trial spent learning nothing.
        taken = {config_key(t.config) for t in history.trials}
        # A failed architecture (it crashed, ran out of memory) is a member like any other, the
        # worst one: it ages the population and is never a parent while a working one is drawn.
        # Left out, failures did not count towards the population, so where a third of the space
        # failed the random start ran about twice as long and twice as many trials failed (cell
        # space of 2 nodes, population 10, 80 trials, 20 seeds: 31 failed against 16, best equal).
        finished = [t for t in history.trials if t.state is TrialState.COMPLETED or t.failed_itself]
        if len(finished) < self.population:
            return [self._fresh(functools.partial(self.space.sample, rng), taken, rng) for _ in range(n)]
        members = finished[-self.population:]  # ordered by trial number: the oldest age out

        def fitness(trial: Trial) -> float:  # lower is better
            return history.score(trial) if trial.state is TrialState.COMPLETED else math.inf

        out = []
        for _ in range(n):
            drawn = rng.choice(len(members), size=self.sample, replace=False)
            parent = min((members[i] for i in drawn), key=fitness)
            # every member drawn failed: a mutant of a failure likely fails too, so start afresh
            if math.isfinite(fitness(parent)):
                out.append(self._fresh(functools.partial(self.mutate, parent.config, rng), taken, rng))
            else:
                out.append(self._fresh(functools.partial(self.space.sample, rng), taken, rng))
        return out

    def _fresh(self, propose: Callable[[], dict[str, Any]], taken: set[str],
               rng: np.random.Generator) -> dict[str, Any]:
        """A proposal whose configuration is not in ``taken`` (which it joins): ``propose`` drawn
        again a few times, then random configurations. The first draw is kept when it is new,
        so a search without repeats proposes what it did before. Where every draw is taken (a
        small space, used up), the last one is returned: repeating is all that is left."""
        config: dict[str, Any] = {}
        for attempt in range(2 * FRESH_TRIES):
            config = propose() if attempt < FRESH_TRIES else self.space.sample(rng)
            if config_key(config) not in taken:
                break
        taken.add(config_key(config))
        return config

    def mutate(self, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``config`` with one active parameter changed to another value of its domain."""
        unit = self.space.encode(config)
        active = [i for i, name in enumerate(self.space.dimensions) if name in config]
        for _ in range(MAX_TRIES):
            child = unit.copy()
            child[rng.choice(active)] = rng.random()
            mutant = self.space.decode(child)
            if config_key(mutant) != config_key(config):
                return mutant
        return self.space.sample(rng)  # every draw landed on the same value: a one-valued domain
