"""Problems with known answers, and the runner behind ``tunelab bench``."""

from tunelab.benchmarks.problems import PROBLEMS, Problem, get_problem

__all__ = ["PROBLEMS", "Problem", "get_problem"]
