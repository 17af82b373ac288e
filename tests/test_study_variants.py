"""study.variants: training variants against their plain setups across seeds."""

from __future__ import annotations

import pandas as pd

from ganforensics.study.config import load_config
from ganforensics.study.seeds import aggregate_table
from ganforensics.study.variants import (
    LARGER,
    ONE_SEED,
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
    lines = summary_lines(t)
    assert lines[0].startswith("B-dag (objectives dag) against BASELINE: larger than")
    one = aggregate_table({1: per_seed[1]}, ["setup"], ["fid"])
    assert (variants_table(_cfg(), one, None)["verdict"] == ONE_SEED).all()
