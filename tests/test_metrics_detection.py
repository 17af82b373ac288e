"""Detection metrics agree with scikit-learn on random scores; per-generator table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from ganforensics.metrics.detection import detection_metrics, equal_error_rate, per_generator


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = 301
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.45 + 0.2 * y, 0.25), 0, 1)
    p[:20] = np.round(p[:20], 1)  # ties
    thr = float(rng.uniform(0.3, 0.7))
    m = detection_metrics(y, p, thr)
    assert m["ap"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    for t, tag in ((0.5, "05"), (thr, "cal")):
        pred = (p >= t).astype(int)
        assert m[f"acc_{tag}"] == pytest.approx(accuracy_score(y, pred))
        assert m[f"bacc_{tag}"] == pytest.approx(balanced_accuracy_score(y, pred))
        assert m[f"fake_acc_{tag}"] == pytest.approx(recall_score(y, pred, pos_label=1))
        assert m[f"real_acc_{tag}"] == pytest.approx(recall_score(y, pred, pos_label=0))
    fpr, tpr, _ = roc_curve(y, p)
    for target, key in ((0.01, "tpr_at_fpr_1"), (0.05, "tpr_at_fpr_5")):
        assert m[key] == pytest.approx(tpr[fpr <= target].max())
    # EER: brute force over thresholds - the crossing lies between two operating points
    fnr = 1 - tpr
    k = np.argmin(np.abs(fpr - fnr))
    assert abs(m["eer"] - (fpr[k] + fnr[k]) / 2) <= np.abs(np.diff(fpr)).max() + 1e-9
    assert "threshold_oracle" not in m


def test_eer_of_perfect_and_inverted_scores():
    y = np.array([0, 0, 1, 1])
    assert detection_metrics(y, [0.1, 0.2, 0.8, 0.9])["eer"] == pytest.approx(0.0)
    assert detection_metrics(y, [0.9, 0.8, 0.2, 0.1])["eer"] == pytest.approx(1.0)
    assert equal_error_rate(np.array([0, 0.5, 1.0]), np.array([0, 0.5, 1.0])) == pytest.approx(0.5)


def test_oracle_only_when_asked_and_labelled():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.6, 0.65, 0.7, 0.8, 0.85, 0.9])
    m = detection_metrics(y, p, 0.5, oracle=True)
    assert m["bacc_cal"] == pytest.approx(0.5)
    assert 0.7 < m["threshold_oracle"] < 0.8 and m["bacc_oracle"] == 1.0


def test_single_class_gives_nan_threshold_free_metrics():
    m = detection_metrics([1, 1, 1], [0.2, 0.7, 0.9], 0.5)
    assert np.isnan(m["ap"]) and np.isnan(m["auc"])
    assert m["fake_acc_05"] == pytest.approx(2 / 3) and np.isnan(m["real_acc_05"])


def test_per_generator_is_each_generator_against_all_reals():
    rng = np.random.default_rng(5)
    real = pd.DataFrame({"label": 0, "generator": "real", "prob_fake": rng.uniform(0, 0.6, 50)})
    easy = pd.DataFrame({"label": 1, "generator": "easy", "prob_fake": rng.uniform(0.7, 1, 30)})
    hard = pd.DataFrame({"label": 1, "generator": "hard", "prob_fake": rng.uniform(0, 1, 20)})
    df = pd.concat([real, easy, hard], ignore_index=True)
    t = per_generator(df, 0.5).set_index("generator")
    assert list(t.index) == ["easy", "hard", "mean", "all"]
    assert t.loc["easy", "ap"] == pytest.approx(1.0)
    sub = pd.concat([real, hard])
    assert t.loc["hard", "ap"] == pytest.approx(
        average_precision_score(sub["label"], sub["prob_fake"]))
    assert t.loc["hard", "n_real"] == 50 and t.loc["hard", "n_fake"] == 20
    assert t.loc["mean", "ap"] == pytest.approx((t.loc["easy", "ap"] + t.loc["hard", "ap"]) / 2)
    assert t.loc["all", "ap"] == pytest.approx(
        average_precision_score(df["label"], df["prob_fake"]))
