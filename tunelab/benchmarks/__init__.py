"""Problems with known answers (``tunelab bench``), and a simulator that replays learning curves
in simulated time, so that schedulers are compared in seconds through the very loop users run."""

from tunelab.benchmarks.problems import PROBLEMS, Problem, get_problem

__all__ = ["PROBLEMS", "Problem", "get_problem"]
