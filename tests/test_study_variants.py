"""study.variants: training variants against their plain setups across seeds."""

from __future__ import annotations

import pandas as pd

from ganforensics.io.runs import RunFolder
from ganforensics.study.config import load_config
from ganforensics.study.report_seeds import write_seeds_report
from ganforensics.study.seeds import aggregate_table
from ganforensics.study.variants import (
    LARGER,
    ONE_SEED,
    VARIANTS_TABLE,
    WITHIN,
    summary_lines,
    variant_pairs,
    variants_table,
)


def _cfg():
    return load_config({"gan": {"setups": [
        "BASELINE", "N.1.5",
        {"name": "B-dag", "last_block": "BASELINE", "objectives": ["dag"]},
        {"name": "N-eq", "last_block": "N.1.5", "preset": "dcgan"},
        {"name": "Z-ss", "last_block": "Z.1.5", "objectives": ["ss"]},  # no plain Z.1.5
    ]}})


def test_pairs_name_base_and_what_varies():
    pairs = variant_pairs(_cfg())
    assert pairs == [
        {"setup": "B-dag", "base": "BASELINE", "varies": "objectives dag"},
        {"setup": "N-eq", "base": "N.1.5", "varies": "preset dcgan (base: ttur)"},
    ]
    assert variant_pairs(load_config({})) == []


def test_verdicts_follow_the_spread_rule():
    per_seed = {
        1: pd.DataFrame({"setup": ["BASELINE", "N.1.5", "B-dag", "N-eq"],
                         "fid": [100.0, 120.0, 80.0, 121.0]}),
        2: pd.DataFrame({"setup": ["BASELINE", "N.1.5", "B-dag", "N-eq"],
                         "fid": [102.0, 124.0, 82.0, 119.0]}),
    }
    quality = aggregate_table(per_seed, ["setup"], ["fid"])
    det = {s: pd.DataFrame({"train_setup": "BASELINE", "detector": "cnn",
                            "generator": ["BASELINE", "B-dag", "N.1.5", "N-eq"],
                            "ap": [0.9, 0.9 + 0.01 * s, 0.6, 0.61]}) for s in (1, 2)}
    detection = aggregate_table(det, ["train_setup", "detector", "generator"], ["ap"])
    t = variants_table(_cfg(), quality, detection)
    fid = t[t["metric"] == "fid"].set_index("setup")
    assert fid.loc["B-dag", "difference"] == -20.0
    assert fid.loc["B-dag", "verdict"] == LARGER  # 20 > sd 1.41 + 1.41
    assert fid.loc["N-eq", "verdict"] == WITHIN  # 1.9 vs 1.41 + 2.83
    ap = t[t["metric"] == "ap"].set_index("setup")
    assert ap.loc["N-eq", "detector"] == "cnn (trained on BASELINE)"
    assert ap.loc["N-eq", "verdict"] == LARGER  # 0.01 apart, no spread in either
    assert fid.loc["B-dag", "same_sign"] == 2 and fid.loc["B-dag", "paired_sd"] == 0.0
    assert fid.loc["N-eq", "same_sign"] == 1  # +1 in seed 1, -5 in seed 2; mean -2
    assert abs(fid.loc["N-eq", "paired_sd"] - 6 / 2 ** 0.5) < 1e-9
    lines = summary_lines(t)
    assert lines[0].startswith("B-dag (objectives dag) against BASELINE: larger than")
    assert "same way" not in lines[1]  # N-eq's FID: within, and the seeds disagree
    steady = {s: pd.DataFrame({"setup": ["N.1.5", "N-eq"], "fid": [120.0 + 10 * s,
                                                                   121.0 + 10 * s]})
              for s in (1, 2, 3)}  # +1 in every seed, seed spread 10
    t2 = variants_table(_cfg(), aggregate_table(steady, ["setup"], ["fid"]), None)
    assert t2["verdict"].tolist() == [WITHIN] and t2["same_sign"].tolist() == [3]
    assert summary_lines(t2) == [
        "N-eq (preset dcgan (base: ttur)) against N.1.5: every difference is within the seed "
        "spread; within it but the same way in all 3 seeds: FID 141 vs 140."]
    one = aggregate_table({1: per_seed[1]}, ["setup"], ["fid"])
    assert (variants_table(_cfg(), one, None)["verdict"] == ONE_SEED).all()


def test_the_report_names_the_control_for_a_detector_scored_on_its_own_training_gan(tmp_path):
    det = {s: pd.DataFrame({"train_setup": "BASELINE", "detector": "cnn",
                            "generator": ["BASELINE", "B-dag", "N.1.5", "N-eq"],
                            "ap": [1.0, 0.8 + 0.01 * s, 0.7, 0.7]}) for s in (1, 2, 3)}
    t = variants_table(_cfg(), None,
                       aggregate_table(det, ["train_setup", "detector", "generator"], ["ap"]))
    cfg = {**_cfg(), "seeds": [1, 2, 3]}
    run = RunFolder.create(tmp_path / "top", cfg, seed=cfg["seed"])
    page = write_seeds_report(run, cfg, {VARIANTS_TABLE: t}, []).read_text()
    assert '<section id="variants">' in page and "probability 1/2^(n-1) (0.25 here)" in page
    assert "The detectors trained on BASELINE score that setup&#x27;s fakes" in page or \
        "The detectors trained on BASELINE score that setup's fakes" in page
    assert "B-dag (objectives dag) against BASELINE: larger than the seed spread" in page
    t = t[t["base"] != "BASELINE"]  # no detector scored on its own training setup: no caveat
    page = write_seeds_report(run, cfg, {VARIANTS_TABLE: t}, []).read_text()
    assert "score that setup" not in page
