"""``auto``: pick the searcher that suits the space, the budget and the parallelism.

The rules follow what ``tunelab bench`` measures and what each model is good at:

- many workers for the budget (fewer than 10 trials per worker): quasi-random (Sobol), since a
  model learns little between rounds and an even cover is what parallelism buys;
- a space that is mostly unordered choices, or more than 20 dimensions: TPE, whose densities
  treat each coordinate on its own terms and cost little;
- very long studies (over 2000 trials): TPE, whose cost per proposal stays in milliseconds;
- otherwise (numbers, some choices, conditional or not, a modest budget): Bayesian
  optimisation with a GP, the most sample-efficient model here; on ``tunelab bench`` it beat
  TPE on the conditional mixed problem too.

The pick and the reason are recorded in the study's settings (``describe()``), and a reopened
study keeps the recorded pick.
"""

from __future__ import annotations

from typing import Any, Mapping

from tunelab.errors import ConfigError, check_count, warn_caller
from tunelab.history import History
from tunelab.searchers.base import Searcher


def choose(space, n_trials: int | None, workers: int) -> tuple[str, str]:
    """The searcher's name for this setting, and why."""
    dims = len(space.dimensions)
    categorical = sum(1 for name in space.dimensions if space[name].kind == "choice")
    if dims == 0:
        return "random", "every parameter is a constant: there is nothing to model"
    if n_trials is not None and workers > 1 and n_trials / workers < 10:
        return "sobol", f"{workers} workers for {n_trials} trials: an even quasi-random cover beats a model"
    if dims > 20:
        return "tpe", f"{dims} dimensions: TPE scales where a GP needs many points"
    if dims and categorical / dims > 0.5:
        return "tpe", f"{categorical} of {dims} parameters are unordered choices: TPE handles them natively"
    if n_trials is not None and n_trials > 2000:
        return "tpe", f"{n_trials} trials: TPE stays cheap per proposal on long studies"
    budget = "an open budget" if n_trials is None else f"{n_trials} trials"
    return "bo", f"{dims} mostly numeric dimensions and {budget}: a GP is the most sample-efficient"


class AutoSearcher(Searcher):
    name = "auto"

    def __init__(self, space, seed=None, n_trials: int | None = None, workers: int = 1,
                 picked: str | None = None, why: str | None = None, **options: Any):
        super().__init__(space, seed)
        check_count("auto: n_trials", n_trials)
        check_count("auto: workers", workers, optional=False)
        self.n_trials, self.workers = n_trials, workers
        if picked is None:
            picked, why = choose(self.space, n_trials, workers)
        if picked == "auto":
            raise ConfigError("auto: picked cannot be 'auto'")
        self.picked, self.why = picked, why or "chosen by the user"
        if self.picked == "sobol" and options:
            # Options are for the model auto picks with fewer workers; checked against it (a
            # typo is still an error), then set aside, saying so: an even cover takes none.
            model, why = choose(self.space, None, 1)
            self._create(model, options, f"the model it picks for one worker: {why}")
            warn_caller(f"auto picked sobol ({self.why}), which takes no options; {sorted(options)} are not used")
            options = {}
        self.inner: Searcher = self._create(self.picked, options, self.why)
        self.by_number = self.inner.by_number  # (random and sobol draw by trial number)
        # (a pick that steers by the first metric alone is said to, in a study of several)
        self.multi_objective = self.inner.multi_objective
        self.config_for_number = self.inner.config_for_number

    def _create(self, name: str, options: dict[str, Any], why: str) -> Searcher:
        from tunelab.searchers import SEARCHERS

        try:
            return SEARCHERS.create(name, self.space, self.seed, options=options)
        except ConfigError as err:
            raise ConfigError(f"auto: options for {name!r} ({why}): {err}") from None

    def suggest(self, history: History, n: int = 1) -> list[dict[str, Any]]:
        return self.inner.suggest(history, n)

    def options(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "workers": self.workers, "picked": self.picked, "why": self.why,
                **self.inner.options()}


def keep_pick(recorded: Mapping[str, Any] | None, searcher: Any, options: Mapping[str, Any] | None,
              started: bool) -> Mapping[str, Any] | None:
    """The options of ``auto`` for a study reopened with it: a study that has run trials keeps
    the pick on record (continued by ``tl.tune`` with another budget or other workers, a study
    that ``bo`` had run went on with ``tpe``, whose model knew nothing of the trials before), unless
    the user names a pick; one with no trial yet picks for the budget it is now given."""
    if not (started and isinstance(searcher, str) and searcher.strip().lower() == "auto" and recorded
            and recorded.get("name") == "auto" and recorded.get("picked") and "picked" not in (options or {})):
        return options
    kept = {k: v for k, v in recorded.items() if k not in ("name", "seed", "n_trials", "workers")}
    return {**kept, **(options or {})}
