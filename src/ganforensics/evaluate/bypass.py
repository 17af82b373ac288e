"""The bypass protocol of Chandrasegaran et al. 2021 (DESIGN B2).

A spectral detector is trained on ``n`` real + ``n`` BASELINE-fake feature vectors, drawn at
random (without replacement, a fresh seed per draw, from the whole pools: not the reference
code's first 17 files), and applied to every image of each modified generator. The detection
rate of a generator is the fraction of its fakes classified fake (P(fake) >= 0.5; no threshold
calibration in this protocol). Reported: mean and standard deviation (population, ddof = 0)
over ``draws`` draws. Two sanity rows come with it: the held-out reals (the rate there is the
false-positive rate) and the held-out BASELINE fakes, both with the images not drawn in each
draw.

Features are computed once per image (they do not depend on the draw), so the draws cost only
the classifier fits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.spectral import SpectralDetector
from ganforensics.errors import ConfigError, InputError
from ganforensics.seeding import DEFAULT_SEED, derive_seed

DEFAULT_N = 100
DEFAULT_DRAWS = 10
HELDOUT_REAL = "real (held-out)"
DETECTION_THRESHOLD = 0.5

Images = np.ndarray | Sequence[np.ndarray]


def _is_features(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) and obj.ndim == 2 and np.issubdtype(obj.dtype, np.floating)


def _features(det: SpectralDetector, obj: Images, what: str) -> np.ndarray:
    if _is_features(obj):
        return np.asarray(obj, dtype=np.float64)
    if len(obj) == 0:
        raise InputError(f"{what}: no images")
    return det.features(obj)


def bypass_rates(
    kind: str,
    real: Images,
    baseline_fake: Images,
    fakes_by_generator: Mapping[str, Images],
    *,
    n: int = DEFAULT_N,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    classifier: str | None = None,
    baseline_name: str = "BASELINE",
    **options: Any,
) -> pd.DataFrame:
    """Detection rate per generator, mean and std over `draws` random draws of the training set.

    `real`, `baseline_fake` and each value of `fakes_by_generator` are images (a stack or a
    list of RGB uint8 arrays) or precomputed feature vectors (a float array ``(N, F)``, e.g.
    from `SpectralDetector(kind).features`). `options` go to `SpectralDetector` (``n_bins``,
    ``profile_length``, ``normalize``, ``k``, ...).

    Returns one row per generator (plus the held-out real and BASELINE rows) with columns
    ``generator``, ``role`` ("modified", "heldout-real", "heldout-baseline"), ``n_images``,
    ``rate_mean``, ``rate_std``, ``rates`` (the per-draw list), ``draws``, ``n_train``,
    ``kind``, ``classifier``, ``seed``.
    """
    if n < 1 or draws < 1:
        raise ConfigError(f"n and draws must be >= 1 (got n={n}, draws={draws})")
    if not fakes_by_generator:
        raise InputError("no modified generators given")
    det = SpectralDetector(kind, classifier, **options)
    fr = _features(det, real, "real images")
    fb = _features(det, baseline_fake, f"{baseline_name} fakes")
    if len(fr) < n or len(fb) < n:
        raise ConfigError(
            f"the protocol draws n = {n} real and {n} {baseline_name} images; have "
            f"{len(fr)} real and {len(fb)} {baseline_name} (lower --n)"
        )
    fg = {g: _features(det, v, f"generator {g}") for g, v in fakes_by_generator.items()}
    rates: dict[str, list[float]] = {g: [] for g in fg}
    held_real: list[float] = []
    held_base: list[float] = []
    for d in range(draws):
        rng = np.random.default_rng(derive_seed(seed, "bypass", d))
        ir = rng.choice(len(fr), n, replace=False)
        ib = rng.choice(len(fb), n, replace=False)
        x = np.concatenate([fr[ir], fb[ib]])
        y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
        det.fit_features(x, y, seed=derive_seed(seed, "bypass-fit", d))
        for g, feats in fg.items():
            p = sigmoid(det.logits_from_features(feats))
            rates[g].append(float(np.mean(p >= DETECTION_THRESHOLD)))
        rest_r = np.setdiff1d(np.arange(len(fr)), ir)
        rest_b = np.setdiff1d(np.arange(len(fb)), ib)
        if len(rest_r):
            held_real.append(float(np.mean(sigmoid(det.logits_from_features(fr[rest_r])) >= 0.5)))
        if len(rest_b):
            held_base.append(float(np.mean(sigmoid(det.logits_from_features(fb[rest_b])) >= 0.5)))
    rows = []

    def _row(name: str, role: str, n_img: int, r: list[float]) -> dict[str, Any]:
        arr = np.asarray(r, dtype=np.float64)
        return {
            "generator": name, "role": role, "n_images": int(n_img),
            "rate_mean": float(arr.mean()) if len(arr) else float("nan"),
            "rate_std": float(arr.std()) if len(arr) else float("nan"),
            "rates": [round(v, 6) for v in r], "draws": int(draws), "n_train": int(n),
            "kind": kind, "classifier": det.classifier, "seed": int(seed),
        }

    for g, r in rates.items():
        rows.append(_row(g, "modified", len(fg[g]), r))
    rows.append(_row(HELDOUT_REAL, "heldout-real", len(fr) - n, held_real))
    rows.append(_row(f"{baseline_name} (held-out)", "heldout-baseline", len(fb) - n, held_base))
    return pd.DataFrame(rows)
