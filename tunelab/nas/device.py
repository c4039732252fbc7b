"""Where the networks of an architecture search train: the CPU, a CUDA GPU or Apple's MPS.

Every trainer here takes ``device=``: ``"auto"`` (the default) takes the first CUDA GPU when
PyTorch sees one, else the CPU, so the same script runs on a laptop and on a GPU machine. A
name is checked when it is given (a typo is an error at once), and whether the machine has that
device only when training starts: an objective built on a machine without a GPU may well run
on cluster workers that have one.

Networks are built (and their weights drawn) on the CPU and then moved, so a seed gives the same
initial weights on every device; batches move to the network's device as they are used, so the
data loaders stay plain CPU loaders. On CUDA, cuDNN is held to deterministic algorithms while
tunelab trains (the flags are put back afterwards), so that a seed gives the same result again
on the same machine, as it does on the CPU.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

import torch
from torch import nn

from tunelab.errors import ConfigError

#: what ``device=`` takes, as said in its errors
DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (or a torch.device)"
_NAME = re.compile(r"(auto|cpu(:0)?|mps|cuda(:\d+)?)")


def check_device(device: Any) -> str:
    """The device's name, checked for form only (see the module's docstring)."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _NAME.fullmatch(device.strip().lower()):
        raise ConfigError(f"device must be {DEVICES}; got {device!r}")
    return device.strip().lower()


def resolve_device(device: Any) -> torch.device:
    """The torch.device to train on; a device this machine lacks is refused by name."""
    name = check_device(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(name)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: this PyTorch sees no CUDA GPU (torch.cuda.is_available() is "
                              "False); use device='cpu', or 'auto' to take a GPU only where there is one")
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                              f"(cuda:0..cuda:{count - 1})")
        # numbered, so that a trial's record says which GPU of several it trained on
        return resolved if resolved.index is not None else torch.device("cuda", torch.cuda.current_device())
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: this PyTorch has no MPS device; use device='cpu' or 'auto'")
    return resolved


def device_of(model: nn.Module) -> torch.device:
    """The device a network's weights are on (the CPU for a network without weights)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def to_device(batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """An (images, labels) batch on ``device``; a batch already there is returned as it is."""
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic cuDNN algorithms while training on CUDA; the user's flags afterwards."""
    if device.type != "cuda":
        yield
        return
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
