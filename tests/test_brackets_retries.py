"""Synchronous brackets (sh, hyperband, bohb) and retries: a retry takes its original's place,
and a trial queued before it keeps its own."""

from __future__ import annotations

import tunelab as tl

from mf_objectives import EPOCHS, SPACE


def test_a_trial_queued_before_a_retry_starts_at_its_own_brackets_rung():
    """Hyperband on 1..9 epochs: places 0-8 make the bracket that starts at 1 epoch, place 9
    begins the one at 3. Trial 0 dies and is retried (place 0) while trial 9 waits: storage
    hands out trial 9 first, and it was given the retry's budget, 1 epoch, below its bracket."""
    study = tl.create_study(SPACE, metric="loss", mode="min", scheduler="hyperband", fidelity=EPOCHS, seed=0,
                            searcher="random", n_trials=30)
    for k in range(10):
        study.enqueue({"x": 0.05 + k / 20})
    first = study.ask()
    study.tell(first, state="failed", error="the process running it is gone")
    study.enqueue(study.trials[0].config, retry_of=study.trials[0])
    running = [study.ask() for _ in range(10)]
    budgets = {t.number: t.budget for t in running}
    assert budgets[9] == 3 and budgets[10] == 1 and all(budgets[n] == 1 for n in range(1, 9))
