"""The simulated arm end to end (tiny: a few dozen patches, 3 simulator steps, fallback
features) and the paired columns of the detection table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ganforensics.data.manifest import read_manifest
from ganforensics.metrics.bootstrap import interval_columns
from ganforensics.study.config import load_config
from ganforensics.study.detector_stages import (
    DETECTION_COLUMNS,
    DETECTION_TABLE,
    pair_columns,
)
from ganforensics.study.measure_stages import (
    ARMS_FIGURE,
    QUALITY_COLUMNS,
    QUALITY_TABLE,
    grid_file,
)
from ganforensics.study.pipeline import run_study
from ganforensics.study.report_sections import GENERIC_VIEW_NOTE, autogan_lines

TINY = {
    "fakes": {"arms": ["sampled", "simulated"], "n_train": 30, "n_val": 12, "n_test": 16},
    "data": {"max_patches": 72},
    "gan": {"setups": ["BASELINE", "N.1.5"], "steps": 2, "batch_size": 8,
            "checkpoint_every": 2},
    "simulator": {"steps": 3, "batch_size": 8, "width": 8, "bottleneck": 8},
    "quality": {"extractor": "fallback", "kid_subsets": 2, "grid": 2, "fid_resamples": 2},
    "detectors": {"cnn": {"epochs": 1, "batch_size": 16}},
    "evaluate": {"resamples": 20, "robustness": False, "grayscale": False},
    "bypass": {"n_train": 10, "draws": 1},
    "explain": {"enabled": False},
}
SIM = ("sim-BASELINE", "sim-N.1.5")
SAMPLED = ("BASELINE", "N.1.5")
OLD_DETECTION_COLUMNS = (
    "detector", "generator", "n", "n_real", "n_fake", "ap", "auc", "eer", "tpr_at_fpr_1",
    "tpr_at_fpr_5", "acc_05", "real_acc_05", "fake_acc_05", "bacc_05", "threshold_cal",
    "acc_cal", "real_acc_cal", "fake_acc_cal", "bacc_cal", *interval_columns())
"""The detection table's columns before the second arm (issue 25)."""


def test_detection_columns_only_gain_train_setup_and_the_paired_ones() -> None:
    expected = ("train_setup", *OLD_DETECTION_COLUMNS, "pair_win", "pair_win_lo", "pair_win_hi")
    assert expected == DETECTION_COLUMNS


def test_pair_columns_pair_each_fake_with_its_own_source(tmp_path) -> None:
    reals = [str(tmp_path / f"r{i}.png") for i in range(3)]
    rows = pd.DataFrame({
        "abspath": [*reals, *(str(tmp_path / f"f{i}.png") for i in range(3)),
                    str(tmp_path / "g.png")],
        "label": [0, 0, 0, 1, 1, 1, 1],
        "generator": ["real"] * 3 + ["sim-X"] * 3 + ["X"],
        # fakes listed in another order than their sources
        "source_path": ["", "", "", reals[2], reals[0], reals[1], ""],
    }, index=[10, 11, 12, 13, 14, 15, 16])
    # every fake scores below the pooled reals' maximum, yet above its own source but once
    probs = [0.1, 0.5, 0.9, 0.95, 0.2, 0.4, 0.7]
    scores = pd.DataFrame({"prob_fake": probs}, index=rows.index)
    gens = pd.Series(["sim-X", "X", "mean", "all"], index=[0, 1, 2, 3])
    out = pair_columns(scores, rows, gens, resamples=50, seed=1)
    assert out.loc[0, "pair_win"] == pytest.approx(2 / 3)  # 0.95>0.9, 0.2>0.1, 0.4<0.5
    assert 0 <= out.loc[0, "pair_win_lo"] <= out.loc[0, "pair_win_hi"] <= 1
    assert out.loc[1:].isna().all().all()  # sampled setup and the summary rows: NaN


def _tables(out: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    real = read_manifest(out / "data" / "real.csv")
    return real, {s: read_manifest(out / "fakes" / s / "manifest.csv") for s in SIM}


@pytest.mark.slow
def test_both_arms_tiny_study_end_to_end_and_resume(tmp_path) -> None:
    out = tmp_path / "run"
    cfg = load_config(TINY)
    report, results = run_study(cfg, out)
    status = {r.name: r.status for r in results}
    assert set(status.values()) == {"done"}, status
    for s in SAMPLED:
        assert {f"gan-{s}", f"simulator-{s}", f"fakes-{s}", f"fakes-sim-{s}"} <= set(status)
    assert "detector-cnn@sim-BASELINE" in status and "detector-cnn" in status
    # every real patch has one reconstruction, in its own split, naming it as its source
    real, fakes = _tables(out)
    split_of_real = dict(zip(real["abspath"].astype(str), real["split"].astype(str),
                             strict=True))
    for name, df in fakes.items():
        assert len(df) == len(real) and (df["generator"] == name).all()
        assert (df["label"] == 1).all() and df["abspath"].map(lambda p: Path(p).is_file()).all()
        assert sorted(df["source_path"]) == sorted(real["abspath"].astype(str))
        assert [split_of_real[p] for p in df["source_path"]] == df["split"].astype(str).tolist()
        assert (out / grid_file(name)).is_file()
    # detection: both training setups, every setup of both arms, pair_win where pairs exist
    det = pd.read_csv(out / DETECTION_TABLE)
    assert tuple(det.columns) == DETECTION_COLUMNS
    assert list(dict.fromkeys(det["train_setup"])) == ["BASELINE", "sim-BASELINE"]
    for (_, _), part in det.groupby(["train_setup", "detector"]):
        assert set(part["generator"]) == {*SAMPLED, *SIM, "mean", "all"}
    sim = det[det["generator"].isin(SIM)]
    assert sim["pair_win"].between(0, 1).all()
    assert (sim["pair_win_lo"] <= sim["pair_win"] + 1e-12).all()
    assert (sim["pair_win"] <= sim["pair_win_hi"] + 1e-12).all()
    assert det[~det["generator"].isin(SIM)][["pair_win", "pair_win_lo",
                                             "pair_win_hi"]].isna().all().all()
    # quality: one floor, every setup against it; a simulated setup's FID set is the
    # reconstructions of the floor's second sample of reals (as many as the reference)
    q = pd.read_csv(out / QUALITY_TABLE)
    assert tuple(q.columns) == QUALITY_COLUMNS and q["floor"].nunique() == 1
    assert q["ratio"].to_numpy() == pytest.approx((q["fid"] / q["floor"]).to_numpy())
    assert dict(zip(q["setup"], q["arm"], strict=True)) == {
        **dict.fromkeys(SAMPLED, "sampled"), **dict.fromkeys(SIM, "simulated")}
    sims = q[q["arm"] == "simulated"]
    assert (sims["n_fake"] == sims["n_real"]).all() and sims["psnr_db"].gt(0).all()
    assert q[q["arm"] == "sampled"]["psnr_db"].isna().all()
    assert (out / ARMS_FIGURE).is_file()
    page = report.read_text()
    assert GENERIC_VIEW_NOTE not in page and "Transfer: AP" in page
    assert ARMS_FIGURE in page and "FID / floor" in page
    assert "(Zhang, Karaman and Chang, WIFS 2019)" in page
    weights = out / "simulators" / "BASELINE" / "simulator.safetensors"
    before = (weights.stat().st_mtime_ns, (out / DETECTION_TABLE).read_bytes())
    # a rerun resumes: nothing is recomputed, the numbers stay
    _, again = run_study(cfg, out)
    assert {r.status for r in again} == {"cached"}
    assert (weights.stat().st_mtime_ns, (out / DETECTION_TABLE).read_bytes()) == before


def test_autogan_claim_is_worded_from_each_transfer_interval() -> None:
    rows = [
        {"train_setup": "sim-BASELINE", "detector": "cnn", "generator": "BASELINE",
         "ap": 0.6, "ap_lo": 0.55, "ap_hi": 0.65},
        {"train_setup": "BASELINE", "detector": "cnn", "generator": "sim-BASELINE",
         "ap": 0.95, "ap_lo": 0.92, "ap_hi": 0.97},
        {"train_setup": "sim-BASELINE", "detector": "spectral-profile", "generator": "BASELINE",
         "ap": 0.8, "ap_lo": 0.75, "ap_hi": 0.85},
    ]
    head, cnn, spec = autogan_lines(rows)
    assert head.startswith("AutoGAN's claim")
    assert cnn.startswith("cnn trained on sim-BASELINE misses BASELINE's GAN samples (AP 0.600")
    assert "trained on BASELINE, it catches sim-BASELINE (AP 0.950" in cnn
    assert spec.startswith("spectral-profile trained on sim-BASELINE partly catches")
    assert "trained on BASELINE," not in spec  # no reverse row for that kind
    # a run that trains on no simulated setup has nothing to say
    assert autogan_lines([{**rows[1]}]) == []
