"""What nas.describe, nas.to_svg and nas.derive accept: what a user holds after a search."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import torch  # noqa: E402

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.supernet import edge_count  # noqa: E402


def _genotype() -> nas.Genotype:
    return nas.Genotype.from_config(tl.Space(nas.cell_space(2)).sample(3))


def test_describe_and_svg_take_a_configuration_and_a_stored_genotype():
    genotype = _genotype()
    config = {**genotype.to_config(), "lr": 0.1}  # study.best.config, with a hyperparameter mixed in
    for held in (config, genotype.to_json()):
        assert nas.describe(held) == nas.describe(genotype)
        assert nas.to_svg(held, title="t") == nas.to_svg(genotype, title="t")


@pytest.mark.parametrize("draw", [nas.describe, nas.to_svg])
def test_describe_and_svg_refuse_what_has_no_cell_by_saying_what_they_take(draw):
    macro = tl.Space(nas.macro_space("cnn", max_layers=2)).sample(0)
    with pytest.raises(tl.ConfigError, match="neither a cell configuration .* nor a stored genotype"):
        draw(macro)
    with pytest.raises(tl.ConfigError, match="expected a nas.Genotype, a cell configuration"):
        draw("normal_n0_op0")


def test_derive_names_a_missing_cell_kind():
    alphas = {"normal": torch.zeros(edge_count(2), len(nas.PRIMITIVES))}
    with pytest.raises(tl.ConfigError, match="lack the 'reduce' cell weights"):
        nas.derive(alphas, 2)
    with pytest.raises(tl.ConfigError, match="must be a dict with 'normal' and 'reduce'"):
        nas.derive([alphas["normal"]] * 2, 2)
    network = nas.SearchNetwork(channels=2, layers=2, nodes=2)
    assert nas.derive(network.alphas, 2) == network.genotype()  # a ParameterDict still works
