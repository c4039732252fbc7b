"""Searchers decide *what to try next*; one file per algorithm, found by name here."""

from __future__ import annotations

from typing import Any, Mapping

from tunelab._registry import Registry
from tunelab.errors import ConfigError
from tunelab.searchers.base import Searcher
from tunelab.space import Space

__all__ = ["Searcher", "SEARCHERS", "make_searcher"]

SEARCHERS = Registry("searcher", {
    "random": "tunelab.searchers.random:RandomSearcher",
    "sobol": "tunelab.searchers.sobol:SobolSearcher",
    "grid": "tunelab.searchers.grid:GridSearcher",
    "tpe": "tunelab.searchers.tpe:TPESearcher",
    "bo": "tunelab.searchers.bo:BOSearcher",
    "gp": "tunelab.searchers.bo:BOSearcher",
    "rf": "tunelab.searchers.rf:RandomForestSearcher",
    "smac": "tunelab.searchers.rf:RandomForestSearcher",
    "anneal": "tunelab.searchers.anneal:AnnealSearcher",
    "genetic": "tunelab.searchers.genetic:GeneticSearcher",
    "evolution": "tunelab.searchers.evolution:EvolutionSearcher",
    "auto": "tunelab.searchers.auto:AutoSearcher",
    "kde": "tunelab.searchers.kde:KDESearcher",
    # Architecture searchers; loading them needs the [nas] extra (PyTorch).
    "reinforce": "tunelab.nas.controller:ReinforceSearcher",
    "regularized_evolution": "tunelab.nas.evolution:RegularizedEvolution",
}, peer_names={  # Optuna's names for the same options
    "n_startup_trials": ("n_startup", "min_points"), "n_ei_candidates": ("n_candidates", "candidates"),
    "population_size": ("population",),
})


def make_searcher(spec: "str | Searcher", space: Space, seed: int | None,
                  options: Mapping[str, Any] | None = None) -> Searcher:
    """A searcher from a registry name (with options) or an instance built by the user."""
    if isinstance(spec, Searcher):
        own, study = spec.space.params, space.params
        differences = [f"{what}: {', '.join(names)}" for what, names in (
            ("not in the study's space", sorted(set(own) - set(study))),
            ("missing", sorted(set(study) - set(own))),
            ("other ranges or options", sorted(n for n in set(own) & set(study) if own[n] != study[n]))) if names]
        if differences:
            raise ConfigError(f"searcher {spec.name!r} was built on another space than the study's "
                              f"({'; '.join(differences)}): build it on the study's space")
        return spec
    return SEARCHERS.create(spec, space, seed, options=options)
