"""`metrics.fid.fid_bootstrap`: FID over seeded bootstrap resamples of the feature rows."""

from __future__ import annotations

import numpy as np
import pytest

from ganforensics.errors import InputError
from ganforensics.metrics.fid import feature_stats, fid_bootstrap, frechet_distance


def _feats(n: int, dim: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return np.abs(rng.standard_normal((n, dim)) @ mix + 1.0 + shift)  # non-negative, as pooled


@pytest.mark.parametrize(("n1", "n2", "dim"), [(40, 25, 64), (25, 40, 64), (60, 50, 8)])
def test_each_resample_is_the_fid_of_the_resampled_rows(n1, n2, dim) -> None:
    real, fake = _feats(n1, dim, 0.0, 1), _feats(n2, dim, 0.3, 2)
    values = fid_bootstrap(real, fake, resamples=4, seed=7)
    rng = np.random.default_rng(7)  # the documented draw order: real, then fake indices
    for v in values:
        i1, i2 = rng.integers(0, n1, n1), rng.integers(0, n2, n2)
        ref = frechet_distance(*feature_stats(real[i1]), *feature_stats(fake[i2]))
        assert v == pytest.approx(ref, rel=1e-6)


def test_seeded_and_the_spread_shrinks_with_more_rows() -> None:
    real, fake = _feats(400, 32, 0.0, 3), _feats(400, 32, 0.2, 4)
    a = fid_bootstrap(real, fake, resamples=30, seed=1)
    assert np.array_equal(a, fid_bootstrap(real, fake, resamples=30, seed=1))
    assert not np.array_equal(a, fid_bootstrap(real, fake, resamples=30, seed=2))
    small = fid_bootstrap(real[:40], fake[:40], resamples=30, seed=1)
    assert a.std(ddof=1) < small.std(ddof=1)
    assert (a > 0).all()


def test_bad_shapes_are_input_errors() -> None:
    with pytest.raises(InputError, match="FID bootstrap"):
        fid_bootstrap(np.zeros((5, 3)), np.zeros((5, 4)), resamples=2)
    with pytest.raises(InputError, match="FID bootstrap"):
        fid_bootstrap(np.zeros((1, 3)), np.zeros((5, 3)), resamples=2)
