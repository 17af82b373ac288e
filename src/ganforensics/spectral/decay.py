"""High-frequency decay features of Dzanic et al. 2020 (DESIGN B2), batched.

Per image: grayscale, magnitude ``|fftshift(fft2(gray))|`` (no log), radius from the DC
coefficient (index ``(H//2, W//2)`` of the shifted spectrum), ``r_max`` = the largest radius on
the grid (a corner). Coefficients with ``r > 0.5 r_max`` are binned into equal-width radial bins
over ``(0.5 r_max, r_max]``; each bin holds the mean magnitude. The curve is smoothed by a
moving average of span 5 (shrinking symmetrically at the ends, as MATLAB's ``smooth``), the
radius normalised so that the last bin centre is 1, and a power law through the first point of
the fit range ``0.85 <= x <= 1``, ``y = y_i (x / x_1)^b``, is fitted by least squares on y with
a 1-D Nelder-Mead search started at ``b = -2`` (vectorised over the batch). Features:
``[b, y_i, y_f]`` with ``y_i`` the smoothed magnitude at the first and ``y_f`` at the last
point of the fit range.

Bin count: the published 200 bins leave most bins empty on small images. ``n_bins="auto"``
(default) uses ``ceil(0.5 r_max)`` bins, about one per unit of radius, so every bin holds
coefficients at any size (it gives 91 bins at 256 px). Any empty bin (possible with an explicit
larger ``n_bins``) is dropped before smoothing and fitting: the moving average runs over the
non-empty bins in radius order. The same bins are empty for every image of a size, so the
batch shares one set of kept bins.

Note: the fit range ``0.85..1`` of the corner radius lies entirely beyond the Nyquist circle
(``r = N/2 = 0.707 r_max`` for square images): the fit sees only the corner frequencies, where
both axes are above ~0.6 of Nyquist.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from ganforensics.errors import InputError
from ganforensics.spectral.spectra import (
    DEFAULT_CHUNK_PIXELS,
    DEFAULT_WORKERS,
    ImageStack,
    _check_dtype,
    _half_index,
    as_stack,
    map_spectra,
)

FIT_START = 0.85
SMOOTH_SPAN = 5
B0 = -2.0
FEATURE_NAMES = ("b", "y_i", "y_f")


@dataclass(frozen=True)
class DecayPlan:
    """Averaging matrix half spectrum -> non-empty radial bins over (0.5 r_max, r_max]."""

    matrix: sp.csr_matrix
    centers: np.ndarray  # bin centres (pixels of radius) of the kept bins
    x: np.ndarray  # normalised radius (last bin centre of all bins = 1)
    n_bins: int
    n_empty: int


def auto_bins(h: int, w: int) -> int:
    """Default bin count: one bin per unit of radius over (0.5 r_max, r_max]."""
    r_max = float(np.hypot(h // 2, w // 2))
    return max(4, int(np.ceil(0.5 * r_max)))


@lru_cache(maxsize=32)
def decay_plan(h: int, w: int, n_bins: int | None = None, dtype: type = np.float64) -> DecayPlan:
    """The binning used by `decay_features` for H x W images."""
    nb = auto_bins(h, w) if n_bins is None else int(n_bins)
    if nb < 2:
        raise InputError(f"n_bins must be >= 2, got {nb}")
    y, x = np.indices((h, w))
    r = np.hypot(y - h // 2, x - w // 2)
    r_max = float(r.max())
    edges = np.linspace(0.5 * r_max, r_max, nb + 1)
    # bin j holds edges[j] < r <= edges[j + 1]
    b = np.searchsorted(edges, r, side="left") - 1
    b = np.where(r > 0.5 * r_max, b, -1)
    counts = np.bincount(b[b >= 0], minlength=nb)
    kept = np.flatnonzero(counts > 0)
    lut = np.full(nb, -1, dtype=np.int64)
    lut[kept] = np.arange(len(kept))
    labels = np.where(b >= 0, lut[np.clip(b, 0, nb - 1)], -1)
    half = _half_index(h, w).ravel()
    lab = labels.ravel()
    keep = lab >= 0
    vals = 1.0 / counts[kept][lab[keep]]
    mat = sp.coo_matrix((vals, (half[keep], lab[keep])), shape=(h * (w // 2 + 1), len(kept)))
    mat = mat.tocsr()
    mat.sum_duplicates()
    centers_all = (edges[:-1] + edges[1:]) / 2
    return DecayPlan(
        matrix=mat.astype(np.dtype(dtype)),
        centers=centers_all[kept],
        x=centers_all[kept] / centers_all[-1],
        n_bins=nb,
        n_empty=int(nb - len(kept)),
    )


def radial_magnitude(
    images: ImageStack,
    *,
    n_bins: int | None = None,
    dtype: type = np.float64,
    workers: int = DEFAULT_WORKERS,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> tuple[np.ndarray, DecayPlan]:
    """Mean magnitude per non-empty radial bin beyond 0.5 r_max: ``(N, K)`` and the plan."""
    stack = as_stack(images)
    dt = _check_dtype(dtype)
    n, h, w = stack.shape[:3]
    plan = decay_plan(h, w, n_bins, dt.type)
    parts = map_spectra(
        stack, dt, lambda spec: np.abs(spec).reshape(spec.shape[0], -1) @ plan.matrix,
        workers=workers, chunk_pixels=chunk_pixels,
    )
    return np.concatenate(parts).astype(np.float64, copy=False), plan


def smooth(y: np.ndarray, span: int = SMOOTH_SPAN) -> np.ndarray:
    """Moving average along the last axis with a window shrinking symmetrically at the ends."""
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    half = (int(span) - 1) // 2
    c = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(y, axis=-1)], axis=-1)
    i = np.arange(n)
    k = np.minimum(np.minimum(i, n - 1 - i), half)
    return (c[..., i + k + 1] - c[..., i - k]) / (2 * k + 1)


def _sse(b: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum of squared errors of y ~ y[:, 0] * t^b for each row (b: (N,))."""
    pred = y[:, :1] * np.power(t[None, :], b[:, None])
    return np.sum((y - pred) ** 2, axis=1)


def fit_power_law(
    x: np.ndarray,
    y: np.ndarray,
    *,
    b0: float = B0,
    xatol: float = 1e-8,
    fatol: float = 1e-12,
    max_iter: int = 500,
) -> np.ndarray:
    """Exponent b of ``y = y[:, 0] (x / x[0])^b`` per row by 1-D Nelder-Mead (vectorised).

    Same moves and coefficients as SciPy's Nelder-Mead (reflection 1, expansion 2,
    contraction 0.5, shrink 0.5; initial step 5 % of b0), run for all rows at once.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    t = np.asarray(x, dtype=np.float64) / float(x[0])
    n = y.shape[0]
    fscale = np.maximum(np.abs(y[:, 0]) ** 2, 1e-300)
    x0 = np.full(n, float(b0))
    x1 = np.full(n, float(b0) * 1.05 if b0 != 0 else 0.00025)
    f0 = _sse(x0, t, y)
    f1 = _sse(x1, t, y)
    for _ in range(max_iter):
        swap = f1 < f0
        x0, x1 = np.where(swap, x1, x0), np.where(swap, x0, x1)
        f0, f1 = np.where(swap, f1, f0), np.where(swap, f0, f1)
        done = (np.abs(x1 - x0) <= xatol) & (np.abs(f1 - f0) <= fatol * fscale)
        if done.all():
            break
        xr = 2.0 * x0 - x1
        fr = _sse(xr, t, y)
        xe = 3.0 * x0 - 2.0 * x1
        fe = _sse(xe, t, y)
        xoc = 1.5 * x0 - 0.5 * x1
        foc = _sse(xoc, t, y)
        xic = 0.5 * x0 + 0.5 * x1
        fic = _sse(xic, t, y)
        xs = x0 + 0.5 * (x1 - x0)
        fs = _sse(xs, t, y)
        expand = fr < f0
        new_x = np.where(expand, np.where(fe < fr, xe, xr), 0.0)
        new_f = np.where(expand, np.where(fe < fr, fe, fr), 0.0)
        outside = ~expand & (fr < f1)
        oc_ok = outside & (foc <= fr)
        inside = ~expand & ~outside
        ic_ok = inside & (fic < f1)
        shrink = (outside & ~oc_ok) | (inside & ~ic_ok)
        new_x = np.where(oc_ok, xoc, np.where(ic_ok, xic, np.where(shrink, xs, new_x)))
        new_f = np.where(oc_ok, foc, np.where(ic_ok, fic, np.where(shrink, fs, new_f)))
        x1 = np.where(done, x1, new_x)
        f1 = np.where(done, f1, new_f)
    return np.where(f1 < f0, x1, x0)


def decay_features(
    images: ImageStack,
    *,
    n_bins: int | None = None,
    fit_start: float = FIT_START,
    dtype: type = np.float64,
    workers: int = DEFAULT_WORKERS,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> np.ndarray:
    """Dzanic features ``[b, y_i, y_f]`` per image: ``(N, 3)`` float64."""
    mag, plan = radial_magnitude(
        images, n_bins=n_bins, dtype=dtype, workers=workers, chunk_pixels=chunk_pixels
    )
    ys = smooth(mag)
    sel = plan.x >= fit_start - 1e-12
    if sel.sum() < 2:
        raise InputError(
            f"only {int(sel.sum())} non-empty bin(s) in the fit range x >= {fit_start}; "
            "use more bins or larger images"
        )
    xf, yf = plan.x[sel], ys[:, sel]
    b = fit_power_law(xf, yf)
    return np.stack([b, yf[:, 0], yf[:, -1]], axis=1)
