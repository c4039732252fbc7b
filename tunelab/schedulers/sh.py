"""Synchronous successive halving, exactly as taught: ``n`` configurations for ``m`` epochs each,
keep the best ``1/eta``, give them ``eta`` times the budget, repeat up to the full budget.

``n`` and ``m`` trade exploration for exploitation. ``m`` is the fidelity's minimum unless
given; ``n`` is given, or derived from a total ``budget`` (in fidelity units, e.g. epochs: the
largest ``n`` whose bracket costs no more), or else ``eta**(rungs-1)`` so that exactly one
configuration reaches the full budget. What a bracket costs depends on the fidelity: a resumable
one pays only the extra epochs at each promotion, a fresh-run one pays each level in full.
When the bracket is done, the next one starts with new configurations.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.errors import ConfigError, check_count, check_number
from tunelab.schedulers.brackets import Bracket, BracketScheduler, make_bracket


class SuccessiveHalvingScheduler(BracketScheduler):
    name = "sh"

    def __init__(self, metric: str, mode: str, n: int | None = None, min_budget: float | None = None,
                 max_budget: float | None = None, eta: float = 3, budget: float | None = None, forecast: bool = False):
        check_count("sh: n", n)
        # Finite: an infinite budget has no largest bracket that fits, and NaN fits none.
        check_number("sh: budget", budget, "a positive finite number (in fidelity units)",
                     lambda v: 0 < v < math.inf, optional=True)
        if n is not None and budget is not None:
            raise ConfigError(f"sh: give n (configurations in the bracket) or budget (which derives n), not both; "
                              f"got n={n!r}, budget={budget!r}")
        self.n, self.budget = n, budget
        super().__init__(metric, mode, min_budget, max_budget, eta, forecast)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n": self.n, "budget": self.budget}

    def cost(self, bracket: Bracket) -> float:
        """Fidelity units one bracket spends (extra units only, when runs resume)."""
        resumable = self.fidelity.resumable if self.fidelity is not None else True
        total, below = 0.0, 0.0
        for size, level in zip(bracket.sizes, bracket.levels):
            total += size * (level - below if resumable else level)
            below = level
        return total

    def plan_brackets(self) -> list[Bracket]:
        if self.n is not None:
            return [make_bracket(self.n, self.levels, self.eta)]
        if self.budget is None:
            return [make_bracket(max(int(round(self.eta ** (len(self.levels) - 1))), 1), self.levels, self.eta)]
        least = self.cost(make_bracket(1, self.levels, self.eta))
        if least > self.budget:
            afresh = self.fidelity is not None and not self.fidelity.resumable
            how = f" ({' + '.join(f'{level:g}' for level in self.levels)}: each rung run afresh)" if afresh else ""
            raise ConfigError(f"sh: budget={self.budget:g} cannot pay for even one configuration taken through the "
                              f"rungs to {self.max_budget:g}, which costs {least:g}{how}; raise the budget, lower "
                              "max_budget or raise min_budget")
        # A bracket's cost grows with n: double past the budget, then halve the gap, so that a
        # budget of millions of epochs takes a few dozen costings rather than one per configuration.
        fits, too_many = 1, 2
        while self.cost(make_bracket(too_many, self.levels, self.eta)) <= self.budget:
            fits, too_many = too_many, 2 * too_many
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            if self.cost(make_bracket(middle, self.levels, self.eta)) <= self.budget:
                fits = middle
            else:
                too_many = middle
        return [make_bracket(fits, self.levels, self.eta)]
