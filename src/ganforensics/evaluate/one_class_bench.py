"""The digits preset: one-class anomaly detection on scikit-learn's bundled digits (offline),
with and without DOPING and its baselines (`ganforensics.detectors.doping.METHODS`).

Protocol (the usual one-vs-rest one): per seed, each class's images are split in half
(train / test, a seeded permutation per class); for each normal class c the detector fits the
train images of c only (64 pixel values in 0..16 as features) and scores the whole test half,
where c is normal (label 0) and the nine other classes are anomalies (label 1). AUC of the
anomaly score. Every method of one (seed, class) shares the same split and, for ``doping`` and
``prior``, the same fitted AAE, so method differences are paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import info
from ganforensics.detectors.doping import (
    DEFAULT_EDGE_QUANTILE,
    DEFAULT_RATIO,
    METHODS,
    AAEConfig,
    fit_aae,
)
from ganforensics.detectors.one_class import DEFAULT_MODEL, OneClassDetector, oversample_seed
from ganforensics.errors import ConfigError
from ganforensics.seeding import DEFAULT_SEED, derive_seed

DEFAULT_SEEDS = 3
DIGIT_CLASSES = tuple(range(10))


def _split(y: np.ndarray, seed: int) -> np.ndarray:
    """A mask of the train half: half of each class (rounded down), by a seeded permutation."""
    rng = np.random.default_rng(derive_seed(seed, "digits-split"))
    train = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        train[rng.permutation(idx)[: len(idx) // 2]] = True
    return train


def digits_benchmark(
    *, normal: Sequence[int] = DIGIT_CLASSES, seeds: int | Sequence[int] = DEFAULT_SEEDS,
    methods: Sequence[str] = METHODS, model: str = DEFAULT_MODEL,
    ratio: float = DEFAULT_RATIO, edge_quantile: float = DEFAULT_EDGE_QUANTILE,
    aae: AAEConfig | None = None, base_seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """AUC per (seed, normal class, method): columns seed, normal, method, auc, n_train,
    n_generated. `seeds`: a count (base_seed, base_seed + 1, ...) or the seeds themselves."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import roc_auc_score

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"unknown method(s) {unknown} (choose from {', '.join(METHODS)})")
    bad = [c for c in normal if c not in DIGIT_CLASSES]
    if bad or not normal:
        raise ConfigError(f"normal classes must be digits 0-9, got {list(normal)}")
    seed_list = (list(range(base_seed, base_seed + int(seeds))) if isinstance(seeds, int)
                 else [int(s) for s in seeds])
    digits = load_digits()
    x_all, y_all = digits.data.astype(np.float64), digits.target.astype(int)
    rows: list[dict[str, Any]] = []
    for seed in seed_list:
        train = _split(y_all, seed)
        x_test, y_test = x_all[~train], y_all[~train]
        for c in normal:
            x = x_all[train & (y_all == c)]
            det_seed = derive_seed(seed, "digits", c) % 2**31
            fitted = (fit_aae(x, aae, seed=oversample_seed(det_seed))
                      if {"doping", "prior"} & set(methods) and ratio > 0 else None)
            for method in methods:
                det = OneClassDetector("spectral-profile", model)  # features given directly
                det.fit_features(x, seed=det_seed, oversample=method,
                                 ratio=ratio if method != "none" else 0.0,
                                 edge_quantile=edge_quantile, aae=aae, fitted_aae=fitted)
                scores = det.anomaly_scores(x_test)
                rows.append({"seed": seed, "normal": c, "method": method,
                             "auc": float(roc_auc_score((y_test != c).astype(int), scores)),
                             "n_train": len(x),
                             "n_generated": int(det.meta["n_train"]["synthetic"])})
            info(f"digits: seed {seed}, normal class {c} done")
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Per method: AUC averaged over the normal classes per seed, then mean and sd (ddof 1)
    over seeds; the paired difference to `reference` the same way with a 95 % t-interval over
    seeds (`diff_lo`, `diff_hi`), and the share of (seed, class) cells where the method beats
    the reference."""
    from scipy.stats import t as student_t

    per_seed = table.groupby(["method", "seed"])["auc"].mean().unstack("seed")
    ref = table[table["method"] == reference].set_index(["seed", "normal"])["auc"]
    out = []
    for method, auc in per_seed.iterrows():
        cells = table[table["method"] == method].set_index(["seed", "normal"])["auc"]
        diff = (cells - ref).groupby(level="seed").mean() if len(ref) else pd.Series(dtype=float)
        n_seeds = len(auc)
        out.append({
            "method": method, "seeds": n_seeds, "auc_mean": float(auc.mean()),
            "auc_sd": float(auc.std(ddof=1)) if n_seeds > 1 else float("nan"),
            f"diff_vs_{reference}_mean": float(diff.mean()) if len(diff) else float("nan"),
            f"diff_vs_{reference}_sd": float(diff.std(ddof=1)) if len(diff) > 1
            else float("nan"),
            "diff_lo": float("nan"), "diff_hi": float("nan"),
            f"wins_vs_{reference}": float(((cells - ref) > 0).mean()) if len(ref)
            else float("nan"),
        })
        if len(diff) > 1:
            half = student_t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
            out[-1]["diff_lo"] = float(diff.mean() - half)
            out[-1]["diff_hi"] = float(diff.mean() + half)
    order = {m: i for i, m in enumerate(METHODS)}
    return pd.DataFrame(out).sort_values("method", key=lambda s: s.map(order)).reset_index(
        drop=True)
