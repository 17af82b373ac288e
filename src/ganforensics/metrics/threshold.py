"""Decision thresholds calibrated on validation data (never on the test set)."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5
"""The decision threshold on P(fake) before (or without) calibration."""


def calibrate_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """Threshold on P(fake) maximising balanced accuracy on validation data.

    Candidates are midpoints between consecutive distinct scores (plus 0.5); ties are broken
    towards 0.5. Returns 0.5 when only one class is present.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if probs.shape != labels.shape:
        raise ValueError("probs and labels differ in shape")
    if len(np.unique(labels)) < 2:
        return 0.5
    uniq = np.unique(probs)
    cands = np.concatenate([[0.5], (uniq[:-1] + uniq[1:]) / 2 if len(uniq) > 1 else []])
    pos = probs[labels == 1]
    neg = probs[labels == 0]
    # decision: fake when prob >= threshold
    tpr = (pos[None, :] >= cands[:, None]).mean(axis=1)
    tnr = (neg[None, :] < cands[:, None]).mean(axis=1)
    bacc = (tpr + tnr) / 2
    best = bacc.max()
    ok = np.flatnonzero(np.isclose(bacc, best))
    return float(cands[ok[np.argmin(np.abs(cands[ok] - 0.5))]])
