"""BOHB (Falkner et al. 2018): Hyperband whose new configurations come from a model.

The brackets are Hyperband's; what changes is *what* enters them. By default the study's searcher
becomes ``kde``, a multi-fidelity TPE that fits its densities on the highest budget with enough
observations, so good regions found cheaply guide the next bracket. Any model-based searcher
that reads intermediate reports can be plugged in instead (``searcher="..."``).
"""

from __future__ import annotations

from tunelab.schedulers.hyperband import HyperbandScheduler


class BOHBScheduler(HyperbandScheduler):
    name = "bohb"
    searcher = "kde"
