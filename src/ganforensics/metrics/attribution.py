"""Metrics of generator attribution (multi-class: real + K generators): confusion matrix,
per-class precision / recall / F1, macro-F1 and accuracy with stratified bootstrap intervals, and
a cluster-tightness measure of feature vectors.

Bootstrap: test images are resampled with replacement within each true class
(`bootstrap.resample_counts`), so every resample keeps the class counts; an interval is the
percentile interval over the resamples. A class that is never predicted has precision 0 (and
F1 0), as in scikit-learn's `zero_division=0`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganforensics.metrics.bootstrap import CONFIDENCE, DEFAULT_RESAMPLES, resample_counts
from ganforensics.seeding import DEFAULT_SEED


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted; `weights` (R, N) gives (R, C, C)."""
    pair = np.asarray(y_true, int) * n_classes + np.asarray(y_pred, int)
    onehot = np.zeros((len(pair), n_classes * n_classes))
    onehot[np.arange(len(pair)), pair] = 1.0
    if weights is None:
        return (onehot.sum(axis=0)).reshape(n_classes, n_classes)
    return (weights @ onehot).reshape(len(weights), n_classes, n_classes)


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1) per class of one (C, C) or many (R, C, C) confusion matrices;
    0 where undefined."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    pred = cm.sum(axis=-2)
    true = cm.sum(axis=-1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp, dtype=float), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp, dtype=float), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return precision, recall, f1


def macro_f1(cm: np.ndarray) -> np.ndarray | float:
    """Mean F1 over the classes present in the truth (rows with support)."""
    f1 = per_class_scores(cm)[2]
    present = cm.sum(axis=-1) > 0
    if cm.ndim == 2:
        return float(f1[present].mean()) if present.any() else float("nan")
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def accuracy(cm: np.ndarray) -> np.ndarray | float:
    acc = np.diagonal(cm, axis1=-2, axis2=-1).sum(axis=-1) / cm.sum(axis=(-2, -1))
    return float(acc) if cm.ndim == 2 else acc


def attribution_report(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], *,
    resamples: int = DEFAULT_RESAMPLES, confidence: float = CONFIDENCE, seed: int = DEFAULT_SEED,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    """(per-class table, confusion matrix, summary with accuracy and macro-F1 and their
    `_lo` / `_hi` bootstrap intervals)."""
    k = len(classes)
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    cm = confusion_matrix(y_true, y_pred, k)
    precision, recall, f1 = per_class_scores(cm)
    table = pd.DataFrame({"class": list(classes), "support": cm.sum(axis=1).astype(int),
                          "predicted": cm.sum(axis=0).astype(int), "precision": precision,
                          "recall": recall, "f1": f1})
    summary = {"n": int(len(y_true)), "accuracy": accuracy(cm), "macro_f1": macro_f1(cm)}
    nan = float("nan")
    ends = {f"{m}_{e}": nan for m in ("accuracy", "macro_f1") for e in ("lo", "hi")}
    if resamples > 0 and len(y_true):
        counts = resample_counts(y_true, int(resamples), np.random.default_rng(seed))
        cms = confusion_matrix(y_true, y_pred, k, counts)
        tail = (1.0 - confidence) / 2.0
        for name, values in (("accuracy", accuracy(cms)), ("macro_f1", macro_f1(cms))):
            lo, hi = np.quantile(np.asarray(values), [tail, 1.0 - tail])
            ends[f"{name}_lo"], ends[f"{name}_hi"] = float(lo), float(hi)
    summary.update(ends)
    return table, cm, summary


def cluster_tightness(features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Within-class over between-class spread of feature vectors (lower = tighter clusters).

    `within`: mean Euclidean distance of a vector to its class centroid; `between`: mean
    distance between distinct class centroids; `ratio` = within / between. Features are
    standardised by their overall RMS norm first, so the ratio is scale-free.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(labels)
    x = x / max(float(np.sqrt((x ** 2).sum(axis=1).mean())), 1e-12)
    cls = np.unique(y)
    cents = np.stack([x[y == c].mean(axis=0) for c in cls])
    within = float(np.mean(np.linalg.norm(x - cents[np.searchsorted(cls, y)], axis=1)))
    d = np.linalg.norm(cents[:, None] - cents[None], axis=-1)
    between = float(d[np.triu_indices(len(cls), 1)].mean()) if len(cls) > 1 else float("nan")
    return {"within": within, "between": between, "ratio": within / between}
