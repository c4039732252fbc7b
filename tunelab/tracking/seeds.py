"""Randomness that flows from one seed: study seed -> searcher seed and per-trial seeds.

Per-trial seeds are a pure function of (study seed, trial number), so a trial re-run from its
record gets the seed it had, whichever process or machine ran it first.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys

import numpy as np

_MAX_SEED = 2**31 - 1  # what every library (torch, numpy's legacy seed, TensorFlow) accepts


def derive_seed(root: int, *path: int | str) -> int:
    """A seed for a part of a study, e.g. ``derive_seed(study_seed, "trial", 7)``.

    A keyed hash: independent-looking seeds for neighbouring paths, stable across processes,
    machines and Python versions (unlike ``hash``), and cheap enough to run for every trial.
    """
    text = "/".join([str(int(root))] + [f"{type(p).__name__}:{p}" for p in path])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MAX_SEED


def new_seed() -> int:
    """A fresh study seed for users who did not give one (recorded, so still reproducible)."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0] & _MAX_SEED)


def trial_seed(study_seed: int, number: int) -> int:
    return derive_seed(study_seed, "trial", number)


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, numpy's global generator and PyTorch (when it is imported).

    Call it first thing in an objective with ``trial.seed``, after importing torch. Hash
    randomisation (``PYTHONHASHSEED``) cannot change in a running interpreter: it is set here
    for child processes only, so set it before starting Python if set/dict order matters.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= 2**32 - 1:
        raise ValueError(f"seed_everything needs an integer in [0, 2**32 - 1]; got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    return seed
