"""Bundled data for architecture search: scikit-learn's handwritten digits as 8x8 images.

It ships with scikit-learn, so every example, test and benchmark runs offline and in seconds on
a CPU. Everything else in :mod:`tunelab.nas` takes plain torch DataLoaders, so any data set
works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    #: How to build these splits again, ``{"function": "module:name", "arguments": {...}}``, or
    #: None. :func:`digits` sets it, so that a study's record can name the data an
    #: :class:`~tunelab.nas.ArchitectureObjective` trained on and ``tunelab reproduce`` can
    #: rebuild it; splits of arbitrary arrays cannot be rebuilt from a record, so they have none.
    recipe: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: whether :meth:`check_batches` has passed (it runs once per splits)
    _checked: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("in_channels", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"DataSplits: {name} must be a positive integer; got {value!r}")

    def check_batches(self) -> None:
        """Check the first batch of each split against ``in_channels`` and ``num_classes``.

        Splits built by hand (``DataSplits(train, valid, test, 3, 10)`` over 1-channel images)
        used to fail in every trial with a shape error from inside torch, or, for labels beyond
        ``num_classes``, with an index error of the loss. One batch per split is cheap, and the
        result is kept, so this runs once. The look is taken under a forked random state:
        drawing a shuffled batch consumes torch's global generator, and a run that is seeded
        before it is checked must train exactly as it did before the check existed."""
        if self._checked:
            return
        with torch.random.fork_rng(devices=[]):
            for split in ("train", "valid", "test"):
                try:
                    batch = next(iter(getattr(self, split)))
                except StopIteration:
                    continue  # an empty split says so where it is used (evaluate, training)
                self._check_batch(split, batch)
        self._checked = True

    def _check_batch(self, split: str, batch: Any) -> None:
        where = "training" if split == "train" else "validation" if split == "valid" else "test"
        try:
            x, y = batch
        except (TypeError, ValueError):
            raise ConfigError(f"DataSplits: its {where} loader must yield (images, labels) pairs; "
                              f"got {type(batch).__name__}") from None
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(f"DataSplits: its {where} batches must be images of shape (N, C, H, W); got {shape}")
        if x.shape[1] != self.in_channels:
            raise ConfigError(f"DataSplits says in_channels={self.in_channels}, and its {where} batches have "
                              f"{x.shape[1]} channel{'s' if x.shape[1] != 1 else ''} (images of shape "
                              f"{tuple(x.shape[1:])})")
        # The trainers here learn and measure class indices (cross-entropy on them, and accuracy as
        # argmax == label): float labels, a column of labels or one-hot rows passed this check and
        # then failed inside torch in every trial, so they are said here, with the conversion
        # (torch's loss takes int64 or uint8 indices only: int32 ones, common from numpy, failed too)
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype not in (torch.long, torch.uint8):
            got = (f"{type(y).__name__}" if not isinstance(y, torch.Tensor)
                   else f"{str(y.dtype).replace('torch.', '')} labels of shape {tuple(y.shape)}")
            raise ConfigError(f"DataSplits: its {where} labels must be class indices, a 1-D integer tensor "
                              f"(torch.long) of one label per image; got {got}. Convert them in the data set "
                              "(y.long(); y.argmax(1) for one-hot rows; y.squeeze(1) for a column), or build the "
                              "splits with nas.data.split_arrays(x, y), which does")
        if len(y) and not 0 <= int(y.min()) <= int(y.max()) < self.num_classes:
            bad = int(y.max()) if int(y.max()) >= self.num_classes else int(y.min())
            raise ConfigError(f"DataSplits says num_classes={self.num_classes} (labels 0..{self.num_classes - 1}), "
                              f"and its {where} batches have label {bad}")


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool) -> DataLoader:
    """The training loader shuffles from torch's global generator, which every run seeds first
    (``seed_everything(trial.seed)``): with a generator of its own, seeded once when the data was
    built, the order of a run depended on how many epochs the process had trained before it, so
    the same seed gave another result in a second run, or after a resume.

    A training loader drops a last batch of a single image (a different one each epoch, as it
    shuffles): batch norm cannot normalise one value per channel, so where the maps shrink to
    1x1 (4x4 images after two reduction cells) 65 images in batches of 64 failed every trial."""
    dataset = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    lone_last = shuffle and len(y) > 1 and len(y) % batch_size == 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=lone_last)


def split_arrays(x: np.ndarray, y: np.ndarray, batch_size: int = 64, seed: int = 0,
                 fractions: tuple[float, float] = (0.6, 0.2)) -> DataSplits:
    """Shuffle images ``x`` (N, C, H, W) and integer labels ``y`` with ``seed`` and split them
    into train/valid/test loaders (``fractions`` are the train and valid shares)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1; got {batch_size!r}")
    if len(fractions) != 2 or min(fractions) <= 0 or sum(fractions) >= 1:
        raise ConfigError(f"fractions (train, valid) must be positive and sum to less than 1; got {fractions!r}")
    x, labels = np.asarray(x, dtype=np.float32), np.asarray(y)
    if x.ndim != 4 or labels.ndim != 1 or len(x) != len(labels):
        raise ConfigError(f"need images of shape (N, C, H, W) and N labels; got {x.shape} and {labels.shape}")
    if x.shape[3] in (1, 3, 4) and min(x.shape[1:3]) > 4:
        # Images from PIL, OpenCV, matplotlib or TensorFlow are (N, H, W, C): taken as they came,
        # 32x32 RGB images trained as 32-channel images 3 pixels wide, without an error.
        raise ConfigError(f"images of shape {x.shape} look channels-last (N, H, W, C) with {x.shape[3]} "
                          f"channel{'s' if x.shape[3] != 1 else ''}; split_arrays takes (N, C, H, W): pass "
                          "x.transpose(0, 3, 1, 2)")
    y = _class_indices(labels)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train, n_valid = int(fractions[0] * len(y)), int(fractions[1] * len(y))
    parts = np.split(order, [n_train, n_train + n_valid])
    if min(len(p) for p in parts) == 0:
        raise ConfigError(f"{len(y)} examples are too few to split into train, valid and test")
    loaders = [_loader(x[p], y[p], batch_size, shuffle=i == 0) for i, p in enumerate(parts)]
    return DataSplits(*loaders, in_channels=x.shape[1], num_classes=int(y.max()) + 1)


def _class_indices(labels: np.ndarray) -> np.ndarray:
    """Labels as class indices 0..K-1. A cast alone turned labels 0.3 or 0.7 into class 0 (and
    strings failed inside numpy); a negative label failed at the first training batch, deep in
    torch. Integral floats (0.0, 1.0) are accepted: they are how many files store labels."""
    try:
        as_float = labels.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"labels must be integer class indices 0..K-1; got {labels.dtype} values") from None
    if not np.isfinite(as_float).all() or (as_float != np.round(as_float)).any() or (as_float < 0).any():
        bad = labels[~(np.isfinite(as_float) & (as_float == np.round(as_float)) & (as_float >= 0))][:3]
        raise ConfigError(f"labels must be integer class indices 0..K-1; got {bad.tolist()} among them")
    return as_float.astype(np.int64)


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
    splits = split_arrays(x, y, batch_size, seed, fractions)
    if seed is not None:  # a split drawn from fresh entropy cannot be drawn again
        splits.recipe = {"function": f"{__name__}:digits",
                         "arguments": {"batch_size": int(batch_size), "seed": int(seed),
                                       "fractions": [float(f) for f in fractions], "limit": limit}}
    return splits
