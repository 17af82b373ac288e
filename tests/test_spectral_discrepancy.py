"""The spectral discrepancy against hand-computed values: top band only, sign, zero."""

from __future__ import annotations

import numpy as np
import pytest

from ganforensics.spectral.discrepancy import spectral_discrepancy


def test_only_the_top_band_counts() -> None:
    real = np.zeros((3, 8))
    fake = np.zeros((4, 8))
    fake[:, :6] = 50.0  # differences below the top quarter do not count
    fake[:, 6:] = [-2.0, 4.0]
    assert spectral_discrepancy(real, fake, 0.25) == 3.0  # (|-2| + |4|) / 2
    assert spectral_discrepancy(real, fake, 0.25, signed=True) == 1.0  # (-2 + 4) / 2
    assert spectral_discrepancy(real, fake, 1.0) == (6 * 50 + 6) / 8


def test_means_over_images_before_the_difference() -> None:
    real = np.array([[0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 3.0, 5.0]])  # mean top: 2, 4
    fake = np.array([[9.0, 9.0, 1.0, 1.0]])  # top: 1, 1 -> d = -1, -3
    assert spectral_discrepancy(real, fake, 0.5) == 2.0
    assert spectral_discrepancy(real, fake, 0.5, signed=True) == -2.0


def test_deficit_is_negative_and_equal_profiles_give_zero() -> None:
    real = np.tile(np.linspace(10, 1, 12), (5, 1))
    assert spectral_discrepancy(real, real.copy()) == 0.0
    assert spectral_discrepancy(real, real.copy(), signed=True) == 0.0
    smoother = real - np.r_[np.zeros(9), [1.0, 2.0, 3.0]]
    assert spectral_discrepancy(real, smoother, signed=True) == pytest.approx(-2.0)
    assert spectral_discrepancy(real, smoother) == pytest.approx(2.0)


def test_tiny_fraction_still_uses_one_bin() -> None:
    real = np.zeros((2, 5))
    fake = np.array([[0.0, 0.0, 0.0, 1.0, 7.0]])
    assert spectral_discrepancy(real, fake, 0.01) == 7.0
