"""Genotypes, spaces, derivation and the genotype -> module -> genotype round trip."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import tunelab as tl  # noqa: E402
from tunelab import nas  # noqa: E402
from tunelab.nas.supernet import edge_count  # noqa: E402


def sampled_genotype(nodes: int, seed: int) -> nas.Genotype:
    return nas.Genotype.from_config(tl.Space(nas.cell_space(nodes)).sample(seed))


@pytest.mark.parametrize("seed", range(4))
def test_genotype_module_genotype_round_trip(seed):
    genotype = sampled_genotype(3, seed)
    network = nas.CellNetwork(genotype, in_channels=1, num_classes=10, channels=4, layers=3)
    assert network(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert nas.genotype_of(network) == genotype
    assert nas.Genotype.from_json(genotype.to_json()) == genotype
    assert nas.Genotype.from_config(genotype.to_config()) == genotype


def test_network_without_reduction_cell_has_no_genotype():
    network = nas.CellNetwork(sampled_genotype(2, 0), channels=4, layers=1)
    with pytest.raises(tl.SpaceError, match="no reduce cell"):
        nas.genotype_of(network)


def test_cell_space_is_a_plain_tunelab_space_with_valid_inputs():
    space = tl.Space(nas.cell_space(4))
    assert len(space) == 2 * 4 * 2 * 2
    for seed in range(20):
        genotype = nas.Genotype.from_config(space.sample(seed))
        for kind in ("normal", "reduce"):
            for node, _, op, src in genotype.edges(kind):
                assert 0 <= src <= node + 1 and op in nas.CELL_OPS


def test_genotype_validation():
    with pytest.raises(tl.SpaceError, match="input 3 does not exist yet"):
        nas.Genotype(normal=(("skip_connect", 0), ("skip_connect", 3)), reduce=(("skip_connect", 0),) * 2)
    with pytest.raises(tl.SpaceError, match="unknown operation 'conv'"):
        nas.Genotype(normal=(("conv", 0), ("skip_connect", 1)), reduce=(("skip_connect", 0),) * 2)
    with pytest.raises(tl.SpaceError, match="not a cell configuration"):
        nas.Genotype.from_config({"lr": 0.1})
    with pytest.raises(tl.SpaceError, match="nodes must be a positive integer"):
        nas.cell_space(0)
    with pytest.raises(tl.SpaceError, match="normal cell, edge 1: the input must be an integer index; got 'a'"):
        nas.Genotype(normal=(("skip_connect", 0), ("skip_connect", "a")), reduce=(("skip_connect", 0),) * 2)
    with pytest.raises(tl.SpaceError, match="reduce cell, edge 0: an edge is an .operation, input index. pair"):
        nas.Genotype(normal=(("skip_connect", 0),) * 2, reduce=("skip_connect", ("skip_connect", 1)))
    assert nas.Genotype(normal=(("skip_connect", np.int64(0)), ("skip_connect", "1")),
                        reduce=(("skip_connect", 0),) * 2).normal[1] == ("skip_connect", 1)


def test_spaces_refuse_what_builds_no_sensible_network():
    with pytest.raises(tl.SpaceError, match="ops must be a non-empty list drawn from skip_connect"):
        nas.cell_space(2, ops=["none"])  # no connection anywhere: the cell computes nothing
    with pytest.raises(tl.SpaceError, match="kernels must be a non-empty list of positive odd integers"):
        nas.macro_space("cnn", kernels=(3, 4))
    for widths in ((0,), (16, -3), (), (16.5,)):
        with pytest.raises(tl.SpaceError, match="widths must be a non-empty list of positive integers"):
            nas.macro_space("mlp", widths=widths)


def test_derive_picks_argmax_operations_and_two_strongest_inputs():
    nodes, ops = 3, nas.PRIMITIVES
    alphas = {kind: torch.zeros(edge_count(nodes), len(ops)) for kind in ("normal", "reduce")}
    # Node 2 (rows 5..8 read states 0..3): make inputs 3 and 0 strongest, with distinct ops.
    alphas["normal"][5 + 3, ops.index("dil_conv_5x5")] = 5.0
    alphas["normal"][5 + 0, ops.index("avg_pool_3x3")] = 4.0
    alphas["normal"][5 + 1, ops.index("none")] = 9.0  # 'none' never wins, nor makes an edge strong
    # Node 0 (rows 0, 1): both inputs are kept; their argmax ops are chosen.
    alphas["normal"][0, ops.index("sep_conv_5x5")] = 2.0
    alphas["normal"][1, ops.index("max_pool_3x3")] = 2.0
    alphas["reduce"][:, ops.index("skip_connect")] = 1.0
    genotype = nas.derive(alphas, nodes)
    assert genotype.normal[0:2] == (("sep_conv_5x5", 0), ("max_pool_3x3", 1))
    assert genotype.normal[4:6] == (("avg_pool_3x3", 0), ("dil_conv_5x5", 3))
    assert all(op == "skip_connect" for op, _ in genotype.reduce)
    assert [src for _, src in genotype.reduce] == [0, 1, 0, 1, 0, 1]  # ties go to the earlier inputs


def test_search_network_genotype_follows_its_alphas():
    network = nas.SearchNetwork(channels=4, layers=2, nodes=2)
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.zero_()
            alpha[:, nas.PRIMITIVES.index("sep_conv_3x3")] = 3.0
    assert network(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert {op for kind in ("normal", "reduce") for _, _, op, _ in network.genotype().edges(kind)} == {"sep_conv_3x3"}


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_macro_space_builds_networks(kind):
    space = tl.Space(nas.macro_space(kind, max_layers=3))
    for seed in range(5):
        config = space.sample(seed)
        assert all(f"width_{i}" in config for i in range(config["layers"]))
        assert f"width_{config['layers']}" not in config
        assert nas.build_macro(config)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_text_and_svg_drawing():
    genotype = sampled_genotype(3, 1)
    text = nas.describe(genotype)
    assert text.count("output = concat(0, 1, 2)") == 2 and "reduction cell" in text
    svg = ElementTree.fromstring(nas.to_svg(genotype, title="a <cell>"))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in svg.iter(f"{ns}text")]
    assert sum(label in nas.CELL_OPS for label in labels) == 2 * 2 * 3  # one label per edge
    assert "a <cell>" in labels
