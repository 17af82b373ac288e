"""Kernel Inception Distance (Binkowski et al. 2018), DESIGN B4.

Polynomial kernel k(x, y) = (x.y / d + 1)^3; unbiased MMD^2 averaged over random subsets
(100 subsets of size min(n1, n2, 1000) by default), each subset drawn without replacement.
"""

from __future__ import annotations

import numpy as np

from ganforensics.console import warn
from ganforensics.errors import InputError
from ganforensics.seeding import DEFAULT_SEED


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel between two feature sets (m, d)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(
    feats1: np.ndarray,
    feats2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD^2 over `subsets` random subsets."""
    f1 = np.asarray(feats1, dtype=np.float64)
    f2 = np.asarray(feats2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise InputError(f"KID: feature arrays must be (N, D) with equal D, got {f1.shape} "
                         f"and {f2.shape}")
    m = min(len(f1), len(f2), int(subset_size))
    if m < 2:
        raise InputError("KID: needs at least 2 images in each set")
    if m == len(f1) == len(f2) and subsets > 1:
        warn(f"KID: each subset holds all {m} images of both sets, so every subset is the same "
             "and kid_std is 0; it says nothing about uncertainty (use more images)")
    rng = np.random.default_rng(seed)
    vals = np.empty(int(subsets))
    for i in range(int(subsets)):
        a = f1[rng.choice(len(f1), m, replace=False)]
        b = f2[rng.choice(len(f2), m, replace=False)]
        vals[i] = polynomial_mmd2(a, b)
    return float(vals.mean()), float(vals.std())
