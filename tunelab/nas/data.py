"""Bundled data for architecture search: scikit-learn's handwritten digits as 8x8 images.

It ships with scikit-learn, so every example, test and benchmark runs offline and in seconds on
a CPU. Everything else in :mod:`tunelab.nas` takes plain torch DataLoaders, so any data set
works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from tunelab.errors import ConfigError


@dataclass
class DataSplits:
    """Training data (network weights), validation data (architecture choices, model selection)
    and test data (the final, once-only measure of a found architecture)."""

    train: DataLoader
    valid: DataLoader
    test: DataLoader
    in_channels: int
    num_classes: int


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool) -> DataLoader:
    """The training loader shuffles from torch's global generator, which every run seeds first
    (``seed_everything(trial.seed)``): with a generator of its own, seeded once when the data was
    built, the order of a run depended on how many epochs the process had trained before it, so
    the same seed gave another result in a second run, or after a resume."""
    dataset = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def split_arrays(x: np.ndarray, y: np.ndarray, batch_size: int = 64, seed: int = 0,
                 fractions: tuple[float, float] = (0.6, 0.2)) -> DataSplits:
    """Shuffle images ``x`` (N, C, H, W) and integer labels ``y`` with ``seed`` and split them
    into train/valid/test loaders (``fractions`` are the train and valid shares)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size!r}")
    if len(fractions) != 2 or min(fractions) <= 0 or sum(fractions) >= 1:
        raise ConfigError(f"fractions (train, valid) must be positive and sum to less than 1; got {fractions!r}")
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    if x.ndim != 4 or len(x) != len(y):
        raise ConfigError(f"need images of shape (N, C, H, W) and N labels; got {x.shape} and {y.shape}")
    order = np.random.default_rng(seed).permutation(len(y))
    n_train, n_valid = int(fractions[0] * len(y)), int(fractions[1] * len(y))
    parts = np.split(order, [n_train, n_train + n_valid])
    if min(len(p) for p in parts) == 0:
        raise ConfigError(f"{len(y)} examples are too few to split into train, valid and test")
    loaders = [_loader(x[p], y[p], batch_size, shuffle=i == 0) for i, p in enumerate(parts)]
    return DataSplits(*loaders, in_channels=x.shape[1], num_classes=int(y.max()) + 1)


def digits(batch_size: int = 64, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2),
           limit: int | None = None) -> DataSplits:
    """The 1797 digits (or the first ``limit``), scaled to [0, 1], split by ``seed`` into
    train/valid/test (60/20/20 by default)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("the bundled digits need scikit-learn: pip install 'tunelab[nas]'") from None
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit is how many images to keep (at least 1), or None for all; got {limit!r}")
    data = load_digits()
    x, y = (data.images / 16.0)[:, None, :, :], data.target
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return split_arrays(x, y, batch_size, seed, fractions)
