"""tunelab: tune machine-learning models, keep every experiment, reproduce any of them.

    import tunelab as tl
    study = tl.tune(objective, {"lr": tl.loguniform(1e-5, 1e-1)}, metric="loss", mode="min",
                    n_trials=50, storage="sqlite:///tunelab.db", name="my-study")
    print(study.best.config)
"""

from tunelab import presets
from tunelab.analysis.sensitivity import sensitivity
from tunelab.api import create_study, delete_study, list_studies, load_study
from tunelab.distributions import choice, fixed, loguniform, ordinal, randint, uniform
from tunelab.errors import (
    ConfigError,
    SearchExhausted,
    SetupWarning,
    TrialLimitReached,
    SpaceError,
    StorageError,
    StudyExists,
    StudyNotFound,
    TrialPaused,
    TrialPruned,
    TunelabError,
)
from tunelab.fidelity import Fidelity, fidelity
from tunelab.history import History
from tunelab.schedulers import SCHEDULERS, Scheduler
from tunelab.script.reporter import report
from tunelab.searchers import SEARCHERS, Searcher
from tunelab.space import Space
from tunelab.storage import open_storage
from tunelab.study import Study
from tunelab.tracking.callbacks import Callback
from tunelab.tracking.cost import Prices, Resources
from tunelab.tracking.environment import capture_environment
from tunelab.tracking.seeds import seed_everything
from tunelab.trial import Decision, Report, RunningTrial, Trial, TrialState
from tunelab.tuner import tune

__version__ = "0.1.0"


def __getattr__(name: str):
    """``tl.TuneSearchCV`` imports scikit-learn only when it is used."""
    if name == "TuneSearchCV":
        from tunelab.sklearn import TuneSearchCV

        return TuneSearchCV
    raise AttributeError(f"module 'tunelab' has no attribute {name!r}")

__all__ = [
    "tune", "create_study", "load_study", "list_studies", "delete_study", "Study",
    "fidelity", "Fidelity", "Space", "uniform", "loguniform", "randint", "choice", "ordinal", "fixed", "presets",
    "Trial", "RunningTrial", "TrialState", "Decision", "Report", "History",
    "Searcher", "SEARCHERS", "Scheduler", "SCHEDULERS", "open_storage",
    "seed_everything", "capture_environment", "report", "Resources", "Prices", "sensitivity", "Callback",
    "TunelabError", "ConfigError", "SpaceError", "StorageError", "StudyExists", "StudyNotFound",
    "SearchExhausted", "SetupWarning", "TrialLimitReached", "TrialPruned", "TrialPaused", "TuneSearchCV", "__version__",
]
