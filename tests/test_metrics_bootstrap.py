"""Bootstrap intervals: the vectorised AP/AUC equal scikit-learn's on every resample; the
intervals are seeded, hold the point estimate, narrow with more data, and cover the truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ganforensics.metrics.bootstrap import (
    bootstrap_intervals,
    interval_columns,
    resample_counts,
    weighted_ap_auc,
)


def _scores(rng, n_real, n_fake, shift=1.0, decimals=None):
    y = np.r_[np.zeros(n_real), np.ones(n_fake)].astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=len(y)) + shift * y)))
    if decimals is not None:  # many ties, as scores of real detectors have
        p = np.round(p, decimals)
    return y, p


@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_vectorised_ap_auc_match_sklearn_on_each_resample(rng, decimals):
    y, p = _scores(rng, 37, 53, decimals=decimals)
    counts = resample_counts(y, 25, np.random.default_rng(7))
    ap, auc = weighted_ap_auc(y, p, counts)
    for b in range(len(counts)):
        idx = np.repeat(np.arange(len(y)), counts[b].astype(int))
        assert ap[b] == pytest.approx(average_precision_score(y[idx], p[idx]), abs=1e-12)
        assert auc[b] == pytest.approx(roc_auc_score(y[idx], p[idx]), abs=1e-12)


def test_resamples_keep_each_class_count(rng):
    y, _ = _scores(rng, 11, 29)
    counts = resample_counts(y, 50, np.random.default_rng(1))
    assert (counts[:, y == 0].sum(axis=1) == 11).all()
    assert (counts[:, y == 1].sum(axis=1) == 29).all()


def test_intervals_are_seeded_hold_the_point_and_narrow_with_more_data(rng):
    y, p = _scores(rng, 200, 200)
    a = bootstrap_intervals(y, p, 0.5, resamples=400, seed=3)
    assert a == bootstrap_intervals(y, p, 0.5, resamples=400, seed=3)
    assert a != bootstrap_intervals(y, p, 0.5, resamples=400, seed=4)
    ap, auc = average_precision_score(y, p), roc_auc_score(y, p)
    acc = float(((p >= 0.5) == (y == 1)).mean())
    assert a["ap_lo"] < ap < a["ap_hi"] and a["auc_lo"] < auc < a["auc_hi"]
    assert a["acc_cal_lo"] < acc < a["acc_cal_hi"]
    y4, p4 = _scores(rng, 3200, 3200)
    b = bootstrap_intervals(y4, p4, 0.5, resamples=400, seed=3)
    for m in ("ap", "auc", "acc_cal"):  # 16x the data: about a quarter of the width
        assert b[f"{m}_hi"] - b[f"{m}_lo"] < 0.5 * (a[f"{m}_hi"] - a[f"{m}_lo"])


def test_95_percent_intervals_cover_the_population_auc_about_95_percent_of_the_time():
    # population AUC of N(0,1) vs N(1,1) scores: Phi(1 / sqrt(2))
    from scipy.stats import norm

    truth = norm.cdf(1 / np.sqrt(2))
    hits = 0
    trials = 60
    for t in range(trials):
        y, p = _scores(np.random.default_rng(100 + t), 60, 60)
        ci = bootstrap_intervals(y, p, 0.5, resamples=300, seed=t)
        hits += ci["auc_lo"] <= truth <= ci["auc_hi"]
    assert 0.83 <= hits / trials <= 1.0


def test_one_class_or_no_resamples_gives_nan(rng):
    y, p = _scores(rng, 10, 10)
    for got in (bootstrap_intervals(np.zeros(10, int), p[:10], 0.5),
                bootstrap_intervals(y, p, 0.5, resamples=0)):
        assert list(got) == interval_columns() and all(np.isnan(v) for v in got.values())
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_intervals(y, p, 0.5, confidence=1.5)
