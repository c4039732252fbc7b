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


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    dataset = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator if shuffle else None)


def digits(batch_size: int = 64, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)) -> DataSplits:
    """The 1797 digits, scaled to [0, 1], split by ``seed`` into train/valid/test (60/20/20 by
    default; ``fractions`` gives the train and valid shares, test gets the rest)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("the bundled digits need scikit-learn: pip install 'tunelab[nas]'") from None
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size!r}")
    if min(fractions) <= 0 or sum(fractions) >= 1:
        raise ConfigError(f"fractions (train, valid) must be positive and sum to less than 1; got {fractions!r}")
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train, n_valid = int(fractions[0] * len(y)), int(fractions[1] * len(y))
    parts = np.split(order, [n_train, n_train + n_valid])
    loaders = [_loader(x[p], y[p], batch_size, shuffle=i == 0, seed=seed) for i, p in enumerate(parts)]
    return DataSplits(*loaders, in_channels=1, num_classes=10)
