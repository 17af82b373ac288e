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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import warn
from ganforensics.data.manifest import usable
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.spectral import SpectralDetector
from ganforensics.errors import ConfigError, InputError
from ganforensics.io.loading import load_images
from ganforensics.seeding import DEFAULT_SEED, derive_seed
from ganforensics.spectral.collection import collect_named

DEFAULT_N = 100
DEFAULT_DRAWS = 10
DEFAULT_KIND = "spectral-decay"
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


def _detected(det: SpectralDetector, feats: np.ndarray) -> float:
    """The fraction of feature vectors classified fake (P(fake) >= DETECTION_THRESHOLD)."""
    return float(np.mean(sigmoid(det.logits_from_features(feats)) >= DETECTION_THRESHOLD))


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
            rates[g].append(_detected(det, feats))
        rest_r = np.setdiff1d(np.arange(len(fr)), ir)
        rest_b = np.setdiff1d(np.arange(len(fb)), ib)
        if len(rest_r):
            held_real.append(_detected(det, fr[rest_r]))
        if len(rest_b):
            held_base.append(_detected(det, fb[rest_b]))
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


# ---------------------------------------------------------------------- from files


@dataclass
class BypassRun:
    """`bypass_rates`' table for image files, with what was decided and what was skipped."""

    table: pd.DataFrame
    kind: str
    baseline: str
    errors: list[tuple[str, str]]
    """`(path, reason)` of the files that could not be decoded (left out)."""


def detector_options(det: SpectralDetector) -> dict[str, Any]:
    """The feature and classifier settings of a (loaded) spectral detector, as the options
    `bypass_rates` passes to `SpectralDetector`: a fresh detector extracts the same features."""
    if det.kind == "spectral-profile":
        options: dict[str, Any] = {"profile_length": det.profile_length,
                                   "normalize": det.normalize}
    else:
        options = {} if det.n_bins is None else {"n_bins": det.n_bins}
        options["fit_start"] = det.fit_start
    return options | {"k": det.k, "hidden": det.hidden}


def _training_pools(tdf: pd.DataFrame, baseline: str | None) -> tuple[list[str], list[str], str]:
    """Paths of the usable reals and BASELINE fakes of --train, and the BASELINE's name."""
    tdf = usable(tdf)
    lab = pd.to_numeric(tdf["label"], errors="coerce").astype("float64")
    real_paths = tdf.loc[(lab == 0).to_numpy(), "abspath"].astype(str).tolist()
    fake_df = tdf[(lab == 1).to_numpy()]
    gens = sorted(fake_df["generator"].astype(str).unique())
    if baseline is None:
        if len(gens) != 1:
            raise ConfigError(
                f"--train holds fakes of {len(gens)} generators ({', '.join(gens) or 'none'}); "
                "name the BASELINE one with --baseline"
            )
        baseline = gens[0]
    elif baseline not in gens:
        raise ConfigError(f"--baseline {baseline!r} not among --train fakes ({', '.join(gens)})")
    base_paths = fake_df.loc[fake_df["generator"].astype(str) == baseline, "abspath"]
    return real_paths, base_paths.astype(str).tolist(), baseline


def _fake_groups(inputs: Sequence[str | os.PathLike[str]]) -> dict[str, list[str]]:
    """Paths of the usable fakes of --fakes per generator (rows labelled real are ignored)."""
    df = collect_named(inputs)
    lab = pd.to_numeric(df["label"], errors="coerce").astype("float64")
    reals = int((lab == 0).sum())
    if reals:
        warn(f"--fakes: ignoring {reals} row(s) labelled real")
    df = usable(df[~(lab == 0).to_numpy()])
    groups: dict[str, list[str]] = {}
    for gen, path in zip(df["generator"].fillna("unknown").astype(str),
                         df["abspath"].astype(str), strict=True):
        groups.setdefault(gen, []).append(path)
    if not groups:
        raise InputError("--fakes: no fake images found")
    return groups


def bypass_files(
    train: Sequence[str | os.PathLike[str]],
    fakes: Sequence[str | os.PathLike[str]],
    *,
    detector: SpectralDetector | None = None,
    kind: str = DEFAULT_KIND,
    classifier: str | None = None,
    baseline: str | None = None,
    n: int = DEFAULT_N,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    n_bins: int | None = None,
) -> BypassRun:
    """`bypass_rates` on image files: reals and BASELINE fakes from `train` (manifests or
    folders), modified generators' fakes from `fakes` (grouped by generator; an unlabelled
    folder is one generator named after it).

    With a loaded `detector`, its kind, classifier and feature settings replace `kind` and
    `classifier` (its weights are not used: each draw trains anew); `n_bins` overrides either.
    Undecodable files are left out and returned in `errors` (no warning here).
    """
    options: dict[str, Any] = {}
    if detector is not None:
        kind, classifier = detector.kind, detector.classifier
        options = detector_options(detector)
    if n_bins is not None:
        options["n_bins"] = n_bins
    real_paths, base_paths, baseline = _training_pools(collect_named(train), baseline)
    errors: list[tuple[str, str]] = []

    def decode(paths: list[str], what: str) -> list[np.ndarray]:
        loaded = load_images(paths, what=what, progress=True, quiet=True)
        errors.extend(loaded.errors)
        return loaded.images

    real = decode(real_paths, "reals")
    base = decode(base_paths, baseline)
    groups = {g: decode(p, g) for g, p in _fake_groups(fakes).items()}
    table = bypass_rates(
        kind, real, base, {g: v for g, v in groups.items() if v}, n=n, draws=draws, seed=seed,
        classifier=classifier, baseline_name=baseline, **options,
    )
    return BypassRun(table, kind, baseline, errors)
