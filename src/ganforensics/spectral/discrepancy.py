"""Spectral discrepancy between two groups of azimuthal profiles (one number per fake group)."""

from __future__ import annotations

import numpy as np

DEFAULT_TOP_FRACTION = 0.25


def spectral_discrepancy(real_profiles: np.ndarray, fake_profiles: np.ndarray,
                         top_fraction: float = DEFAULT_TOP_FRACTION, *,
                         signed: bool = False) -> float:
    """Difference of the mean fake and mean real profile over the highest-frequency bins.

    With profiles of L bins, d_j = mean_i fake[i, j] - mean_i real[i, j] and the top band the
    last k = max(1, round(L * top_fraction)) bins:

        discrepancy = (1/k) * sum_{j >= L-k} |d_j|          (signed=False, always >= 0)
        signed      = (1/k) * sum_{j >= L-k}  d_j           (signed=True)

    The signed value is > 0 for excess high-frequency energy in the fakes (e.g. checkerboard
    up-sampling artifacts) and < 0 for a deficit (smoothing up-samplers). Both are 0 only when
    the mean profiles agree on the band (the absolute one) or the differences cancel (signed).
    """
    diff = fake_profiles.mean(0) - real_profiles.mean(0)
    k = max(1, int(round(len(diff) * top_fraction)))
    top = diff[-k:]
    return float(top.mean() if signed else np.abs(top).mean())
