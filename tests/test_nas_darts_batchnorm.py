"""Why DARTS' architecture step may move batch norm's running statistics: the search never reads
them (docs/nas.md, Architect.step). These pin that reason; if it stops holding, freeze them."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the nas extra (torch) is not installed")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tunelab import nas  # noqa: E402
from tunelab.nas.darts import Architect  # noqa: E402


def _alpha_step(network: nas.SearchNetwork, order: str) -> list[torch.Tensor]:
    torch.manual_seed(3)
    train = (torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,)))
    valid = (torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,)))
    network.train()
    Architect(network, order).step(train, valid, weight_lr=0.1)
    return [a.detach().clone() for a in network.arch_parameters()]


@pytest.mark.parametrize("order", ["first", "second"])
def test_the_architecture_step_does_not_read_running_statistics(order):
    torch.manual_seed(0)
    plain = nas.SearchNetwork(channels=2, layers=2, nodes=1)
    skewed = nas.SearchNetwork(channels=2, layers=2, nodes=1)
    skewed.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for module in skewed.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.fill_(5.0)
                module.running_var.fill_(40.0)
    before = {name: b.clone() for name, b in plain.named_buffers()}
    stepped = _alpha_step(plain, order)
    assert all(torch.equal(a, b) for a, b in zip(stepped, _alpha_step(skewed, order)))
    # the step does move them (what the docs say), which is why the point above matters
    assert not torch.equal(before["stem.1.running_mean"], dict(plain.named_buffers())["stem.1.running_mean"])
