"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, 2019).

The choice of operation on each edge is relaxed to a softmax-weighted mixture, so the
architecture becomes continuous and is learned by gradient descent, alternating with the
network weights: a step on the architecture parameters against *validation* data, then a step
on the weights against *training* data. The architecture gradient comes either from the current
weights (first order: cheap, slightly biased) or from weights after one virtual SGD step (second
order), whose Hessian-vector product is approximated by finite differences.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Mapping

import torch
from torch import nn
from torch.func import functional_call

from tunelab.errors import ConfigError, SpaceError, check_count, check_number
from tunelab.nas.data import DataSplits
from tunelab.nas.device import check_device, deterministic, device_of, resolve_device, to_device
from tunelab.nas.genotype import CELL_KINDS, Genotype
from tunelab.nas.supernet import SearchNetwork
from tunelab.nas.train import check_rate, check_seed, check_training, evaluate
from tunelab.tracking.seeds import seed_everything

_cross_entropy = nn.functional.cross_entropy


@dataclass
class DartsResult:
    """What a search found: the derived genotype, the final architecture weights, and the
    supernet's validation loss and accuracy per epoch (epoch 0 is before any training)."""

    genotype: Genotype
    alphas: dict[str, list[list[float]]]
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    #: the keyword arguments of the search (its seed among them): ``darts_search(data, **settings)``
    #: searches again
    settings: dict[str, Any] = field(default_factory=dict)
    #: how to build its data again (``DataSplits.recipe``), None for splits of arrays
    data: dict[str, Any] | None = None

    def record(self, study: Any, metrics: Mapping[str, float] | float) -> Any:
        """Keep the found architecture as a trial of ``study`` (a study over a matching
        :func:`cell_space`), with its genotype, architecture weights, search curve, and the
        search's settings and data: the trial's own seed is the study's, not the one the search
        ran with, so without them the search could not be run again."""
        trial = study.tell(config=self.genotype.to_config(), value=metrics)
        for key, value in (("genotype", self.genotype.to_json()), ("alphas", self.alphas),
                           ("search_curve", self.curve), ("search_method", "darts"),
                           ("search_seconds", self.seconds), ("search_settings", self.settings),
                           ("search_data", self.data)):
            study.set_user_attr(trial.id, key, value)
        return study.get_trial(trial.number)


class Architect:
    """The architecture step: one Adam update of the alphas on a validation batch."""

    def __init__(self, network: SearchNetwork, order: Literal["first", "second"], lr: float = 3e-3,
                 weight_decay: float = 1e-3, network_weight_decay: float = 3e-4):
        if order not in ("first", "second"):
            raise ConfigError(f"order must be 'first' or 'second'; got {order!r}")
        self.network, self.order, self.network_weight_decay = network, order, network_weight_decay
        self.optimizer = torch.optim.Adam(network.arch_parameters(), lr=lr, betas=(0.5, 0.999),
                                          weight_decay=weight_decay)

    def step(self, train_batch: tuple[torch.Tensor, torch.Tensor], valid_batch: tuple[torch.Tensor, torch.Tensor],
             weight_lr: float) -> None:
        """One update of the alphas.

        Its forward passes (on the validation batch; second order, also on the training batch)
        run in training mode, so batch norm normalises with each batch's own statistics and also
        moves its running statistics, as DARTS' reference code does. That is left as it is: the
        gradients of both steps never read the running statistics (training mode), so the search
        and its genotype do not depend on them; only the curve's evaluations do. Freezing them
        here was tried and made that curve worse, not cleaner: with half the updates, the
        statistics lag the fast-moving supernet weights (valid loss 2.06 instead of 1.68 on the
        same weights, where statistics recomputed from training or from validation data both give
        1.64-1.65), so the validation batches' share in them flatters nothing."""
        alphas = self.network.arch_parameters()
        if self.order == "first":
            grads = torch.autograd.grad(_cross_entropy(self.network(valid_batch[0]), valid_batch[1]), alphas)
        else:
            grads = self._unrolled_gradient(train_batch, valid_batch, weight_lr)
        self.optimizer.zero_grad()
        for alpha, grad in zip(alphas, grads):
            alpha.grad = grad
        self.optimizer.step()

    def _loss(self, weights: Mapping[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return _cross_entropy(functional_call(self.network, dict(weights), (batch[0],), strict=False), batch[1])

    def _unrolled_gradient(self, train_batch, valid_batch, xi: float) -> list[torch.Tensor]:
        """d L_val(w - xi * dL_train/dw, alpha) / d alpha.

        The virtual step is plain SGD with weight decay (DARTS also folds in the momentum buffer;
        leaving it out keeps the step a pure function of the weights). The second-order term
        xi * d2L_train/(dalpha dw) . dL_val/dw' is the central difference of dL_train/dalpha at
        w +- eps * dL_val/dw', with eps = 0.01 / ||dL_val/dw'||."""
        weights = self.network.weight_parameters()
        alphas = self.network.arch_parameters()
        grads = torch.autograd.grad(self._loss(weights, train_batch), list(weights.values()), allow_unused=True)
        unrolled = {name: (w - xi * ((g if g is not None else 0.0) + self.network_weight_decay * w)).detach()
                    .requires_grad_() for (name, w), g in zip(weights.items(), grads)}
        outer = torch.autograd.grad(self._loss(unrolled, valid_batch), alphas + list(unrolled.values()),
                                    allow_unused=True)
        d_alpha = [g if g is not None else torch.zeros_like(a) for g, a in zip(outer[:len(alphas)], alphas)]
        d_weights = [g if g is not None else torch.zeros_like(w) for g, w in zip(outer[len(alphas):], unrolled.values())]
        norm = torch.cat([g.flatten() for g in d_weights]).norm()
        if float(norm) == 0.0:
            return d_alpha
        eps = 0.01 / norm
        with torch.no_grad():
            plus = {name: w + eps * d for (name, w), d in zip(weights.items(), d_weights)}
            minus = {name: w - eps * d for (name, w), d in zip(weights.items(), d_weights)}
        grad_plus = torch.autograd.grad(self._loss(plus, train_batch), alphas)
        grad_minus = torch.autograd.grad(self._loss(minus, train_batch), alphas)
        return [da - xi * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, grad_plus, grad_minus)]


def darts_search(data: DataSplits, *, epochs: int = 10, order: Literal["first", "second"] = "first",
                 nodes: int = 4, channels: int = 8, layers: int = 3, lr: float = 0.025, momentum: float = 0.9,
                 weight_decay: float = 3e-4, arch_lr: float = 3e-3, arch_weight_decay: float = 1e-3,
                 seed: int = 0, max_seconds: float | None = None, device: str | torch.device = "auto",
                 clock: Callable[[], float] = time.monotonic) -> DartsResult:
    """Search a cell with DARTS on ``data.train`` (weights) and ``data.valid`` (architecture).

    ``max_seconds`` on ``clock`` ends the search early (after the current batch) so that methods
    can be compared at equal compute (``clock=time.process_time`` counts CPU seconds, fair on a
    busy machine); the cosine schedule still spans ``epochs``. ``device``: see
    :mod:`tunelab.nas.device` (the supernet's weights are drawn on the CPU, then moved)."""
    check_training(data, epochs, channels, layers)
    check_count("darts_search: nodes", nodes, optional=False, error=SpaceError)
    for name, value in (("lr", lr), ("arch_lr", arch_lr)):
        check_rate(f"darts_search: {name}", value)
    check_number("darts_search: momentum", momentum, "a number in [0, 1)", lambda v: 0 <= v < 1)
    for name, value in (("weight_decay", weight_decay), ("arch_weight_decay", arch_weight_decay)):
        check_number(f"darts_search: {name}", value, "a number >= 0", lambda v: 0 <= v < math.inf)
    check_number("darts_search: max_seconds", max_seconds, "a positive number of seconds or None",
                 lambda v: v > 0, optional=True)
    check_seed(seed)
    if order not in ("first", "second"):
        raise ConfigError(f"order must be 'first' or 'second'; got {order!r}")
    settings = {"epochs": epochs, "order": order, "nodes": nodes, "channels": channels, "layers": layers,
                "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "arch_lr": arch_lr,
                "arch_weight_decay": arch_weight_decay, "seed": seed, "max_seconds": max_seconds,
                "device": check_device(device)}
    target = resolve_device(device)
    data.check_batches()  # a shape mismatch, said plainly before the supernet is built
    seed_everything(seed)
    started = clock()
    with deterministic(target):
        network, curve = _search(data, SearchNetwork(data.in_channels, data.num_classes, channels, layers,
                                                     nodes).to(target), settings, started, clock)
    alphas = {kind: network.alphas[kind].detach().cpu().tolist() for kind in CELL_KINDS}
    return DartsResult(network.genotype(), alphas, curve, clock() - started, settings, data.recipe)


def _search(data: DataSplits, network: SearchNetwork, settings: Mapping[str, Any], started: float,
            clock: Callable[[], float]) -> tuple[SearchNetwork, list[dict[str, float]]]:
    """The alternating steps of :func:`darts_search` on the network's device; its curve."""
    epochs, lr, weight_decay, max_seconds = (settings[key] for key in ("epochs", "lr", "weight_decay",
                                                                       "max_seconds"))
    device = device_of(network)
    weights = list(network.weight_parameters().values())
    optimizer = torch.optim.SGD(weights, lr=lr, momentum=settings["momentum"], weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr / 25)
    architect = Architect(network, settings["order"], settings["arch_lr"], settings["arch_weight_decay"],
                          weight_decay)
    curve = [_measure(network, data, 0)]
    out_of_time = False
    for epoch in range(1, epochs + 1):
        network.train()
        valid_batches = _architecture_batches(data.valid)
        current_lr = schedule.get_last_lr()[0]
        for batch in data.train:
            x, y = to_device(batch, device)
            architect.step((x, y), to_device(next(valid_batches), device), current_lr)
            optimizer.zero_grad()
            loss = _cross_entropy(network(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(weights, 5.0)
            optimizer.step()
            if max_seconds is not None and clock() - started > max_seconds:
                out_of_time = True
                break
        schedule.step()
        curve.append(_measure(network, data, epoch))
        if out_of_time:
            break
    return network, curve


def _architecture_batches(loader: Any) -> Iterator[Any]:
    """The validation batches for the architecture steps, over and over (an epoch of them cached,
    as itertools.cycle does), leaving out a batch of a single image while there are larger ones:
    its training-mode pass cannot normalise one value per channel where the maps are 1x1, so 65
    validation images in batches of 64 (on 4x4 images) failed every search. The loader's
    iterator is made at once, as itertools.cycle makes it: making it draws from torch's random
    state, so made later it would reorder the training batches of a seeded search."""
    return _cycle_without_lone_batches(iter(loader))


def _cycle_without_lone_batches(batches: Iterator[Any]) -> Iterator[Any]:
    seen, kept = [], []
    for batch in batches:
        seen.append(batch)
        if len(batch[1]) > 1:
            kept.append(batch)
            yield batch
    pool = kept or seen  # every batch holds one image (batch_size=1): nothing better to step on
    while pool:
        yield from pool


def _measure(network: SearchNetwork, data: DataSplits, epoch: int) -> dict[str, float]:
    loss, accuracy = evaluate(network, data.valid)
    return {"epoch": epoch, "valid_loss": loss, "valid_accuracy": accuracy}
