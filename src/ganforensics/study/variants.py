"""Setups that vary how a GAN is trained (auxiliary objectives, another preset such as equal
learning rates) set against the plain setup with the same last block, across seeds.

For each variant and each metric (FID of the quality table; AP of every detector) the table
gives both means ± sd across seeds, the difference, and whether it is larger than the seed
spread: |mean - base mean| > sd + base sd (the two mean ± sd ranges do not overlap). Each seed
trains the variant and its base on the same split, so the table also pairs them by seed:
`same_sign` counts the seeds whose own difference has the sign of the mean difference, and
`paired_sd` is the sd of those per-seed differences (a variant can lie within the seed spread
and still differ the same way in every seed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

VARIANTS_TABLE = "tables/variants.csv"
COLUMNS = ("setup", "base", "varies", "metric", "detector", "mean", "sd", "base_mean",
           "base_sd", "difference", "n_seeds", "verdict", "same_sign", "paired_sd")
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
    seeds = [c for c in a.index if str(c).startswith("seed-") and c in b.index]
    per_seed = pd.Series([a[c] - b[c] for c in seeds], dtype=float).dropna()
    same = int(((per_seed > 0) if diff > 0 else (per_seed < 0)).sum()) if diff else 0
    paired_sd = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")
    return {**pair, "metric": metric, "detector": detector, "mean": a["mean"], "sd": a["sd"],
            "base_mean": b["mean"], "base_sd": b["sd"], "difference": diff, "n_seeds": n,
            "verdict": _verdict(diff, a["sd"], b["sd"], n), "same_sign": same,
            "paired_sd": paired_sd}


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


def _listed(rows: pd.DataFrame) -> str:
    return "; ".join(
        f"{r.metric.upper()}{' of ' + r.detector if r.detector else ''} "
        f"{r.mean:.3g} vs {r.base_mean:.3g}" for r in rows.itertuples())


def summary_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per variant: which of its differences exceed the seed spread, and which
    of the others point the same way in every seed."""
    lines = []
    for setup, part in table.groupby("setup", sort=False):
        base, varies = part["base"].iloc[0], part["varies"].iloc[0]
        if (part["verdict"] == ONE_SEED).all():
            lines.append(f"{setup} ({varies}) against {base}: one seed, no spread to judge by.")
            continue
        big = part[part["verdict"] == LARGER]
        steady = part[(part["verdict"] == WITHIN) & (part["same_sign"] == part["n_seeds"])]
        text = (f"larger than the seed spread: {_listed(big)}" if len(big) else
                "every difference is within the seed spread")
        if len(steady):
            n = int(steady["n_seeds"].iloc[0])
            text += (f"; within it but the same way in all {n} seeds: {_listed(steady)}")
        lines.append(f"{setup} ({varies}) against {base}: {text}.")
    return lines
