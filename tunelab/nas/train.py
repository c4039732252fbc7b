"""Training and evaluating a found architecture, and the objective that makes an architecture
search an ordinary tunelab study.

Every search method ends the same way, so their results compare fairly: the architecture is
built from its genotype with fresh weights, trained from scratch on the training data and
measured once on the test data.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from tunelab.errors import ConfigError, check_number
from tunelab.nas.data import DataSplits, digits
from tunelab.nas.device import check_device, deterministic, device_of, resolve_device, to_device
from tunelab.nas.genotype import Genotype, param_name
from tunelab.nas.macro import build_macro
from tunelab.nas.network import CellNetwork
from tunelab.tracking.objective import import_recorded, objective_file
from tunelab.tracking.seeds import seed_everything


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``loader``, on the model's device."""
    model.eval()
    device = device_of(model)
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            x, y = to_device(batch, device)
            logits = model(x)
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
            count += len(y)
    if count == 0:
        raise ConfigError("evaluate: the data loader yielded no examples")
    return loss_sum / count, correct / count


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                grad_clip: float = 5.0) -> float:
    """One pass over ``loader`` on the model's device; returns the mean training loss."""
    model.train()
    device = device_of(model)
    total, count = 0.0, 0
    for batch in loader:
        x, y = to_device(batch, device)
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
    """SGD with momentum and a cosine learning-rate schedule, as DARTS trains its networks, on
    the device the model is on."""
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
    """The network of a configuration from either space: a cell genotype or a macro network.

    The data's batches are checked against its declared shape first (once per splits), so a
    mismatch is one clear error here rather than a shape error from torch in every trial."""
    data.check_batches()
    if param_name("normal", 0, 0, "op") in config:
        return CellNetwork(Genotype.from_config(config), data.in_channels, data.num_classes, channels, layers)
    x, _ = next(iter(data.train))
    return build_macro(config, data.in_channels, data.num_classes, image_size=tuple(x.shape[-2:]))


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


def check_seed(seed: Any) -> None:
    """A seed is what seed_everything takes; said here, in the caller's terms, instead of a
    ValueError from inside tracking."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= 2**32 - 1:
        raise ConfigError(f"seed must be an integer in [0, 2**32 - 1]; got {seed!r}")


def check_rate(name: str, value: Any) -> None:
    check_number(name, value, "a positive number", lambda v: 0 < v < math.inf)


#: Configuration keys the trainers here train with when the space has them (``fit``'s options).
TRAINING_KEYS = ("lr", "momentum", "weight_decay")


def training_options(config: Mapping[str, Any], lr: float) -> dict[str, float]:
    """``fit``'s options for ``config``: its own lr, momentum and weight_decay (hyperparameters
    searched with the architecture), else ``lr`` and fit's defaults."""
    return {"lr": lr, **{key: float(config[key]) for key in TRAINING_KEYS if key in config}}


def retrain(architecture: Genotype | Mapping[str, Any], data: DataSplits, epochs: int = 10, seed: int = 0,
            channels: int = 8, layers: int = 3, lr: float | None = None,
            device: str | torch.device = "auto") -> dict[str, float]:
    """Train ``architecture`` from scratch on the training data; its test loss and accuracy.

    A configuration (``study.best.config``) trains with its own ``lr``, ``momentum`` and
    ``weight_decay`` when the space had them, as its trial did: retrained with the defaults, the
    best trial's architecture was measured with training settings it was never chosen for. An
    ``lr`` given here overrides the configuration's (default 0.05). ``device``: see
    :mod:`tunelab.nas.device`."""
    check_training(data, epochs, channels, layers)
    check_seed(seed)
    target = resolve_device(device)
    if lr is not None:
        check_rate("retrain: lr", lr)
    if isinstance(architecture, Genotype):
        config: Mapping[str, Any] = architecture.to_config()
    elif isinstance(architecture, Mapping):
        config = architecture
    else:
        raise ConfigError(f"retrain: architecture must be a Genotype or a configuration (dict); "
                          f"got {type(architecture).__name__}")
    options = training_options(config, 0.05)
    if lr is not None:
        options["lr"] = lr
    seed_everything(seed)
    with deterministic(target):
        model = fit(build_network(config, data, channels, layers).to(target), data.train, epochs, **options)
        loss, accuracy = evaluate(model, data.test)
    return {"accuracy": accuracy, "loss": loss}


# -- ArchitectureObjective, and how a study's record names it --------------------------------------
#: An objective that can be rebuilt is recorded as ``tunelab.nas.train:ArchitectureObjective{...}``:
#: the module-level ``__getattr__`` below turns that name back into the same objective, so that
#: ``tunelab reproduce`` (which imports a study's objective by its recorded path) re-runs its
#: trials. Dots separate the parts of a recorded path, so they are written %2E inside the braces.
RECORD_PREFIX = "ArchitectureObjective"


def _encode(settings: Mapping[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return text.replace("%", "%25").replace(".", "%2E")


def _decode(text: str) -> dict[str, Any]:
    try:
        settings = json.loads(text.replace("%2E", ".").replace("%25", "%"))
    except ValueError:
        settings = None
    if not isinstance(settings, dict) or not isinstance(settings.get("data"), dict):
        raise ConfigError(f"{RECORD_PREFIX}{text} is not a recorded ArchitectureObjective (was the record edited?)")
    return settings


def importable_path(function: Any) -> str | None:
    """'module:qualname' of a function that another process can import again, else None (one
    defined in a script run as __main__, inside a function, or a lambda)."""
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def _import(path: str, file: str | None = None) -> Callable:
    """The function at ``path``; ``file`` (where it was defined) names its package root, so that
    ``tunelab reproduce`` run from another folder than the project's finds ``my_data.load``."""
    module_name, _, qualname = path.partition(":")
    target: Any = import_recorded(module_name, file, "the module of this objective's data function")
    try:
        for part in qualname.split("."):
            target = getattr(target, part)
    except AttributeError as err:
        raise ConfigError(f"cannot import the data function {path!r} of this objective ({err})") from None
    return target


class RebuiltData:
    """Data from a recipe: a function, by import path, called with keyword arguments. Lazy and
    small, so each worker process builds the data itself. ``file`` is where the function was
    defined (its package root is searched when its module is not importable from here)."""

    def __init__(self, function: str, arguments: Mapping[str, Any] | None = None, file: str | None = None):
        self.function, self.arguments, self.file = function, dict(arguments or {}), file

    @property
    def recipe(self) -> dict[str, Any]:
        return {"function": self.function, "arguments": dict(self.arguments),
                **({"file": self.file} if self.file else {})}

    def __call__(self) -> DataSplits:
        data = _import(self.function, self.file)(**self.arguments)
        if not isinstance(data, DataSplits):
            raise ConfigError(f"the data function {self.function!r} returned {type(data).__name__}, not a DataSplits")
        return data


def data_recipe(data: Any) -> dict[str, Any] | None:
    """How to build ``data`` again in another process, or None when no record can say it."""
    if isinstance(data, (DataSplits, RebuiltData)):
        return data.recipe
    path = importable_path(data)
    if path is None:
        return None
    file = None if path.startswith("tunelab.") else objective_file(data)  # tunelab's own import anywhere
    return {"function": path, "arguments": {}, **({"file": file} if file else {})}


class ArchitectureObjective:
    """``objective(config, trial)`` for ``tl.tune``: train the configuration's network for a few
    epochs, report validation accuracy after each (so schedulers can stop poor ones early) and
    keep the genotype in the trial's user attributes. ``lr``, ``momentum`` and ``weight_decay``
    in the configuration (hyperparameters mixed into the space) override the defaults.

    ``data`` is a :class:`DataSplits` or a function returning one (built once per process, so
    worker processes receive a small picklable object).

    Under a fidelity (``tl.tune(..., fidelity=tl.fidelity("epochs", ...))``) a trial trains for
    ``trial.budget`` epochs, the level its scheduler gave it, instead of ``epochs``.

    When its data can be built again (``nas.digits(...)``, or a module-level function that
    returns the splits) the study records this objective with its settings, and ``tunelab
    reproduce`` re-runs its trials; splits built from arrays in memory cannot be recorded (pass
    a function that builds them instead).

    ``device`` (see :mod:`tunelab.nas.device`) is where each trial trains, looked up in the
    process that runs the trial (``"auto"``: a worker with a GPU uses it); each trial keeps the
    device it trained on in its user attribute ``device``."""

    def __init__(self, data: DataSplits | Callable[[], DataSplits] = digits, epochs: int = 3,
                 channels: int = 8, layers: int = 3, lr: float = 0.05, device: str | torch.device = "auto"):
        check_training(data, epochs, channels, layers, lazy=True)
        check_rate("ArchitectureObjective: lr", lr)
        self._data, self.epochs, self.channels, self.layers, self.lr = data, epochs, channels, layers, float(lr)
        self.device = check_device(device)
        recipe = data_recipe(data)
        #: the objective's settings as a study records them (None: its data cannot be recorded);
        #: the default device is left out, so that records made before devices existed name it alike
        self.settings: dict[str, Any] | None = None if recipe is None else {
            "data": recipe, "epochs": epochs, "channels": channels, "layers": layers, "lr": self.lr,
            **({"device": self.device} if self.device != "auto" else {})}
        if self.settings is not None:
            # tl.tune records an objective as f"{__module__}:{__qualname__}"; this instance's name
            # is one that the module-level __getattr__ below turns back into this objective
            self.__qualname__ = RECORD_PREFIX + _encode(self.settings)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "ArchitectureObjective":
        """The objective a study recorded (see :attr:`settings`)."""
        try:
            data = RebuiltData(settings["data"]["function"], settings["data"].get("arguments"),
                               settings["data"].get("file"))
            return cls(data, epochs=settings["epochs"], channels=settings["channels"], layers=settings["layers"],
                       lr=settings["lr"], device=settings.get("device", "auto"))
        except (KeyError, TypeError, AttributeError) as err:
            raise ConfigError(f"not the settings of an ArchitectureObjective: {settings!r} ({err})") from None

    @property
    def data(self) -> DataSplits:
        if not isinstance(self._data, DataSplits):
            self._data = self._data()
        return self._data

    def epochs_for(self, trial: Any) -> int:
        """``trial.budget`` under a fidelity (the epochs its scheduler gave it), else ``epochs``:
        trained for ``epochs`` whatever the budget, a run stopped short of a rung above it (or
        was cut off at a rung below it mid-schedule) and ranked on a level it was not run to."""
        budget = getattr(trial, "budget", None)
        if budget is None:
            return self.epochs
        if not float(budget).is_integer() or budget < 1:
            raise ConfigError(f"ArchitectureObjective trains for trial.budget epochs, and got budget {budget!r}: "
                              "declare the fidelity in whole epochs, e.g. tl.fidelity('epochs', min=1, max=9)")
        return int(budget)

    def __call__(self, config: Mapping[str, Any], trial: Any) -> dict[str, float]:
        data = self.data  # built before seeding: building it may draw random numbers
        epochs = self.epochs_for(trial)
        device = resolve_device(self.device)
        seed_everything(trial.seed)
        model = build_network(config, data, self.channels, self.layers).to(device)
        if param_name("normal", 0, 0, "op") in config:
            trial.set_user_attr("genotype", Genotype.from_config(config).to_json())
        trial.set_user_attr("parameters", sum(p.numel() for p in model.parameters()))
        trial.set_user_attr("device", str(device))
        result: dict[str, float] = {}

        def report(epoch: int, net: nn.Module) -> None:
            loss, accuracy = evaluate(net, data.valid)
            result.update(accuracy=accuracy, loss=loss)
            trial.report(epoch, accuracy=accuracy, loss=loss)

        # training hyperparameters mixed into the space are the trial's own (else the defaults)
        with deterministic(device):
            fit(model, data.train, epochs, **training_options(config, self.lr), on_epoch=report)
        return result


def __getattr__(name: str) -> Any:
    """``ArchitectureObjective{...}``: the recorded objective of a study (see RECORD_PREFIX)."""
    if name.startswith(RECORD_PREFIX + "{"):
        return ArchitectureObjective.from_settings(_decode(name[len(RECORD_PREFIX):]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
