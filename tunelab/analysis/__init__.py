"""What a user asks of a study: the best trials, which parameters matter, how sensitive and how
stable the metric is, how two studies compare, and whether a trial reproduces.

Everything here reads a study (through its storage) and never changes it.
"""

from tunelab.analysis.compare import Comparison, best_so_far, compare_studies
from tunelab.analysis.importance import Importance, fanova_importance, importance, permutation_importance
from tunelab.analysis.reproduce import Reproduction, reproduce
from tunelab.analysis.rerun import Rerun, load_objective, rerun
from tunelab.analysis.seeds import SeedCheck, ensemble, seed_check
from tunelab.analysis.sensitivity import Sensitivity, sensitivity
from tunelab.analysis.summary import best_trials, pareto_front, top_trials, trials_table

__all__ = [
    "best_trials", "pareto_front", "top_trials", "trials_table",
    "Importance", "importance", "fanova_importance", "permutation_importance",
    "Sensitivity", "sensitivity", "SeedCheck", "seed_check", "ensemble",
    "Comparison", "compare_studies", "best_so_far", "Reproduction", "reproduce",
    "Rerun", "rerun", "load_objective",
]
