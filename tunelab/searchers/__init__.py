"""Searchers decide *what to try next*; one file per algorithm, found by name here."""

from __future__ import annotations

from typing import Any, Mapping

from tunelab._registry import Registry
from tunelab.searchers.base import Searcher
from tunelab.space import Space

__all__ = ["Searcher", "SEARCHERS", "make_searcher"]

SEARCHERS = Registry("searcher", {
    "random": "tunelab.searchers.random:RandomSearcher",
    "sobol": "tunelab.searchers.sobol:SobolSearcher",
    "grid": "tunelab.searchers.grid:GridSearcher",
    "kde": "tunelab.searchers.kde:KDESearcher",
})


def make_searcher(spec: "str | Searcher", space: Space, seed: int | None,
                  options: Mapping[str, Any] | None = None) -> Searcher:
    """A searcher from a registry name (with options) or an instance built by the user."""
    if isinstance(spec, Searcher):
        return spec
    return SEARCHERS.create(spec, space, seed, options=options)
