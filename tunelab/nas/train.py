"""Training and evaluating a found architecture, and the objective that makes an architecture
search an ordinary tunelab study.

Every search method ends the same way, so their results compare fairly: the architecture is
built from its genotype with fresh weights, trained from scratch on the training data and
measured once on the test data.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from tunelab.errors import ConfigError
from tunelab.nas.data import DataSplits, digits
from tunelab.nas.genotype import Genotype, param_name
from tunelab.nas.macro import build_macro
from tunelab.nas.network import CellNetwork
from tunelab.tracking.seeds import seed_everything


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``loader``."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
            count += len(y)
    if count == 0:
        raise ConfigError("evaluate: the data loader yielded no examples")
    return loss_sum / count, correct / count


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                grad_clip: float = 5.0) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total, count = total + loss.item() * len(y), count + len(y)
    return total / max(count, 1)


def fit(model: nn.Module, train: DataLoader, epochs: int, lr: float = 0.05, momentum: float = 0.9,
        weight_decay: float = 3e-4,
        on_epoch: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
    """SGD with momentum and a cosine learning-rate schedule, as DARTS trains its networks."""
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1; got {epochs!r}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for epoch in range(1, epochs + 1):
        train_epoch(model, train, optimizer)
        schedule.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


def build_network(config: Mapping[str, Any], data: DataSplits, channels: int = 8, layers: int = 3) -> nn.Module:
    """The network of a configuration from either space: a cell genotype or a macro network."""
    if param_name("normal", 0, 0, "op") in config:
        return CellNetwork(Genotype.from_config(config), data.in_channels, data.num_classes, channels, layers)
    x, _ = next(iter(data.train))
    return build_macro(config, data.in_channels, data.num_classes, image_size=x.shape[-1])


def check_training(data: Any, epochs: int, channels: int, layers: int, *, lazy: bool = False) -> None:
    """What every trainer here takes, checked up front with the reason: a wrong one failed
    inside torch (channels=0), in every trial (data=None), or trained without a reduction cell
    (layers=1, so the accuracy was not the genotype's). ``lazy``: ``data`` may also be a function
    that returns the data."""
    if not (isinstance(data, DataSplits) or lazy and callable(data) and not isinstance(data, (str, bytes))):
        wanted = "a DataSplits (tunelab.nas.digits() or split_arrays(x, y))" + (" or a function returning one"
                                                                                   if lazy else "")
        raise ConfigError(f"data must be {wanted}; got {type(data).__name__}")
    for name, value, least in (("epochs", epochs, 1), ("channels", channels, 1), ("layers", layers, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            why = " (a network needs a normal and a reduction cell)" if name == "layers" else ""
            raise ConfigError(f"{name} must be an integer >= {least}{why}; got {value!r}")


def retrain(architecture: Genotype | Mapping[str, Any], data: DataSplits, epochs: int = 10, seed: int = 0,
            channels: int = 8, layers: int = 3, lr: float = 0.05) -> dict[str, float]:
    """Train ``architecture`` from scratch on the training data; its test loss and accuracy."""
    check_training(data, epochs, channels, layers)
    config = architecture.to_config() if isinstance(architecture, Genotype) else architecture
    seed_everything(seed)
    model = fit(build_network(config, data, channels, layers), data.train, epochs, lr=lr)
    loss, accuracy = evaluate(model, data.test)
    return {"accuracy": accuracy, "loss": loss}


#: Configuration keys ArchitectureObjective trains with when the space has them (``fit``'s options).
TRAINING_KEYS = ("lr", "momentum", "weight_decay")


class ArchitectureObjective:
    """``objective(config, trial)`` for ``tl.tune``: train the configuration's network for a few
    epochs, report validation accuracy after each (so schedulers can stop poor ones early) and
    keep the genotype in the trial's user attributes. ``lr``, ``momentum`` and ``weight_decay``
    in the configuration (hyperparameters mixed into the space) override the defaults.

    ``data`` is a :class:`DataSplits` or a function returning one (built once per process, so
    worker processes receive a small picklable object)."""

    def __init__(self, data: DataSplits | Callable[[], DataSplits] = digits, epochs: int = 3,
                 channels: int = 8, layers: int = 3, lr: float = 0.05):
        check_training(data, epochs, channels, layers, lazy=True)
        self._data, self.epochs, self.channels, self.layers, self.lr = data, epochs, channels, layers, lr

    @property
    def data(self) -> DataSplits:
        if not isinstance(self._data, DataSplits):
            self._data = self._data()
        return self._data

    def __call__(self, config: Mapping[str, Any], trial: Any) -> dict[str, float]:
        seed_everything(trial.seed)
        data = self.data
        model = build_network(config, data, self.channels, self.layers)
        if param_name("normal", 0, 0, "op") in config:
            trial.set_user_attr("genotype", Genotype.from_config(config).to_json())
        trial.set_user_attr("parameters", sum(p.numel() for p in model.parameters()))
        result: dict[str, float] = {}

        def report(epoch: int, net: nn.Module) -> None:
            loss, accuracy = evaluate(net, data.valid)
            result.update(accuracy=accuracy, loss=loss)
            trial.report(epoch, accuracy=accuracy, loss=loss)

        # training hyperparameters mixed into the space are the trial's own (else the defaults)
        training = {key: float(config[key]) for key in TRAINING_KEYS if key in config}
        fit(model, data.train, self.epochs, **{"lr": self.lr, **training}, on_epoch=report)
        return result
