"""The paired metric: fraction of pairs in which the fake scores above its own source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganforensics.metrics.paired import pair_win, pair_wins


def test_all_wins_give_one_with_a_degenerate_interval() -> None:
    out = pair_win(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3]), resamples=50, seed=1)
    assert out == {"pair_win": 1.0, "pair_win_lo": 1.0, "pair_win_hi": 1.0}


def test_ties_count_one_half_and_losses_zero() -> None:
    assert pair_wins(np.array([0.5, 0.2, 0.9]), np.array([0.5, 0.4, 0.1])).tolist() == \
        [0.5, 0.0, 1.0]
    out = pair_win(np.full(4, 0.3), np.full(4, 0.3), resamples=0)
    assert out["pair_win"] == 0.5 and math.isnan(out["pair_win_lo"])


def test_pairing_matters_not_the_pooled_ranking() -> None:
    # every fake above every real but one pair: the fake's own source is what counts
    fake = np.array([0.6, 0.7, 0.8, 0.9])
    real = np.array([0.1, 0.2, 0.3, 0.95])
    out = pair_win(fake, real, resamples=2000, seed=3)
    assert out["pair_win"] == 0.75
    assert 0.0 <= out["pair_win_lo"] <= 0.75 <= out["pair_win_hi"] <= 1.0
    assert out["pair_win_lo"] < out["pair_win_hi"]
    # seeded: the same interval again, another seed may differ
    assert pair_win(fake, real, resamples=2000, seed=3) == out


def test_bad_shapes_and_empty_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        pair_wins(np.zeros(3), np.zeros(2))
    assert math.isnan(pair_win(np.zeros(0), np.zeros(0))["pair_win"])
