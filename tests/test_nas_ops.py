"""Shapes of every candidate operation and of DARTS' mixed operation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

from tunelab.errors import SpaceError  # noqa: E402
from tunelab.nas import PRIMITIVES, MixedOp, make_op  # noqa: E402
from tunelab.nas.ops import FactorizedReduce  # noqa: E402


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 5])
def test_every_operation_keeps_channels_and_halves_size_with_stride_2(name, stride, size):
    op = make_op(name, 6, stride)
    out = op(torch.randn(3, 6, size, size))
    expected = size if stride == 1 else (size + 1) // 2
    assert out.shape == (3, 6, expected, expected)
    assert op.primitive == name


def test_none_outputs_zeros_and_skip_is_identity_at_stride_1():
    x = torch.randn(2, 4, 6, 6)
    assert torch.count_nonzero(make_op("none", 4, 1)(x)) == 0
    assert torch.equal(make_op("skip_connect", 4, 1)(x), x)
    assert isinstance(make_op("skip_connect", 4, 2), FactorizedReduce)


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_shape_and_weighting(stride):
    mixed = MixedOp(4, stride)
    x = torch.randn(2, 4, 8, 8)
    weights = torch.softmax(torch.randn(len(PRIMITIVES)), dim=0)
    assert mixed(x, weights).shape == (2, 4, 8 // stride, 8 // stride)
    # A one-hot weight selects exactly one operation (max pool carries no parameters).
    one_hot = torch.zeros(len(PRIMITIVES))
    one_hot[PRIMITIVES.index("max_pool_3x3")] = 1.0
    mixed.eval()
    expected = mixed.ops[PRIMITIVES.index("max_pool_3x3")](x)
    assert torch.allclose(mixed(x, one_hot), expected)


def test_unknown_operation_and_bad_stride_are_refused():
    with pytest.raises(SpaceError, match="unknown operation 'conv_7x7'"):
        make_op("conv_7x7", 4, 1)
    with pytest.raises(SpaceError, match="stride must be 1 or 2"):
        make_op("sep_conv_3x3", 4, 3)
