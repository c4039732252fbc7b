"""Neural architecture search on PyTorch: cell and macro search spaces, a REINFORCE controller,
DARTS, regularised evolution, and networks built from (and read back into) genotypes.

    import tunelab as tl
    from tunelab import nas

    data = nas.digits()                                   # bundled 8x8 images; any DataLoader works
    found = nas.darts_search(data, epochs=10, nodes=3)    # or order="second"
    print(nas.describe(found.genotype), nas.retrain(found.genotype, data, epochs=10))
    study = tl.tune(nas.ArchitectureObjective(data), nas.cell_space(3), metric="accuracy", mode="max",
                    searcher=nas.ReinforceSearcher(nas.cell_space(3), seed=0), n_trials=20)

PyTorch is an extra: ``pip install 'tunelab[nas]'``.
"""

from __future__ import annotations

from tunelab.errors import TunelabError


class MissingExtra(TunelabError, ImportError):
    """An optional dependency of tunelab is not installed."""


try:
    import torch  # noqa: F401
except ImportError as err:
    raise MissingExtra("tunelab.nas needs PyTorch, which is not installed; install it with: "
                       "pip install 'tunelab[nas]'") from err

from tunelab.nas.controller import Policy, ReinforceSearcher  # noqa: E402
from tunelab.nas.darts import Architect, DartsResult, darts_search  # noqa: E402
from tunelab.nas.data import DataSplits, digits  # noqa: E402
from tunelab.nas.draw import describe, to_svg  # noqa: E402
from tunelab.nas.evolution import RegularizedEvolution  # noqa: E402
from tunelab.nas.genotype import CELL_OPS, PRIMITIVES, Genotype  # noqa: E402
from tunelab.nas.macro import build_macro  # noqa: E402
from tunelab.nas.network import CellNetwork, genotype_of  # noqa: E402
from tunelab.nas.ops import MixedOp, make_op  # noqa: E402
from tunelab.nas.spaces import cell_space, macro_space  # noqa: E402
from tunelab.nas.supernet import SearchNetwork, derive  # noqa: E402
from tunelab.nas.train import ArchitectureObjective, evaluate, fit, retrain  # noqa: E402

# ReinforceSearcher and RegularizedEvolution are listed (lazily) in tunelab.searchers.SEARCHERS
# as "reinforce" and "regularized_evolution", so tl.tune and tl.load_study find them by name.

__all__ = [
    "cell_space", "macro_space", "Genotype", "PRIMITIVES", "CELL_OPS",
    "CellNetwork", "genotype_of", "build_macro", "make_op", "MixedOp",
    "SearchNetwork", "derive", "darts_search", "Architect", "DartsResult",
    "Policy", "ReinforceSearcher", "RegularizedEvolution",
    "digits", "DataSplits", "ArchitectureObjective", "fit", "evaluate", "retrain",
    "describe", "to_svg", "MissingExtra",
]
