"""Per-generator AP and calibrated accuracies (each generator vs all reals), from
`ganforensics.metrics.detection.per_generator`, in the compact columns the explain tables use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganforensics.errors import InputError
from ganforensics.metrics.detection import per_generator

METRIC_COLUMNS = ("ap", "auc", "acc", "real_acc", "fake_acc", "bacc")
_RENAME = {"acc_cal": "acc", "real_acc_cal": "real_acc", "fake_acc_cal": "fake_acc",
           "bacc_cal": "bacc"}


def per_generator_metrics(
    labels: Sequence[int] | np.ndarray,
    probs: Sequence[float] | np.ndarray,
    generators: Sequence[str] | np.ndarray,
    threshold: float,
) -> pd.DataFrame:
    """One row per fake generator (its fakes vs all reals), a `mean` row over generators and an
    `all` row (every fake pooled).

    Columns: generator, n_real, n_fake, ap, auc, acc, real_acc, fake_acc, bacc; accuracies at
    `threshold` (the detector's validation-calibrated one; fake when P(fake) >= threshold).
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    g = np.asarray([str(v) for v in generators])
    if not (len(y) == len(p) == len(g)):
        raise InputError("labels, scores and generators differ in length")
    if not (y == 0).any() or not (y == 1).any():
        raise InputError("test data needs both real (label 0) and fake (label 1) images")
    table = per_generator(
        pd.DataFrame({"label": y, "prob_fake": p, "generator": np.where(y == 0, "real", g)}),
        threshold,
    ).rename(columns=_RENAME)
    table[["n_real", "n_fake"]] = table[["n_real", "n_fake"]].astype(int)
    return table[["generator", "n_real", "n_fake", *METRIC_COLUMNS]].reset_index(drop=True)
