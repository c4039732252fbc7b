"""A search space: named distributions, some active only under conditions.

A space is written as a plain dict (``{"lr": tl.loguniform(1e-6, 1e-1), "epochs": 10}``) and
becomes a :class:`Space` at the boundary of every public entry point, where it is validated once.
It can sample, enumerate a grid, encode a configuration to the unit cube for models and decode it
back, check a configuration handed in by a user, and round-trip through JSON so that a stored
study keeps its space. Inactive conditional parameters are simply absent from a configuration.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Iterator, Mapping

import numpy as np

from tunelab.distributions import (
    Categorical,
    Distribution,
    Fixed,
    Float,
    Int,
    choice,
    fixed,
    from_json,
    loguniform,
    ordinal,
    randint,
    uniform,
    value_key,
)
from tunelab.errors import SpaceError, check_count
from tunelab.values import plain_tree

__all__ = [
    "Space", "Distribution", "Float", "Int", "Categorical", "Fixed",
    "uniform", "loguniform", "randint", "choice", "ordinal", "fixed",
]

SPACE_FORMAT = 1
_KINDS_HELP = "tl.uniform, tl.loguniform, tl.randint, tl.choice, tl.ordinal, tl.fixed or a plain constant"


def _as_distribution(name: str, spec: Any) -> Distribution:
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple, set, frozenset, np.ndarray)):
        raise SpaceError(
            f"parameter {name!r}: a plain {type(spec).__name__} is ambiguous; use "
            f"tl.choice({plain_tree(list(spec))!r}) to search over these values or tl.fixed(...) for a constant"
        )
    if spec is None or isinstance(spec, (str, int, float, bool, dict)) or isinstance(spec, np.generic):
        try:
            return Fixed(spec)
        except SpaceError as err:
            raise SpaceError(f"parameter {name!r}: {err}") from None
    raise SpaceError(f"parameter {name!r}: unknown kind {type(spec).__name__}; use {_KINDS_HELP}")


def _topological(params: dict[str, Distribution]) -> list[str]:
    """Order parameters so that every condition's parent comes before its children."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise SpaceError(f"conditions form a cycle: {cycle}")
        state[name] = "visiting"
        for parent in params[name].when:
            visit(parent, path + [name])
        state[name] = "done"
        order.append(name)

    for name in params:
        visit(name, [])
    return order


class Space:
    """An ordered, validated set of named distributions."""

    def __init__(self, params: Mapping[str, Any]):
        if isinstance(params, Space):
            params = params.params
        if not isinstance(params, Mapping):
            raise SpaceError(f"a search space is a dict of name -> distribution; got {type(params).__name__}")
        if not params:
            raise SpaceError("the search space is empty; give at least one parameter")
        built: dict[str, Distribution] = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings; got {name!r}")
            built[name] = _as_distribution(name, spec)
        self._check_conditions(built)
        self.params: dict[str, Distribution] = {name: built[name] for name in _topological(built)}
        #: Parameters that take a coordinate in the unit cube (every one but the constants).
        self.dimensions: list[str] = [n for n, d in self.params.items() if not isinstance(d, Fixed)]
        self._dim_index = {name: i for i, name in enumerate(self.dimensions)}

    @staticmethod
    def _check_conditions(params: dict[str, Distribution]) -> None:
        for name, dist in params.items():
            for parent, allowed in dist.when.items():
                if parent == name:
                    raise SpaceError(f"parameter {name!r} cannot be conditional on itself")
                if parent not in params:
                    raise SpaceError(
                        f"parameter {name!r} is conditional on {parent!r}, which is not in the space"
                        + _did_you_mean(parent, params)
                    )
                parent_dist = params[parent]
                if not parent_dist.discrete:
                    raise SpaceError(
                        f"parameter {name!r} is conditional on {parent!r}, a continuous parameter; "
                        "conditions need a choice, ordinal, randint or fixed parent"
                    )
                for value in allowed:
                    if not parent_dist.contains(value):
                        raise SpaceError(
                            f"parameter {name!r}: when={{{parent!r}: {value!r}}} can never hold; "
                            f"{parent!r} is {parent_dist!r}"
                        )

    @classmethod
    def coerce(cls, space: "Space | Mapping[str, Any]") -> "Space":
        return space if isinstance(space, Space) else cls(space)

    # -- mapping-like face ------------------------------------------------------------------
    def __getitem__(self, name: str) -> Distribution:
        return self.params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return "Space({" + ", ".join(f"{n!r}: {d!r}" for n, d in self.params.items()) + "})"

    @property
    def is_conditional(self) -> bool:
        return any(d.when for d in self.params.values())

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether ``name`` is used given the (already decided) values of its parents."""
        for parent, allowed in self.params[name].when.items():
            if parent not in config:
                return False
            if value_key(config[parent]) not in {value_key(v) for v in allowed}:
                return False
        return True

    # -- sampling and encoding ------------------------------------------------------------
    def sample(self, rng: np.random.Generator | int | None = None) -> dict[str, Any]:
        """One configuration drawn from the priors (log-uniform where the scale is log)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.decode(rng.random(len(self.dimensions)))

    def decode(self, unit: np.ndarray | list[float]) -> dict[str, Any]:
        """The configuration at a point of the unit cube; coordinates of inactive parameters are ignored."""
        unit = np.asarray(unit, dtype=float)
        if unit.shape != (len(self.dimensions),):
            raise SpaceError(f"decode needs a vector of length {len(self.dimensions)}; got shape {unit.shape}")
        config: dict[str, Any] = {}
        for name, dist in self.params.items():
            if dist.when and not self.is_active(name, config):
                continue
            if isinstance(dist, Fixed):
                config[name] = dist.value
            else:
                u = unit[self._dim_index[name]]
                config[name] = dist.from_unit(0.5 if np.isnan(u) else min(max(u, 0.0), 1.0))
        return config

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Coordinates in the unit cube; NaN marks a parameter that is inactive in ``config``."""
        out = np.full(len(self.dimensions), np.nan)
        for i, name in enumerate(self.dimensions):
            if name in config:
                out[i] = self.params[name].to_unit(config[name])
        return out

    # -- grid --------------------------------------------------------------------------------
    def grid(self, points: int | Mapping[str, int] = 5) -> Iterator[dict[str, Any]]:
        """Every combination: all options of categoricals, ``points`` values of numbers
        (log-spaced on log scales), inactive parameters left out rather than multiplied."""
        per_param = self._grid_points(points)
        names = list(self.params)

        def expand(i: int, config: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):  # constants afresh: each configuration owns its lists and dicts
                yield {key: self.params[key].value if isinstance(value, (list, dict)) else value
                       for key, value in config.items()}
                return
            name = names[i]
            if self.params[name].when and not self.is_active(name, config):
                yield from expand(i + 1, config)
                return
            for value in per_param[name]:
                config[name] = value
                yield from expand(i + 1, config)
            del config[name]

        return expand(0, {})

    def grid_size(self, points: int | Mapping[str, int] = 5) -> int:
        """How many configurations :meth:`grid` yields, counted without listing them: only the
        parameters that switch others on are branched over, the rest multiply (a grid of tens
        of millions is counted as fast as one of ten, and exactly)."""
        per_param = self._grid_points(points)
        parents = {parent for dist in self.params.values() for parent in dist.when}
        names = list(self.params)

        def count(i: int, config: dict[str, Any]) -> int:
            size = 1
            for j in range(i, len(names)):
                name = names[j]
                if self.params[name].when and not self.is_active(name, config):
                    continue
                if name in parents:
                    return size * sum(count(j + 1, {**config, name: value}) for value in per_param[name])
                size *= len(per_param[name])
            return size

        return count(0, {})

    def _grid_points(self, points: int | Mapping[str, int]) -> dict[str, list]:
        if isinstance(points, Mapping):
            unknown = set(points) - set(self.params)
            if unknown:
                raise SpaceError(f"grid points given for unknown parameters {sorted(unknown)}")
            counts = {name: points.get(name, 5) for name in self.params}
        else:
            counts = {name: points for name in self.params}
        for name, count in counts.items():
            check_count(f"grid points for {name!r}", count, optional=False, error=SpaceError)
        grid = {name: dist.grid(counts[name]) for name, dist in self.params.items()}
        # A number that switches others on (when={"layers": 5}) also takes the values that do,
        # else its evenly spread points may miss them and the grid never tries what they switch on.
        for dist in self.params.values():
            for parent, allowed in dist.when.items():
                if self.params[parent].kind in ("int", "float"):
                    named = allowed if isinstance(allowed, (list, tuple, set)) else [allowed]
                    # in the parent's own type: when={"layers": 5.0} adds 5, never the float 5.0
                    grid[parent] = sorted(set(grid[parent]) | {self.params[parent].normalize(v) for v in named
                                                               if self.params[parent].contains(v)})
        return grid

    # -- validation of configurations handed in by users -----------------------------------
    def validate(self, config: Mapping[str, Any], *, where: str = "config") -> dict[str, Any]:
        """Check a configuration against the space and return it in canonical form.

        Constants may be left out (they are filled in); everything else that is active must be
        present, in its domain, and nothing inactive or unknown may be there.
        """
        if not isinstance(config, Mapping):
            raise SpaceError(f"{where}: a configuration is a dict of parameter -> value; got {type(config).__name__}")
        unknown = [k for k in config if k not in self.params]
        if unknown:
            raise SpaceError(
                f"{where}: unknown parameter {unknown[0]!r}" + _did_you_mean(unknown[0], self.params)
                + f" (the space has: {', '.join(self.params)})"
            )
        out: dict[str, Any] = {}
        for name, dist in self.params.items():
            active = not dist.when or self.is_active(name, out)
            if not active:
                if name in config:
                    raise SpaceError(f"{where}: {name!r} is only used when {_describe_when(dist)}; leave it out here")
                continue
            if name not in config:
                if isinstance(dist, Fixed):
                    out[name] = dist.value
                    continue
                raise SpaceError(f"{where}: missing parameter {name!r} ({dist!r})")
            try:
                out[name] = dist.normalize(config[name])
            except SpaceError as err:
                raise SpaceError(f"{where}: parameter {name!r}: {err}") from None
        return out

    # -- JSON --------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": SPACE_FORMAT, "params": [{"name": n, **d.to_json()} for n, d in self.params.items()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Space":
        if not isinstance(data, Mapping) or not isinstance(data.get("params"), list):
            raise SpaceError(f"a stored space is a dict with a 'params' list; got {data!r}")
        params = {}
        for item in data["params"]:
            if not isinstance(item, Mapping) or "name" not in item:
                raise SpaceError(f"a stored parameter needs a 'name'; got {item!r}")
            params[item["name"]] = from_json({k: v for k, v in item.items() if k != "name"})
        return cls(params)


def config_key(config: Mapping[str, Any]) -> str:
    """A canonical text for a configuration, to tell whether two are the same."""
    return json.dumps(config, sort_keys=True, default=str)


def _did_you_mean(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe_when(dist: Distribution) -> str:
    parts = []
    for parent, allowed in dist.when.items():
        parts.append(f"{parent} == {allowed[0]!r}" if len(allowed) == 1 else f"{parent} in {list(allowed)!r}")
    return " and ".join(parts)
