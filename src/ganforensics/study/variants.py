"""Setups that vary how a GAN is trained (auxiliary objectives, another preset such as equal
learning rates) set against the plain setup with the same last block, across seeds.

For each variant and each metric (FID of the quality table; AP of every detector) the table
gives both means ± sd across seeds, the difference, and whether it is larger than the seed
spread: |mean - base mean| > sd + base sd (the two mean ± sd ranges do not overlap).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

VARIANTS_TABLE = "tables/variants.csv"
COLUMNS = ("setup", "base", "varies", "metric", "detector", "mean", "sd", "base_mean",
           "base_sd", "difference", "n_seeds", "verdict")
LARGER, WITHIN, ONE_SEED = ("larger than the seed spread", "within the seed spread",
                            "one seed: no spread")
RULE = "|mean - base mean| > sd + base sd across seeds"


def variant_pairs(cfg: Mapping[str, Any]) -> list[dict[str, str]]:
    """(variant, its plain base, what differs) for every sampled setup trained with objectives
    or a preset other than `gan.preset`, whose last block also has a plain setup."""
    default = cfg["gan"]["preset"]
    setups = cfg["gan"]["setups"]
    plain = {}
    for s in setups:
        if not s.get("objectives") and s["preset"] == default:
            plain.setdefault(s["last_block"], s["name"])
    pairs = []
    for s in setups:
        varies = []
        if s["preset"] != default:
            varies.append(f"preset {s['preset']} (base: {default})")
        if s.get("objectives"):
            varies.append("objectives " + "+".join(s["objectives"]))
        base = plain.get(s["last_block"])
        if varies and base is not None:
            pairs.append({"setup": s["name"], "base": base, "varies": "; ".join(varies)})
    return pairs


def _verdict(diff: float, sd: float, base_sd: float, n: int) -> str:
    if n < 2 or pd.isna(sd) or pd.isna(base_sd):
        return ONE_SEED
    return LARGER if abs(diff) > sd + base_sd else WITHIN


def _row(pair: Mapping[str, str], metric: str, detector: str, a: pd.Series, b: pd.Series
         ) -> dict[str, Any]:
    diff = float(a["mean"]) - float(b["mean"])
    n = int(min(a["n_seeds"], b["n_seeds"]))
    return {**pair, "metric": metric, "detector": detector, "mean": a["mean"], "sd": a["sd"],
            "base_mean": b["mean"], "base_sd": b["sd"], "difference": diff, "n_seeds": n,
            "verdict": _verdict(diff, a["sd"], b["sd"], n)}


def variants_table(cfg: Mapping[str, Any], quality: pd.DataFrame | None,
                   detection: pd.DataFrame | None) -> pd.DataFrame | None:
    """The variants-vs-base table from the aggregate quality and detection tables (None when
    the config has no variant)."""
    pairs = variant_pairs(cfg)
    if not pairs:
        return None
    rows = []
    for pair in pairs:
        if quality is not None:
            fid = quality[quality["metric"] == "fid"].set_index("setup")
            if pair["setup"] in fid.index and pair["base"] in fid.index:
                rows.append(_row(pair, "fid", "", fid.loc[pair["setup"]],
                                 fid.loc[pair["base"]]))
        if detection is not None:
            ap = detection[detection["metric"] == "ap"]
            for (train, det), part in ap.groupby(["train_setup", "detector"], sort=False):
                by_gen = part.set_index("generator")
                if pair["setup"] in by_gen.index and pair["base"] in by_gen.index:
                    rows.append(_row(pair, "ap", f"{det} (trained on {train})",
                                     by_gen.loc[pair["setup"]], by_gen.loc[pair["base"]]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summary_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per variant: which of its differences exceed the seed spread."""
    lines = []
    for setup, part in table.groupby("setup", sort=False):
        base, varies = part["base"].iloc[0], part["varies"].iloc[0]
        big = part[part["verdict"] == LARGER]
        if (part["verdict"] == ONE_SEED).all():
            lines.append(f"{setup} ({varies}) against {base}: one seed, no spread to judge by.")
            continue
        if big.empty:
            lines.append(f"{setup} ({varies}) against {base}: every difference is within the "
                         "seed spread.")
            continue
        what = "; ".join(
            f"{r.metric.upper()}{' of ' + r.detector if r.detector else ''} "
            f"{r.mean:.3g} vs {r.base_mean:.3g}" for r in big.itertuples())
        lines.append(f"{setup} ({varies}) against {base}: larger than the seed spread: {what}.")
    return lines
