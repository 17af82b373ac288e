"""Detection metrics (DESIGN B5): fake = 1 is the positive class, scores are P(fake).

Threshold-free: AP, ROC-AUC, EER, TPR at 1 % / 5 % FPR. At a threshold (decision "fake" when
P(fake) >= threshold): accuracy, real accuracy (TNR), fake accuracy (TPR), balanced accuracy;
reported at 0.5 and at the threshold calibrated on validation data (`_cal`). An "oracle"
threshold chosen on the test data itself is computed only when asked and is named so.
Per generator: each fake generator against all reals, plus the mean over generators and the
worst generator (`add_worst_generator`: min-acc, as AIGIBench-style benchmarks report it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganforensics.metrics.bootstrap import bootstrap_intervals, interval_columns
from ganforensics.metrics.threshold import DEFAULT_THRESHOLD, calibrate_threshold
from ganforensics.seeding import DEFAULT_SEED, derive_seed

FPR_TARGETS = (0.01, 0.05)


def _at_threshold(labels: np.ndarray, probs: np.ndarray, t: float) -> dict[str, float]:
    pred = probs >= t
    real, fake = labels == 0, labels == 1
    real_acc = float((~pred[real]).mean()) if real.any() else math.nan
    fake_acc = float(pred[fake].mean()) if fake.any() else math.nan
    return {
        "acc": float((pred == (labels == 1)).mean()) if len(labels) else math.nan,
        "real_acc": real_acc,
        "fake_acc": fake_acc,
        "bacc": (real_acc + fake_acc) / 2,
    }


def roc_points(labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """ROC curve points (fpr, tpr, threshold) as scikit-learn computes them."""
    # sklearn.metrics is imported where it is used: it adds ~1 s to every command's start-up
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(labels, probs, pos_label=1, drop_intermediate=False)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


def pr_points(labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """Precision-recall curve points (recall, precision, threshold)."""
    from sklearn.metrics import precision_recall_curve  # see roc_points

    prec, rec, thr = precision_recall_curve(labels, probs, pos_label=1)
    return pd.DataFrame({"recall": rec, "precision": prec, "threshold": np.append(thr, np.nan)})


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """EER: where FPR equals the miss rate 1 - TPR, linearly interpolated along the ROC."""
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increasing along the curve from -1 to +1
    k = int(np.searchsorted(diff, 0.0))
    if k == 0:
        return float(fpr[0])
    if k >= len(diff):
        return float(fpr[-1])
    d0, d1 = diff[k - 1], diff[k]
    w = 0.0 if d1 == d0 else (0.0 - d0) / (d1 - d0)
    return float((fpr[k - 1] + w * (fpr[k] - fpr[k - 1]) + fnr[k - 1] + w * (fnr[k] - fnr[k - 1]))
                 / 2)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Highest TPR among operating points with FPR <= target (no interpolation)."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def detection_metrics(
    labels: Sequence[int] | np.ndarray,
    probs: Sequence[float] | np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    oracle: bool = False,
) -> dict[str, float]:
    """All B5 metrics for one set of scores. `threshold` is the validation-calibrated one.

    With `oracle=True`, also the threshold maximising balanced accuracy on these very labels
    (`threshold_oracle`, `*_oracle`): optimistic, for reference only.
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError("labels and probs differ in shape")
    if np.isnan(p).any():
        raise ValueError("probs contain NaN")
    out: dict[str, float] = {
        "n": int(len(y)), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
    }
    two = out["n_real"] > 0 and out["n_fake"] > 0
    if two:
        from sklearn.metrics import average_precision_score, roc_auc_score  # see roc_points

        fpr, tpr, _ = roc_points(y, p).to_numpy().T
        out["ap"] = float(average_precision_score(y, p))
        out["auc"] = float(roc_auc_score(y, p))
        out["eer"] = equal_error_rate(fpr, tpr)
        for t in FPR_TARGETS:
            out[f"tpr_at_fpr_{round(t * 100)}"] = tpr_at_fpr(fpr, tpr, t)
    else:
        for k in ("ap", "auc", "eer", *(f"tpr_at_fpr_{round(t * 100)}" for t in FPR_TARGETS)):
            out[k] = math.nan
    for name, value in _at_threshold(y, p, 0.5).items():
        out[f"{name}_05"] = value
    out["threshold_cal"] = float(threshold)
    for name, value in _at_threshold(y, p, float(threshold)).items():
        out[f"{name}_cal"] = value
    if oracle:
        t_or = calibrate_threshold(p, y)
        out["threshold_oracle"] = t_or
        for name, value in _at_threshold(y, p, t_or).items():
            out[f"{name}_oracle"] = value
    return out


def per_generator(
    df_scores: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    oracle: bool = False,
    prob_col: str | None = None,
    resamples: int = 0,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Metrics of each fake generator against all reals, plus `mean` (over generators) and
    `all` (every fake pooled) rows.

    `df_scores` needs `label`, `generator` and a score column (`prob_fake` or `prob`). With
    `resamples` > 0, each generator row and the `all` row get bootstrap 95 % intervals of AP,
    AUC and accuracy at `threshold` (`metrics.bootstrap`; seeded per generator from `seed`);
    the `mean` row's intervals are NaN (a mean over generators has no interval here yet).
    """
    col = prob_col or ("prob_fake" if "prob_fake" in df_scores.columns else "prob")
    for need in ("label", "generator", col):
        if need not in df_scores.columns:
            raise ValueError(f"per_generator: scores lack column {need!r}")
    df = df_scores.dropna(subset=["label", col])
    labels = df["label"].astype(int).to_numpy()
    probs = df[col].astype(float).to_numpy()
    gens = df["generator"].astype(str).to_numpy()
    real = labels == 0
    rows = []
    for g in sorted(set(gens[~real])):
        m = real | ((gens == g) & ~real)
        row = {"generator": g, **detection_metrics(labels[m], probs[m], threshold, oracle=oracle)}
        if resamples > 0:
            row |= bootstrap_intervals(labels[m], probs[m], threshold, resamples=resamples,
                                       seed=derive_seed(seed, "bootstrap", g))
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        numeric = table.drop(columns=["generator"]).mean(numeric_only=True)
        mean_row = {"generator": "mean", **numeric.to_dict()}
        mean_row.update(n=int(len(labels)), n_real=int(real.sum()), n_fake=int((~real).sum()))
        # a mean of interval ends is no interval of the mean
        mean_row.update(dict.fromkeys(set(interval_columns()) & set(mean_row), math.nan))
        table = pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)
    all_row = {"generator": "all", **detection_metrics(labels, probs, threshold, oracle=oracle)}
    if resamples > 0:
        all_row |= bootstrap_intervals(labels, probs, threshold, resamples=resamples,
                                       seed=derive_seed(seed, "bootstrap", "all"))
    return pd.concat([table, pd.DataFrame([all_row])], ignore_index=True)


WORST_COLUMNS = ("min_acc_05", "min_acc_cal", "worst_generator")
"""Columns `add_worst_generator` fills on the `mean` row (NaN / "" on the others)."""


def add_worst_generator(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (from `per_generator`) with `min_acc_05` and `min_acc_cal` (the lowest accuracy
    of any one generator against all reals, at 0.5 and at the calibrated threshold) and
    `worst_generator` (the generator with the lowest calibrated accuracy; ties: the lower AP,
    then the first by name) set on the `mean` row; the generator rows keep their own intervals
    (`*_lo`, `*_hi`)."""
    out = table.copy()
    gens = out[~out["generator"].isin(["mean", "all"])]
    out["min_acc_05"] = math.nan
    out["min_acc_cal"] = math.nan
    out["worst_generator"] = ""
    mean = out["generator"] == "mean"
    if len(gens) and mean.any():
        worst = gens.sort_values(["acc_cal", "ap", "generator"], kind="stable").iloc[0]
        out.loc[mean, "min_acc_05"] = float(gens["acc_05"].min())
        out.loc[mean, "min_acc_cal"] = float(gens["acc_cal"].min())
        out.loc[mean, "worst_generator"] = str(worst["generator"])
    return out
