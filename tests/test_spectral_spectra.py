"""Spectra: parity with an independent plain-loop float64 reference, variants, decay fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from ganforensics.errors import InputError
from ganforensics.spectral.decay import (
    decay_features,
    decay_plan,
    fit_power_law,
    radial_magnitude,
    smooth,
)
from ganforensics.spectral.spectra import (
    clean_plan,
    clean_profiles,
    durall_length,
    durall_profiles,
    mean_log_spectrum,
    resample_profiles,
    to_gray,
)


def _gray_loop(img: np.ndarray) -> np.ndarray:
    g = np.zeros(img.shape[:2])
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            r, gg, b = (float(v) for v in img[y, x])
            g[y, x] = 0.299 * r + 0.587 * gg + 0.114 * b
    return g


def _durall_loop(img: np.ndarray) -> np.ndarray:
    """Reference semantics written out pixel by pixel (float64)."""
    g = _gray_loop(img)
    spec = np.fft.fftshift(np.fft.fft2(g)) + 1e-8
    mag = 20.0 * np.log(np.abs(spec))
    h, w = g.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for y in range(h):
        for x in range(w):
            b = int(np.floor(np.hypot(x - cx, y - cy)))
            sums[b] = sums.get(b, 0.0) + float(mag[y, x])
            counts[b] = counts.get(b, 0) + 1
    kept = sorted(sums)[1:-1]  # first and last bins dropped as the reference does
    return np.array([sums[k] / counts[k] for k in kept])


@pytest.mark.parametrize("size,length", [(32, 20), (33, 21), (64, 43), (128, 88)])
def test_durall_matches_plain_loop(size: int, length: int, rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    got = durall_profiles(imgs)
    ref = np.stack([_durall_loop(im) for im in imgs])
    assert got.shape == (2, length) == ref.shape
    assert durall_length(size) == length
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)
    # float32 mode: same bins, single-precision error only
    got32 = durall_profiles(imgs, dtype=np.float32)
    np.testing.assert_allclose(got32, ref, rtol=1e-5)
    assert not np.allclose(got32, ref, rtol=1e-12, atol=0)


def test_durall_lengths_and_nonsquare(rng: np.random.Generator) -> None:
    assert [durall_length(s) for s in (32, 64, 128, 256)] == [20, 43, 88, 179]
    img = rng.integers(0, 256, (1, 24, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(durall_profiles(img)[0], _durall_loop(img[0]), rtol=1e-9)


def test_chunking_does_not_change_results(rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    a = durall_profiles(imgs)
    b = durall_profiles(imgs, chunk_pixels=3 * 32 * 32, workers=1)
    np.testing.assert_allclose(a, b, rtol=1e-13)
    c = durall_profiles(imgs, chunk_pixels=2 * 32 * 32, workers=2)  # 4 chunks on 2 threads
    np.testing.assert_allclose(c, a, rtol=1e-13)
    c32 = durall_profiles(imgs, dtype=np.float32, chunk_pixels=2 * 32 * 32, workers=2)
    np.testing.assert_allclose(c32, durall_profiles(imgs, dtype=np.float32), rtol=1e-6)
    # a list of arrays works like a stack; gray stacks are accepted as is
    np.testing.assert_allclose(durall_profiles(list(imgs)), a, rtol=1e-13)
    np.testing.assert_allclose(durall_profiles(to_gray(imgs)), a, rtol=1e-13)


def test_clean_variant_matches_loop(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    g = _gray_loop(img[0])
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2 / g.size
    sums = np.zeros(9)
    counts = np.zeros(9)
    for y in range(16):
        for x in range(16):
            r = np.hypot((y - 8) * 2 / 16, (x - 8) * 2 / 16) * 8
            b = int(np.rint(r))
            if b <= 8:
                sums[b] += power[y, x]
                counts[b] += 1
    got = clean_profiles(img)[0]
    np.testing.assert_allclose(got, sums / counts, rtol=1e-9)
    assert got[0] == pytest.approx(g.mean() ** 2 * g.size, rel=1e-9)  # DC bin
    plan = clean_plan(16, 16)
    assert plan.freq[0] == 0.0 and plan.freq[-1] == 1.0


def test_float32_mode_keeps_dc_and_inputs(rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    gray32 = to_gray(imgs, np.float32)
    before = gray32.copy()
    c32 = clean_profiles(gray32, dtype=np.float32)
    np.testing.assert_array_equal(gray32, before)  # the caller's array is untouched
    c64 = clean_profiles(imgs)
    np.testing.assert_allclose(c32[:, 0], c64[:, 0], rtol=1e-6)  # DC restored exactly
    np.testing.assert_allclose(c32, c64, rtol=1e-4)
    m32 = mean_log_spectrum(imgs, dtype=np.float32)
    np.testing.assert_allclose(m32, mean_log_spectrum(imgs), rtol=1e-4)


def test_mean_log_spectrum_and_errors(rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, (3, 20, 18, 3), dtype=np.uint8)
    g = to_gray(imgs)
    ref = (20 * np.log(np.abs(np.fft.fftshift(np.fft.fft2(g), axes=(1, 2)) + 1e-8))).mean(0)
    np.testing.assert_allclose(mean_log_spectrum(imgs), ref, rtol=1e-10)
    with pytest.raises(InputError, match="differ in size"):
        durall_profiles([imgs[0], imgs[0, :10]])
    with pytest.raises(InputError, match="dtype"):
        durall_profiles(imgs, dtype=np.float16)


def test_resample_profiles() -> None:
    p = np.array([[0.0, 1.0, 4.0]])
    np.testing.assert_array_equal(resample_profiles(p, 3), p)
    np.testing.assert_allclose(resample_profiles(p, 5), [[0.0, 0.5, 1.0, 2.5, 4.0]])


def test_smooth_and_power_law_fit(rng: np.random.Generator) -> None:
    np.testing.assert_allclose(smooth(np.array([1.0, 2, 3, 10, 5, 6])), [1, 2, 4.2, 5.2, 7, 6])
    x = np.linspace(0.85, 1.0, 9)
    y = np.stack([5.0 * (x / x[0]) ** -3.5, 2.0 * (x / x[0]) ** 1.25])
    np.testing.assert_allclose(fit_power_law(x, y), [-3.5, 1.25], atol=1e-6)
    noisy = y * (1 + 0.05 * rng.standard_normal(y.shape))
    noisy[:, 0] = y[:, 0]
    ours = fit_power_law(x, noisy)
    for row, b in zip(noisy, ours, strict=True):
        res = minimize(
            lambda v, row=row: np.sum((row - row[0] * (x / x[0]) ** v[0]) ** 2),
            x0=[-2.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14},
        )
        assert b == pytest.approx(res.x[0], abs=1e-6)


def test_decay_bins_scale_with_size_and_empty_bins_dropped(rng: np.random.Generator) -> None:
    for size in (32, 64, 256):
        plan = decay_plan(size, size)
        assert plan.n_empty == 0 and (plan.x >= 0.85).sum() >= 4
    published = decay_plan(32, 32, 200)
    assert published.n_empty > 100  # the published 200 bins are mostly empty at 32 px
    assert len(published.x) == 200 - published.n_empty
    imgs = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    feats = decay_features(imgs, n_bins=200)
    assert feats.shape == (3, 3) and np.isfinite(feats).all()


def test_decay_features_match_loop(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    g = _gray_loop(img[0])
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g)))
    r = np.hypot(*np.meshgrid(np.arange(32) - 16, np.arange(32) - 16, indexing="ij"))
    r_max = r.max()
    nb = decay_plan(32, 32).n_bins
    edges = np.linspace(0.5 * r_max, r_max, nb + 1)
    means = []
    for j in range(nb):
        sel = (r > edges[j]) & (r <= edges[j + 1])
        means.append(mag[sel].mean())
    got, _ = radial_magnitude(img)
    np.testing.assert_allclose(got[0], means, rtol=1e-9)
    feats = decay_features(img)[0]
    ys = smooth(np.array(means))
    centers = (edges[:-1] + edges[1:]) / 2
    xs = centers / centers[-1]
    fit = xs >= 0.85
    assert feats[1] == pytest.approx(ys[fit][0], rel=1e-9)
    assert feats[2] == pytest.approx(ys[fit][-1], rel=1e-9)
    xf, yf = xs[fit], ys[fit]
    res = minimize(
        lambda v: np.sum((yf - yf[0] * (xf / xf[0]) ** v[0]) ** 2),
        x0=[-2.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12},
    )
    assert feats[0] == pytest.approx(res.x[0], abs=1e-5)
