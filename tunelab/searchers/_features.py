"""Vectorised views of the unit-cube encoding, for searchers that score thousands of candidates.

``Space.encode``/``decode`` work one configuration at a time, in Python; a model-based searcher
scores thousands of candidate points per proposal, so it needs the same mapping on whole
arrays: which coordinates are active, where a discrete value's coordinate snaps to, and the
numeric features a model sees (one-hot columns for unordered choices, so that a kernel or a
tree never mistakes option 3 for being "between" options 2 and 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.distributions import Categorical, Fixed, Int, value_key
from tunelab.space import Space


class FeatureMap:
    """Array versions of the space's encoding; rows are points, columns the space's dimensions."""

    def __init__(self, space: Space):
        self.space = space
        self.names = list(space.dimensions)
        self.d = len(self.names)
        self.index = {name: j for j, name in enumerate(self.names)}
        dists = [space[name] for name in self.names]
        #: Unordered choices: a model must treat their options as unrelated.
        self.categorical = np.array([isinstance(p, Categorical) and not p.ordered for p in dists], dtype=bool)
        #: Number of distinct values of each discrete dimension (0 for floats).
        self.levels = np.array([len(p.options) if isinstance(p, Categorical) else
                                (p.high - p.low + 1 if isinstance(p, Int) else 0) for p in dists])
        self.conditional = any(space[name].when for name in space)
        self._columns: list[np.ndarray] = []
        start = 0
        for j in range(self.d):
            width = int(self.levels[j]) if self.categorical[j] else 1
            self._columns.append(np.arange(start, start + width))
            start += width
        #: Width of the model features (one column per numeric dimension, k per k-way choice).
        self.width = start
        self.numeric_columns = np.concatenate(
            [self._columns[j] for j in range(self.d) if not self.categorical[j]] or [np.zeros(0, int)])

    # -- canonical points --------------------------------------------------------------------
    def canonical(self, unit: np.ndarray) -> np.ndarray:
        """Clip to the cube, snap discrete coordinates to their value's centre and mark inactive
        coordinates NaN: the vector ``space.encode(space.decode(u))`` gives, for many rows at once."""
        u = np.clip(np.nan_to_num(np.atleast_2d(np.asarray(unit, dtype=float)), nan=0.5), 0.0, 1.0)
        for j, name in enumerate(self.names):
            dist = self.space[name]
            if isinstance(dist, Categorical):
                k = len(dist.options)
                u[:, j] = (np.minimum(np.floor(u[:, j] * k), k - 1) + 0.5) / k
            elif isinstance(dist, Int):
                u[:, j] = self._int_to_unit(dist, self._int_values(dist, u[:, j]))
        return self.mark_inactive(u)

    def bins(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the stretch of the cube that each point's value owns along ordered
        discrete coordinates (ordinal choices, integers); NaN elsewhere. A density over such a
        coordinate is a mass per value, which is what a model should compare between values."""
        unit = np.atleast_2d(np.asarray(unit, dtype=float))
        low, high = np.full(unit.shape, np.nan), np.full(unit.shape, np.nan)
        for j, name in enumerate(self.names):
            dist, column = self.space[name], unit[:, j]
            if isinstance(dist, Categorical) and dist.ordered:
                k = len(dist.options)
                index = np.minimum(np.floor(np.clip(column, 0, 1) * k), k - 1)
                low[:, j], high[:, j] = index / k, (index + 1) / k
            elif isinstance(dist, Int):
                values = self._int_values(dist, np.clip(column, 0, 1))
                low[:, j], high[:, j] = self._int_to_unit(dist, values - 0.5), self._int_to_unit(dist, values + 0.5)
            else:
                continue
            off = np.isnan(column)
            low[off, j] = high[off, j] = np.nan
        return low, high

    def mark_inactive(self, unit: np.ndarray) -> np.ndarray:
        """The points with NaN on the coordinates they do not use, other values untouched."""
        if not self.conditional:
            return unit
        out = np.array(unit, dtype=float)
        out[~self.active(out)] = np.nan
        return out

    @staticmethod
    def _int_values(dist: Int, u: np.ndarray) -> np.ndarray:
        x = dist._a + u * (dist._b - dist._a)
        x = np.exp(x) if dist.log else x
        return np.clip(np.round(x), dist.low, dist.high)

    @staticmethod
    def _int_to_unit(dist: Int, values: np.ndarray) -> np.ndarray:
        x = np.log(values) if dist.log else values
        return (x - dist._a) / (dist._b - dist._a)

    def active(self, unit: np.ndarray) -> np.ndarray:
        """Which coordinates are in use, given the values the point's parents take."""
        n = unit.shape[0]
        on: dict[str, np.ndarray] = {}
        for name, dist in self.space.params.items():
            mask = np.ones(n, dtype=bool)
            for parent, allowed in dist.when.items():
                mask &= on[parent] & self._parent_in(parent, allowed, unit)
            on[name] = mask
        if self.d == 0:
            return np.ones((n, 0), dtype=bool)
        return np.stack([on[name] for name in self.names], axis=1)

    def _parent_in(self, parent: str, allowed: tuple, unit: np.ndarray) -> np.ndarray | bool:
        dist = self.space[parent]
        keys = {value_key(v) for v in allowed}
        if isinstance(dist, Fixed):
            return value_key(dist.value) in keys
        column = np.nan_to_num(unit[:, self.index[parent]], nan=0.5)
        if isinstance(dist, Categorical):
            k = len(dist.options)
            indices = [i for i, option in enumerate(dist.options) if value_key(option) in keys]
            return np.isin(np.minimum(np.floor(column * k), k - 1), indices)
        values = [float(v) for v in allowed if not isinstance(v, bool)]
        return np.isin(self._int_values(dist, column), values)

    # -- one configuration <-> one point -----------------------------------------------------
    def encode(self, config: dict[str, Any]) -> np.ndarray:
        return self.space.encode(config)

    def decode(self, point: np.ndarray) -> dict[str, Any]:
        return self.space.decode(np.nan_to_num(point, nan=0.5))

    # -- model features ----------------------------------------------------------------------
    def features(self, points: np.ndarray) -> np.ndarray:
        """Model inputs: numeric coordinates as they are (0.5 where inactive), unordered choices
        one-hot (all zeros where inactive)."""
        points = np.atleast_2d(points)
        out = np.zeros((points.shape[0], self.width))
        for j in range(self.d):
            cols, column = self._columns[j], points[:, j]
            if self.categorical[j]:
                k = len(cols)
                active = ~np.isnan(column)
                index = np.minimum(np.floor(np.nan_to_num(column) * k), k - 1).astype(int)
                out[np.flatnonzero(active), cols[index[active]]] = 1.0
            else:
                out[:, cols[0]] = np.nan_to_num(column, nan=0.5)
        return out

    def from_features(self, features: np.ndarray) -> np.ndarray:
        """Back to unit coordinates (the argmax option of each one-hot block)."""
        features = np.atleast_2d(features)
        out = np.empty((features.shape[0], self.d))
        for j in range(self.d):
            cols = self._columns[j]
            if self.categorical[j]:
                out[:, j] = (np.argmax(features[:, cols], axis=1) + 0.5) / len(cols)
            else:
                out[:, j] = features[:, cols[0]]
        return self.canonical(out)

    def free_columns(self, points: np.ndarray) -> np.ndarray:
        """Feature columns a continuous optimiser may move: numeric coordinates in use."""
        points = np.atleast_2d(points)
        out = np.zeros((points.shape[0], self.width), dtype=bool)
        for j in range(self.d):
            if not self.categorical[j]:
                out[:, self._columns[j][0]] = ~np.isnan(points[:, j])
        return out

    # -- moves in the cube -------------------------------------------------------------------
    def perturb(self, points: np.ndarray, scale: float | np.ndarray, rng: np.random.Generator,
                flip: float | None = None) -> np.ndarray:
        """Neighbours: Gaussian steps on numeric coordinates, and each unordered choice redrawn
        with probability ``flip`` (default 1/d); an inactive coordinate
        takes a random value, so that a child switched on by its parent lands anywhere."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        points = np.where(np.isnan(points), rng.random(points.shape), points)  # inactive: anywhere
        flip = 1.0 / max(self.d, 1) if flip is None else flip
        steps = rng.normal(0.0, 1.0, points.shape) * scale
        moved = points + np.where(self.categorical, 0.0, steps)
        moved = np.where(moved < 0, -moved, np.where(moved > 1, 2 - moved, moved))  # reflect at the walls
        jump = (rng.random(points.shape) < flip) & self.categorical
        moved[jump] = rng.random(int(jump.sum()))
        return self.canonical(moved)
