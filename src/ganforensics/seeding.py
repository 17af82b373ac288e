"""Seeds: every random choice takes one; derived seeds are stable hashes."""

from __future__ import annotations

import hashlib
import random

import numpy as np

DEFAULT_SEED = 2021


def derive_seed(*parts: object) -> int:
    """A 63-bit seed derived deterministically from `parts` (e.g. image id and op name)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)


def rng_for(*parts: object) -> np.random.Generator:
    """A NumPy generator seeded from `parts`."""
    return np.random.default_rng(derive_seed(*parts))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    # imported here, not at the top: torch takes seconds to import, and the data layer (which
    # imports this module) and the light commands must not pay for it
    import torch

    torch.manual_seed(seed)
