"""Regularised evolution does not propose an architecture already tried or pending."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.space import config_key  # noqa: E402

# 8 two-valued parameters: every configuration has exactly 8 one-step mutants
SPACE = tl.Space(nas.cell_space(1, ops=["skip_connect", "max_pool_3x3"]))


def _neighbours(config: dict) -> list[dict]:
    out = []
    for name, value in config.items():
        other = {"skip_connect": "max_pool_3x3", "max_pool_3x3": "skip_connect", 0: 1, 1: 0}[value]
        out.append({**config, name: other})
    return out


@pytest.mark.parametrize("pending", [False, True])
def test_a_mutant_already_taken_is_drawn_again(pending):
    parent = SPACE.sample(0)
    tried = _neighbours(parent)[:7]  # all mutants of the parent but one are taken
    population = 7 if pending else 8
    for seed in range(8):
        searcher = nas.RegularizedEvolution(SPACE, seed=seed, population=population, sample=population)
        study = tl.create_study(SPACE, metric="acc", mode="max", searcher=searcher, seed=seed)
        study.tell(config=parent, value=1.0)  # the best member: the parent of every proposal
        for config in tried[:6] if pending else tried:
            study.tell(config=config, value=0.5)
        if pending:
            study.enqueue(tried[6])  # waiting to be trained: taken as much as a finished one
            assert not study.history().trials[-1].state.finished
        taken = {config_key(c) for c in [parent, *tried]}
        proposals = searcher.suggest(study.history(), 3)
        keys = [config_key(c) for c in proposals]
        assert not taken & set(keys) and len(set(keys)) == 3, seed
