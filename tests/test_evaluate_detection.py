"""evaluate_detector: per-generator metrics, robustness grid, outputs; the calibrated threshold
never depends on test labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

import ganforensics.detectors.cnn.train as cnn_train_mod
import ganforensics.metrics.detection as detection_mod
import ganforensics.metrics.threshold as threshold_mod
from ganforensics.cli.main import app
from ganforensics.detectors.cnn import CNNDetector, build_model, train_cnn_detector
from ganforensics.errors import ConfigError
from ganforensics.evaluate.detection import (
    STANDARD_GRID,
    THRESHOLD_FROM_MODEL,
    conditions_for,
    evaluate_detector,
)


class BrightnessDetector:
    """A transparent toy detector: brighter images look more fake."""

    kind = "toy"
    threshold = 0.5
    meta: dict = {}

    def logits(self, images):
        return np.array([(float(np.mean(im)) - 128.0) / 16.0 for im in images])

    def save(self, out_dir):  # pragma: no cover - not needed here
        raise NotImplementedError


def _write_set(root, rng, n=12):
    rows = []
    for gen, shift in (("real", 0), ("ganA", 60), ("ganB", 15)):
        for i in range(n):
            base = rng.normal(110 + shift, 15)  # per-image brightness: ganB overlaps the reals
            im = np.clip(rng.normal(base, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            p = root / gen / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(p)
            rows.append({"path": f"{gen}/{i}.png", "label": int(gen != "real"),
                         "generator": gen, "split": "test"})
    df = pd.DataFrame(rows)
    df.to_csv(root / "test.csv", index=False)
    return root / "test.csv"


def test_grid_conditions_and_validation():
    conds = conditions_for(["jpeg:75", "blur:1.5"], "standard")
    assert conds[0] == "none" and conds[1 : 1 + len(STANDARD_GRID)] == list(STANDARD_GRID)
    assert conds.count("jpeg:75") == 1 and conds[-1] == "blur:1.5"
    with pytest.raises(ConfigError):
        conditions_for(["jpeg:500"], None)
    with pytest.raises(ConfigError, match="unknown grid"):
        conditions_for(None, "huge")


def test_evaluate_writes_tidy_outputs_and_per_generator_metrics(tmp_path, rng):
    manifest = _write_set(tmp_path / "data", rng)
    res = evaluate_detector(BrightnessDetector(), manifest, grid="standard",
                            out=tmp_path / "eval", progress=False)
    table = res.metrics
    assert len(table) == 11 * 4  # conditions x (ganA, ganB, mean, all)
    clean = table[table.condition == "none"].set_index("generator")
    sc = res.scores
    s = sc[(sc.condition == "none") & sc.generator.isin(["real", "ganB"])]
    assert clean.loc["ganB", "ap"] == pytest.approx(
        average_precision_score(s["label"].astype(int), s["prob_fake"]))
    assert clean.loc["ganA", "ap"] > clean.loc["ganB", "ap"]
    assert clean.loc["mean", "ap"] == pytest.approx(clean.loc[["ganA", "ganB"], "ap"].mean())
    # grayscale changes little, blur 3 barely changes mean brightness, jpeg keeps order
    assert table[table.condition == "grayscale"].set_index("generator").loc["ganA", "auc"] > 0.9
    out = tmp_path / "eval"
    for name in ("metrics.csv", "metrics_long.csv", "metrics.json", "scores.csv",
                 "curves/roc.csv", "curves/pr.csv", "roc_pr.png", "robustness_ap.png",
                 "config.yaml", "env.json"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["metrics"]["none"]["ganA"]["ap"] == pytest.approx(clean.loc["ganA", "ap"])
    long = pd.read_csv(out / "metrics_long.csv")
    assert set(long.columns) == {"condition", "generator", "metric", "value"}
    roc = pd.read_csv(out / "curves/roc.csv")
    assert set(roc.generator) == {"ganA", "ganB"} and roc.fpr.between(0, 1).all()
    # the typed result names what was done
    assert res.out == str(out) and res.plots == ["roc_pr.png", "robustness_ap.png"]
    assert res.conditions == ["none", *STANDARD_GRID]
    assert res.threshold_source == THRESHOLD_FROM_MODEL
    assert res.summary["none"]["ap"] == pytest.approx(clean.loc["mean", "ap"])
    assert (res.n_errors, res.n_unlabelled) == (0, 0)


def test_evaluate_gives_seeded_bootstrap_intervals_per_generator(tmp_path, rng):
    manifest = _write_set(tmp_path / "data", rng, n=30)
    res = evaluate_detector(BrightnessDetector(), manifest, progress=False, resamples=500)
    t = res.metrics.set_index("generator")
    for g in ("ganA", "ganB", "all"):
        for m in ("ap", "auc", "acc_cal"):
            assert t.loc[g, f"{m}_lo"] <= t.loc[g, m] <= t.loc[g, f"{m}_hi"], (g, m)
    # ganB overlaps the reals: its AP is less certain than ganA's, which is near 1
    assert (t.loc["ganB", "ap_hi"] - t.loc["ganB", "ap_lo"]) > (
        t.loc["ganA", "ap_hi"] - t.loc["ganA", "ap_lo"])
    assert np.isnan(t.loc["mean", "ap_lo"])
    again = evaluate_detector(BrightnessDetector(), manifest, progress=False, resamples=500)
    pd.testing.assert_frame_equal(res.metrics, again.metrics)
    other = evaluate_detector(BrightnessDetector(), manifest, progress=False, resamples=500,
                              seed=7)
    assert not np.allclose(other.metrics["ap_lo"].dropna(), res.metrics["ap_lo"].dropna())
    none = evaluate_detector(BrightnessDetector(), manifest, progress=False, resamples=0)
    assert "ap_lo" not in none.metrics.columns


def test_bad_test_files_are_left_out_not_fatal(tmp_path, rng):
    manifest = _write_set(tmp_path / "d", rng, n=6)
    (tmp_path / "d" / "ganA" / "0.png").write_bytes(b"")
    res = evaluate_detector(BrightnessDetector(), manifest, progress=False)
    clean = res.metrics.set_index("generator")
    assert clean.loc["ganA", "n_fake"] == 5 and clean.loc["ganB", "n_fake"] == 6
    assert "empty" in res.scores["error"].dropna().iloc[0]
    assert res.n_errors == 1 and res.out is None and res.plots == []


def _toy(n, seed, shift=50):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    imgs = [np.clip(rng.normal(100 + shift * lab, 25, (20, 20, 3)), 0, 255).astype(np.uint8)
            for lab in labels]
    return imgs, labels


@pytest.mark.slow
def test_calibrated_threshold_never_sees_test_labels(monkeypatch):
    calls = []
    real_calibrate = threshold_mod.calibrate_threshold

    def spy(probs, labels):
        calls.append((np.asarray(probs).copy(), np.asarray(labels).copy()))
        return real_calibrate(probs, labels)

    monkeypatch.setattr(threshold_mod, "calibrate_threshold", spy)
    monkeypatch.setattr(detection_mod, "calibrate_threshold", spy)
    monkeypatch.setattr(cnn_train_mod, "calibrate_threshold", spy)
    val = _toy(16, 1)
    det = train_cnn_detector("small", "wang2020", _toy(32, 0), val, None, epochs=2,
                             batch_size=16, progress=False)
    assert len(calls) == 1  # calibration happened once, on validation data only
    assert np.array_equal(calls[0][1], val[1]) and len(calls[0][0]) == len(val[0])
    thr = det.threshold
    test_imgs, test_labels = _toy(24, 2)
    r1 = evaluate_detector(det, (test_imgs, test_labels), progress=False)
    flipped = 1 - test_labels
    permuted = np.random.default_rng(0).permutation(test_labels)
    r2 = evaluate_detector(det, (test_imgs, flipped), progress=False)
    r3 = evaluate_detector(det, (test_imgs, permuted), progress=False)
    assert len(calls) == 1  # evaluation never calibrates
    assert det.threshold == thr == r1.threshold == r2.threshold == r3.threshold
    for r in (r1, r2, r3):
        assert (r.metrics["threshold_cal"] == thr).all()
    # scores do not depend on labels; accuracies do (so labels really changed)
    np.testing.assert_array_equal(r1.scores["prob_fake"], r2.scores["prob_fake"])
    a1 = r1.metrics.set_index("generator").loc["all", "acc_cal"]
    a2 = r2.metrics.set_index("generator").loc["all", "acc_cal"]
    assert a1 == pytest.approx(1 - a2)
    # the oracle is computed only on request and is named so
    r4 = evaluate_detector(det, (test_imgs, test_labels), oracle=True, progress=False)
    assert "threshold_oracle" in r4.metrics and "threshold_oracle" not in r1.metrics
    assert len(calls) > 1 and det.threshold == thr


def test_evaluate_cli(tmp_path, rng):
    manifest = _write_set(tmp_path / "data", rng, n=5)
    det = CNNDetector(build_model("small"), "small", input_size=24, threshold=0.4)
    det.save(tmp_path / "model")
    args = ["evaluate", "--model", str(tmp_path / "model"), "--test", str(manifest),
            "--perturb", "jpeg:75", "--perturb", "resize:0.5", "--out", str(tmp_path / "ev"),
            "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {r["condition"] for r in rows} == {"none", "jpeg:75", "resize:0.5"}
    assert all(r["threshold_cal"] == pytest.approx(0.4) for r in rows)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 3  # existing run, no --force
    res = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "model")])
    assert res.exit_code == 2 and "--test" in res.output
    res = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "model"), "--test",
                                   str(manifest), "--perturb", "sharpen:2"])
    assert res.exit_code == 2 and "sharpen" in res.output
