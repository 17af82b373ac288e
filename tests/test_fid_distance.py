"""Frechet distance vs pytorch-fid and the analytic cases of DESIGN B4; KID properties."""

from __future__ import annotations

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from ganforensics.errors import InputError
from ganforensics.metrics.fid import feature_stats, frechet_distance
from ganforensics.metrics.kid import kid, polynomial_mmd2


def _random_stats(dim: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    feats = rng.standard_normal((n, dim)) @ mix + rng.standard_normal(dim)
    return feature_stats(feats)


@pytest.mark.parametrize("dim", [64, pytest.param(2048, marks=pytest.mark.slow)])
def test_matches_pytorch_fid(dim: int) -> None:
    mu1, s1 = _random_stats(dim, dim + 500, 1)
    mu2, s2 = _random_stats(dim, dim + 500, 2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert ours > 0
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_analytic_cases() -> None:
    eye = np.eye(2048)
    assert frechet_distance(np.zeros(2048), eye, np.ones(2048), eye) == pytest.approx(2048,
                                                                                       rel=1e-12)
    mu2 = np.array([1.0, 2.0, 3.0, 4.0])
    assert frechet_distance(np.zeros(4), np.eye(4), mu2, 4 * np.eye(4)) == pytest.approx(34.0)
    mu, s = _random_stats(32, 200, 3)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(mu, s, mu, s) >= 0.0


def test_singular_covariance_is_finite_and_matches_rank_deficient_reference() -> None:
    rng = np.random.default_rng(5)
    f1, f2 = rng.standard_normal((20, 64)), rng.standard_normal((20, 64)) + 0.5
    (mu1, s1), (mu2, s2) = feature_stats(f1), feature_stats(f2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(ours) and ours > 0
    ref = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert ours == pytest.approx(ref, rel=1e-4)


def test_nan_covariance_retries_then_fails_clearly() -> None:
    s = np.eye(3)
    s[0, 0] = np.nan
    with pytest.raises((ValueError, np.linalg.LinAlgError)):
        frechet_distance(np.zeros(3), s, np.zeros(3), np.eye(3))


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(InputError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def _mmd_reference(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_kid_formula_and_behaviour() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 1.0
    assert polynomial_mmd2(x, y) == pytest.approx(_mmd_reference(x, y), rel=1e-10)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    c = rng.standard_normal((300, 16)) * 1.5 + 0.5
    same, _ = kid(a, b, subsets=20, subset_size=100, seed=1)
    diff, std = kid(a, c, subsets=20, subset_size=100, seed=1)
    assert abs(same) < 0.05 < diff
    assert std > 0
    assert kid(a, c, subsets=20, subset_size=100, seed=1) == (diff, std)


def test_kid_warns_when_every_subset_is_the_whole_set(capsys) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    _, std = kid(a, b, subsets=5, subset_size=1000, seed=0)
    assert std < 1e-12 and "kid_std is 0" in capsys.readouterr().err
    kid(a, b[:30], subsets=5, subset_size=1000, seed=0)  # subsets of `a` differ: no warning
    assert "kid_std" not in capsys.readouterr().err


def test_pivoted_cholesky_route_is_exact_on_rank_deficient_covariances() -> None:
    from ganforensics.metrics import fid as fidm

    rng = np.random.default_rng(6)
    f1, f2 = rng.standard_normal((12, 300)), rng.standard_normal((15, 300)) + 0.2
    (_, s1), (_, s2) = feature_stats(f1), feature_stats(f2)
    a = fidm._psd_factor(s1)
    assert a.shape == (300, 11)  # rank n - 1: an r-column factor, not a 300 x 300 one
    assert np.allclose(a @ a.T, s1, atol=1e-10)
    # reference from the exact factor (centred features / sqrt(n - 1)): no round-off rank
    centred = (f1 - f1.mean(0)) / np.sqrt(len(f1) - 1)
    ev = np.linalg.eigvalsh(centred @ s2 @ centred.T)
    exact = np.sqrt(np.clip(ev, 0, None)).sum()
    assert fidm._trace_sqrt_product(s1, s2) == pytest.approx(exact, rel=1e-8)
    # the eigh route's round-off eigenvalues of the singular S1 add a little (~1e-7 here)
    root = fidm._sqrtm_psd(s1)
    via_eigh = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    assert via_eigh == pytest.approx(exact, rel=1e-5)
