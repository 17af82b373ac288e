"""Multi-seed studies: with `seeds: [..]` each seed runs as its own full study in
`<out>/seed-<n>/` (the same config with that seed), then the headline tables are aggregated
across seeds into `<out>/tables/` (mean ± sd beside each seed's value) and `<out>/report.html`
links each seed's report. Every seed resumes as a single study does; the top folder holds the
config with the seed list, so the lock and --force rules of a single study apply to it.

`run_studies` is the entry point for both kinds: without `seeds` it is `pipeline.run_study`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.console import info
from ganforensics.study.claims import CLAIMS, claim
from ganforensics.study.detector_stages import (
    BYPASS_TABLE,
    DETECTION_TABLE,
    GRAYSCALE_TABLE,
    ROBUSTNESS_TABLE,
)
from ganforensics.study.explain_stages import MASKING_TABLE
from ganforensics.study.lskd_stages import LSKD_TABLE
from ganforensics.study.measure_stages import QUALITY_TABLE, SPECTRA_TABLE
from ganforensics.study.pipeline import open_run, run_study
from ganforensics.study.report_seeds import write_seeds_report
from ganforensics.study.stages import Stage, StageResult
from ganforensics.study.variants import VARIANTS_TABLE, variants_table

AGGREGATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    QUALITY_TABLE: (("setup",), ("fid", "ratio", "kid_mean")),
    SPECTRA_TABLE: (("setup",), ("discrepancy", "signed_difference")),
    DETECTION_TABLE: (("train_setup", "detector", "generator"),
                      ("ap", "auc", "acc_cal", "pair_win")),
    BYPASS_TABLE: (("kind", "generator"), ("rate_mean",)),
    ROBUSTNESS_TABLE: (("condition", "generator"), ("ap",)),
    GRAYSCALE_TABLE: (("generator", "input"), ("ap", "acc_cal")),
    MASKING_TABLE: (("condition", "generator"), ("ap",)),
    LSKD_TABLE: (("alpha", "model"), ("accuracy", "macro_f1", "cluster_ratio")),
}
"""Per-seed table -> (its natural keys, the metrics aggregated). The aggregate of each is
written under the same name in the top folder with columns: keys, `metric`, `mean`, `sd`
(across seeds, ddof = 1), `n_seeds` (seeds with a value), then one column per seed."""
STAT_COLUMNS = ("metric", "mean", "sd", "n_seeds")
CLAIM_KEYS = ("train_setup", "detector", "generator")
CLAIMS_TABLE = "tables/claims.csv"
"""Per training setup x detector x setup: the claim (`claims.claim`) of each seed and their
counts."""


def seed_dir(seed: int) -> str:
    """The sub-folder of one seed, also its column name in the aggregate tables."""
    return f"seed-{seed}"


def seed_config(cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The config one seed runs with: `cfg` with that seed and no seed list.

    With more than one seed, every seed trains its GANs and simulators (`source: train`): the
    shipped ones fit the default seed's photo split only, so the other seeds would train theirs,
    and a spread across seeds would then measure shipped against trained models."""
    out = copy.deepcopy(dict(cfg))
    out["seed"], out["seeds"] = int(seed), None
    if len(cfg.get("seeds") or ()) > 1:
        for part in ("gan", "simulator"):
            out[part] = {**out.get(part, {}), "source": "train"}
    return out


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def aggregate_table(tables: Mapping[int, pd.DataFrame | None], keys: Sequence[str],
                    metrics: Sequence[str]) -> pd.DataFrame:
    """Mean, sd and count across seeds of each metric per key row, with each seed's value.

    Rows are metric-major in the order of first appearance; a seed without the table, the
    row or the metric's column has NaN there and is left out of its mean / sd; rows with no
    value in any seed (e.g. `pair_win` of sampled setups) are dropped.
    """
    keys, long = list(keys), []
    for seed, df in tables.items():
        if df is None:
            continue
        for m in metrics:
            if m in df.columns:
                long.append(df[keys].assign(metric=m, value=df[m].astype(float),
                                            seed=seed_dir(seed)))
    index = [*keys, "metric"]
    if not long:
        return pd.DataFrame(columns=[*keys, *STAT_COLUMNS, *map(seed_dir, tables)])
    frame = pd.concat(long, ignore_index=True)
    frame["_m"] = frame["metric"].map({m: i for i, m in enumerate(metrics)})
    order = frame.drop_duplicates(index).sort_values("_m", kind="stable")[index]
    wide = frame.pivot(index=index, columns="seed", values="value")
    wide = wide.reindex(pd.MultiIndex.from_frame(order))
    wide = wide.reindex(columns=[seed_dir(s) for s in tables])
    out = wide.reset_index()
    values = out[[seed_dir(s) for s in tables]]
    out.insert(len(index), "mean", values.mean(axis=1))
    out.insert(len(index) + 1, "sd", values.std(axis=1, ddof=1))
    out.insert(len(index) + 2, "n_seeds", values.notna().sum(axis=1))
    out.columns.name = None
    return out[out["n_seeds"] > 0].reset_index(drop=True)


def claims_table(tables: Mapping[int, pd.DataFrame | None]) -> pd.DataFrame:
    """Each seed's claim per training setup x detector x setup (from its AP interval) and the
    count of each."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for seed, df in tables.items():
        if df is None:
            continue
        for r in df[~df["generator"].astype(str).isin(["mean", "all"])].to_dict("records"):
            key = (r["train_setup"], r["detector"], r["generator"])
            row = rows.setdefault(key, dict(zip(CLAIM_KEYS, key, strict=True)))
            row[seed_dir(seed)] = claim(r.get("ap_lo"), r.get("ap_hi"))
    out = pd.DataFrame(list(rows.values()),
                       columns=[*CLAIM_KEYS, *map(seed_dir, tables)])
    for c in CLAIMS:
        out.insert(out.columns.get_loc(seed_dir(next(iter(tables)))), c,
                   (out[[seed_dir(s) for s in tables]] == c).sum(axis=1))
    return out


def aggregate_run(path: Path, seeds: Sequence[int],
                  cfg: Mapping[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """The aggregate tables of a multi-seed run folder, by file name (tables no seed has are
    left out); with `cfg`, also the training variants against their plain setups
    (`variants.VARIANTS_TABLE`) when the config has any."""
    out = {}
    for name, (keys, metrics) in AGGREGATES.items():
        tables = {s: _read(path / seed_dir(s) / name) for s in seeds}
        if any(t is not None for t in tables.values()):
            out[name] = aggregate_table(tables, keys, metrics)
    detection = {s: _read(path / seed_dir(s) / DETECTION_TABLE) for s in seeds}
    if any(t is not None for t in detection.values()):
        out[CLAIMS_TABLE] = claims_table(detection)
    if cfg is not None:
        variants = variants_table(cfg, out.get(QUALITY_TABLE), out.get(DETECTION_TABLE))
        if variants is not None:
            out[VARIANTS_TABLE] = variants
    return out


def run_seeds(
    cfg: dict[str, Any],
    out: str | Path,
    *,
    force: bool = False,
    stop_after: str | None = None,
    stages: list[Stage] | None = None,
) -> tuple[Path, list[StageResult]]:
    """Run (or resume) each seed of `cfg["seeds"]` as a study in its sub-folder, then write the
    aggregate tables and report; stage results are named `seed-<n>/<stage>`."""
    seeds = [int(s) for s in cfg["seeds"]]
    run = open_run(out, cfg, force=force)
    if len(seeds) > 1:
        info("several seeds: every seed trains its GANs and simulators (the shipped ones fit "
             "one seed's photo split only)")
    with run:
        results: list[StageResult] = []
        for i, seed in enumerate(seeds, 1):
            info(f"seed {seed} ({i}/{len(seeds)}) -> {run.path / seed_dir(seed)}")
            _, res = run_study(seed_config(cfg, seed), run.path / seed_dir(seed),
                               stop_after=stop_after, stages=stages)
            results += [dataclasses.replace(r, name=f"{seed_dir(seed)}/{r.name}") for r in res]
        tables = aggregate_run(run.path, seeds, cfg)
        for name, df in tables.items():
            run.write_csv(name, df)
        report = write_seeds_report(run, cfg, tables, results)
    return report, results


def run_studies(
    cfg: dict[str, Any],
    out: str | Path,
    *,
    force: bool = False,
    stop_after: str | None = None,
) -> tuple[Path, list[StageResult]]:
    """The study of `cfg`: one seed (`pipeline.run_study`) or, with `seeds`, `run_seeds`."""
    if cfg.get("seeds") is None:
        return run_study(cfg, out, force=force, stop_after=stop_after)
    return run_seeds(cfg, out, force=force, stop_after=stop_after)
