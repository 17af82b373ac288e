"""Bootstrap confidence intervals of detection metrics (AP, AUC, accuracy at a threshold).

Test images are resampled with replacement, reals and fakes separately (each class keeps its
count, so every resample holds both), `resamples` times from a seeded generator; an interval is
the percentile interval of the metric over the resamples (95 % by default).

A resample is a vector of counts over the original images (`multinomial`), so all resamples are
scored at once: images are sorted by score once, grouped by distinct score, and AP and AUC
follow from cumulative counts per group. This is the same AP as scikit-learn's
`average_precision_score` (precision at each distinct score, weighted by the recall step) and the
same AUC as `roc_auc_score` (ties count one half), as the tests check resample by resample.
"""

from __future__ import annotations

import numpy as np

from ganforensics.seeding import DEFAULT_SEED

DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95
INTERVAL_METRICS = ("ap", "auc", "acc_cal")
"""The metrics that get an interval: columns `<metric>_lo` and `<metric>_hi`."""


def interval_columns() -> list[str]:
    """`ap_lo, ap_hi, auc_lo, auc_hi, acc_cal_lo, acc_cal_hi`."""
    return [f"{m}_{end}" for m in INTERVAL_METRICS for end in ("lo", "hi")]


def resample_counts(
    labels: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(resamples, N) counts of each image in each resample stratified by label (any integer
    classes; for 0/1 labels the draws are the same as before multi-class support)."""
    counts = np.zeros((resamples, len(labels)), dtype=np.float64)
    for cls in np.unique(labels).tolist():
        idx = np.flatnonzero(labels == cls)
        if len(idx):
            counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)),
                                             size=resamples)
    return counts


def weighted_ap_auc(
    labels: np.ndarray, probs: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AP and AUC of each row of `counts` (images repeated that many times), vectorised."""
    order = np.argsort(-probs, kind="stable")
    p_sorted, y_sorted = probs[order], labels[order]
    group_start = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    group_of = np.cumsum(group_start) - 1  # distinct-score group of each sorted image
    n_groups = int(group_of[-1]) + 1
    w = counts[:, order]
    pos = np.zeros((len(counts), n_groups))
    neg = np.zeros((len(counts), n_groups))
    np.add.at(pos.T, group_of[y_sorted == 1], w[:, y_sorted == 1].T)
    np.add.at(neg.T, group_of[y_sorted == 0], w[:, y_sorted == 0].T)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    n_pos, n_neg = tp[:, -1:], fp[:, -1:]
    precision = tp / np.maximum(tp + fp, 1e-300)
    ap = (pos / n_pos * precision).sum(axis=1)
    auc = (pos * ((n_neg - fp) + 0.5 * neg)).sum(axis=1) / (n_pos[:, 0] * n_neg[:, 0])
    return ap, auc


def bootstrap_intervals(
    labels: np.ndarray,
    probs: np.ndarray,
    threshold: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> dict[str, float]:
    """Percentile intervals `{ap_lo, ap_hi, auc_lo, auc_hi, acc_cal_lo, acc_cal_hi}`.

    `acc_cal` is the accuracy at `threshold` (P(fake) >= threshold means fake). All NaN when
    a class is missing or `resamples` is 0.
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    nan = dict.fromkeys(interval_columns(), float("nan"))
    if resamples < 1 or not ((y == 0).any() and (y == 1).any()):
        return nan
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    counts = resample_counts(y, int(resamples), np.random.default_rng(seed))
    ap, auc = weighted_ap_auc(y, p, counts)
    correct = ((p >= threshold) == (y == 1)).astype(np.float64)
    acc = counts @ correct / len(y)
    tail = (1.0 - confidence) / 2.0
    out: dict[str, float] = {}
    for name, values in (("ap", ap), ("auc", auc), ("acc_cal", acc)):
        lo, hi = np.quantile(values, [tail, 1.0 - tail])
        out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out
