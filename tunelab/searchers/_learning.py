"""What every searcher that learns from results shares: reading the history as arrays, a
quasi-random start, pending trials, failures, several metrics, warm starts, no duplicates.

A subclass only says how to propose one point of the unit cube from the observations
(:meth:`LearningSearcher.propose`); this base turns it into configurations. Proposals within
one ``suggest`` call see the earlier ones as pending, so parallel workers never get the same
point, and everything is rebuilt from the history, so a fresh searcher on a resumed study
carries on where the old one stopped (encodings are cached per trial only to save time).
"""

from __future__ import annotations

from abc import abstractmethod

import math
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from scipy.stats import qmc

from tunelab import _json
from tunelab.errors import ConfigError, SpaceError, check_warm_metric, is_real_number
from tunelab.history import History
from tunelab.searchers._features import FeatureMap
from tunelab.searchers.base import Searcher
from tunelab.space import config_key
from tunelab.trial import TrialState

_threadpools = None


def _one_blas_thread():
    """Small matrices run fastest on one BLAS thread; on a busy machine, many threads fighting
    over a 50x50 solve make a proposal tens of times slower. threadpoolctl (a scikit-learn
    dependency) is used when present."""
    global _threadpools
    if _threadpools is None:
        try:
            from threadpoolctl import ThreadpoolController
            _threadpools = ThreadpoolController()
        except ImportError:  # pragma: no cover - depends on the environment
            _threadpools = False
    return _threadpools.limit(limits=1, user_api="blas") if _threadpools else nullcontext()


#: A warm start: configurations already evaluated elsewhere, with their value (or metrics).
WarmStart = Sequence[tuple[Mapping[str, Any], "float | Mapping[str, float]"]]


@dataclass
class Observations:
    """The study as arrays. ``scores`` are lower-is-better per metric, +inf for a failed trial."""

    points: np.ndarray    # (n, d) unit coordinates, NaN where inactive
    scores: np.ndarray    # (n, m)
    pending: np.ndarray   # (p, d) points being evaluated (or proposed in this batch)
    numbers: np.ndarray   # (n,) order of evaluation (warm-start points first, negative)

    @property
    def n_good(self) -> int:
        """How many observations carry a usable value."""
        return int(np.isfinite(self.scores).all(axis=1).sum())

    def targets(self, rng: np.random.Generator) -> np.ndarray:
        """One lower-is-better value per observation. With several metrics, a random augmented
        Chebyshev scalarisation of the normalised metrics (ParEGO): each proposal then aims at
        a different part of the Pareto front."""
        if self.scores.shape[1] == 1:
            return _tamed(self.scores[:, 0])
        finite = np.isfinite(self.scores).all(axis=1)
        out = np.full(len(self.scores), np.inf)
        if not finite.any():
            return out
        good = _tamed(self.scores[finite])
        low, span = good.min(axis=0), np.ptp(good, axis=0)
        normalised = (good - low) / np.where(span > 0, span, 1.0)
        weights = rng.dirichlet(np.ones(self.scores.shape[1]))
        out[finite] = (normalised * weights).max(axis=1) + 0.05 * (normalised * weights).sum(axis=1)
        return out

    def filled_targets(self, rng: np.random.Generator) -> np.ndarray | None:
        """:meth:`targets` with failed observations set to the worst value seen: a surrogate
        model needs a number at every point, and a crash says "bad here". None when nothing
        has succeeded yet (there is nothing to fit)."""
        y = self.targets(rng)
        finite = np.isfinite(y)
        if not finite.any():
            return None
        return np.where(finite, y, y[finite].max())

    def with_pending(self, point: np.ndarray) -> None:
        self.pending = np.vstack([self.pending, point[None, :]])


def _tamed(scores: np.ndarray) -> np.ndarray:
    """The scores (per column), divided by their largest finite magnitude where that passes
    1e100. The models read only the order and the ratios of the values, which this keeps, and
    differences and squares of numbers near the float limit overflow: a value of -1e308 beside
    one of 1e308 ended the run with a ValueError from the GP or the forest."""
    magnitude = np.where(np.isfinite(scores), np.abs(scores), 0.0).max(axis=0, initial=0.0)
    return scores / np.where(magnitude > 1e100, magnitude, 1.0)


class LearningSearcher(Searcher):
    """Base of the searchers that learn from results; subclasses implement :meth:`propose`."""

    #: Quasi-random proposals before the model is trusted (None: the subclass decides from d).
    default_startup: ClassVar[int | None] = 10

    def __init__(self, space, seed=None, n_startup: int | None = None, warm_start: WarmStart | None = None):
        super().__init__(space, seed)
        self.features = FeatureMap(self.space)
        if n_startup is not None:
            self.check_integers(0, n_startup=n_startup)
        self.n_startup = self.startup_size() if n_startup is None else n_startup
        self.warm_start = self._check_warm_start(warm_start)
        # Evaluated elsewhere, their values known: proposing one again spends a trial on nothing new
        self._warm_keys = {config_key(config) for config, _ in self.warm_start}
        # A trial's configuration never changes: its encoding and its key are computed once, so
        # that an ask late in a long study does not re-encode every trial before it. Each entry
        # keeps what it was computed from: trial ids are only unique within one storage, and a
        # searcher object handed to a second study must not read the first one's trials there.
        self._known: dict[int, tuple[dict[str, Any], np.ndarray, str]] = {}
        self._scored: dict[int, tuple[float | None, list[float]]] = {}

    def check_integers(self, least: int = 1, **options: object) -> None:
        """Raise a clear ConfigError unless every option is an integer >= ``least``."""
        for option, value in options.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{self.name}: {option} must be an integer >= {least}; got {value!r}")

    def startup_size(self) -> int:
        return self.default_startup if self.default_startup is not None else max(5, self.features.d + 1)

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_startup": self.n_startup}
        if self.warm_start:
            out["warm_start"] = [[config, value] for config, value in self.warm_start]
        return out

    # -- the one thing a subclass says ---------------------------------------------------------
    @abstractmethod
    def propose(self, data: Observations, rng: np.random.Generator) -> np.ndarray:
        """One point of the unit cube (NaN or anything for inactive coordinates) to try next."""
        ...

    # -- everything else -----------------------------------------------------------------------
    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        data = self.observe(history)
        taken = {self._seen(trial)[1] for trial in history.trials} | self._warm_keys
        rng = self._rng("suggest", history.n_trials)
        out: list[dict[str, Any]] = []
        for i in range(n):
            # Nothing to model before one result (n_startup=0, or every start failed), nor in a
            # space of constants.
            if data.n_good < max(self.n_startup, 1) or not self.features.d:
                point = self._startup_point(history.n_trials + i)
            else:
                with _one_blas_thread():
                    point = self.propose(data, rng)
            config = self._unique(self.features.decode(point), taken, rng)
            taken.add(config_key(config))
            data.with_pending(self.space.encode(config))
            out.append(config)
        return out

    def observe(self, history: History) -> Observations:
        """The history as arrays: completed and failed trials (failures score +inf, so models
        learn to keep away from them; pruned trials count as failures of their configuration)."""
        metrics = history.metrics
        if not self._known.keys() <= {trial.id for trial in history.trials}:
            self.forget()  # trials never leave a study: this history is another study's
        points, scores, numbers, pending = [], [], [], []
        for i, (config, value) in enumerate(self.warm_start):
            points.append(self.space.encode(config))
            scores.append(_warm_scores(value, metrics, history.modes, f"{self.name}: warm_start[{i}]"))
            numbers.append(-1 - len(numbers))
        for trial in history.trials:
            if trial.state is TrialState.FAILED and not trial.failed_itself:
                continue  # cancelled: its configuration was never judged
            point = self._seen(trial)[0]
            if not trial.state.finished:
                pending.append(point)
                continue
            scored = self._scored.get(trial.id)
            if scored is not None and not _same_value(scored[0], trial.value):
                self.forget()  # a finished trial's value is final: this one is another study's
                scored = None
            if scored is None:  # computed once
                row = [history.score(trial, m) for m in metrics] \
                    if trial.state is TrialState.COMPLETED else [math.inf] * len(metrics)
                scored = self._scored[trial.id] = (trial.value, row)
            scores.append(scored[1])
            points.append(point)
            numbers.append(trial.number)
        d = self.features.d
        return Observations(
            points=np.array(points, dtype=float).reshape(len(points), d),
            scores=np.array(scores, dtype=float).reshape(len(scores), len(metrics)),
            pending=np.array(pending, dtype=float).reshape(len(pending), d),
            numbers=np.array(numbers, dtype=float),
        )

    def _seen(self, trial) -> tuple[np.ndarray, str]:
        known = self._known.get(trial.id)
        if known is None or known[0] != trial.config:
            if known is not None:
                self.forget()  # the same id for another configuration: another study's trial
            known = self._known[trial.id] = (dict(trial.config), self.space.encode(trial.config),
                                             config_key(trial.config))
        return known[1], known[2]

    def forget(self) -> None:
        """Drop what was learnt from another study's trials (the searcher was handed a new one)."""
        self._known.clear()
        self._scored.clear()

    def _startup_point(self, index: int) -> np.ndarray:
        """Point ``index`` of a scrambled Sobol sequence: an even cover of the cube to start from."""
        d = self.features.d
        if d == 0:
            return np.zeros(0)
        engine = qmc.Sobol(d=d, scramble=True, seed=np.random.default_rng(self._rng("sobol").integers(2**32)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if index:
                engine.fast_forward(index)
            return engine.random(1)[0]

    def _unique(self, config: dict[str, Any], taken: set[str], rng: np.random.Generator) -> dict[str, Any]:
        """The configuration, or a nearby (then a random) one when it was tried already."""
        if config_key(config) not in taken:
            return config
        point = self.space.encode(config)
        for attempt in range(20):
            moved = self.features.perturb(point, 0.05 * (attempt + 1), rng, flip=0.2 + 0.04 * attempt)[0]
            candidate = self.features.decode(moved)
            if config_key(candidate) not in taken:
                return candidate
        for _ in range(20):
            candidate = self.space.sample(rng)
            if config_key(candidate) not in taken:
                return candidate
        return config  # a small discrete space that is used up: repeating is all that is left

    def _check_warm_start(self, warm_start: WarmStart | None) -> list[tuple[dict[str, Any], Any]]:
        if warm_start is None:
            return []
        if isinstance(warm_start, (str, bytes, Mapping)) or not isinstance(warm_start, Sequence):
            raise ConfigError(f"{self.name}: warm_start is a list of (config, value) pairs (or a study "
                              f"name given to create_study); got {type(warm_start).__name__}")
        out = []
        for i, pair in enumerate(warm_start):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ConfigError(f"{self.name}: warm_start[{i}] must be a (config, value) pair; got {pair!r}")
            # a failed configuration's NaN (or an infinite metric) is stored with the study as the
            # text "NaN" ("Infinity"): read back so, a reopened study was refused its own warm start
            config, value = pair[0], _json.restore(pair[1])
            try:
                config = self.space.validate(config, where=f"warm_start[{i}]")
            except SpaceError as err:
                raise ConfigError(str(err)) from None
            if not (isinstance(value, Mapping) or is_real_number(value)):
                raise ConfigError(f"{self.name}: warm_start[{i}] value must be a number or a dict of metrics; "
                                  f"got {value!r}")
            # numpy's numbers (a value read from an array or a data frame) as plain floats: they
            # are recorded with the study as JSON, and read as the numbers they are
            out.append((config, {k: float(v) if is_real_number(v) else v for k, v in value.items()}
                        if isinstance(value, Mapping) else float(value)))
        return out


def _same_value(a: float | None, b: float | None) -> bool:
    return a == b or (a != a and b != b)  # (NaN is a value too)


def _warm_scores(value: Any, metrics: list[str], modes: list[str], where: str) -> list[float]:
    values = value if isinstance(value, Mapping) else {metrics[0]: value}
    if not set(metrics) & set(values):
        raise ConfigError(f"{where}: the value {dict(values)!r} has none of the study's metrics {metrics}; "
                          "give a number, or a dict with them")
    out = []
    for metric, mode in zip(metrics, modes):
        v = values.get(metric)
        check_warm_metric(v, metric, where)
        ok = v is not None and math.isfinite(v)
        out.append((-v if mode == "max" else v) if ok else math.inf)
    return out
