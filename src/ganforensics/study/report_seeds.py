"""The report of a multi-seed study (`study.seeds`): `<out>/report.html` with the mean ± sd
across seeds beside each seed's value for every aggregate table, each seed's detection claims,
and links to the seeds' own reports; `<out>/results.json` with the same tables."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.io.runs import RunFolder, dump_yaml
from ganforensics.study.claims import lskd_verdict, rule_text, with_spread
from ganforensics.study.lskd_stages import LSKD_TABLE
from ganforensics.study.report import FAILED
from ganforensics.study.report_html import HtmlReport, Section
from ganforensics.study.report_sections import LSKD_RATIO, lskd_caption, lskd_grid_table
from ganforensics.study.stages import StageResult
from ganforensics.study.variants import RULE, VARIANTS_TABLE, summary_lines

TITLES = {
    "tables/quality.csv": "Image quality: FID and KID per setup",
    "tables/spectra.csv": "Spectral discrepancy per setup",
    "tables/detection.csv": "Detectors on every setup: AP, AUC, calibrated accuracy",
    "tables/bypass.csv": "Bypass: detection rates of modified generators",
    "tables/robustness.csv": "CNN robustness grid (AP)",
    "tables/grayscale.csv": "CNN colour ablation (grayscale inputs)",
    "tables/masking.csv": "Explanations: AP after masking feature maps",
}
"""Section titles of the aggregate tables (keys: the file names of `seeds.AGGREGATES`)."""
CLAIMS_FILE = "tables/claims.csv"


def _seed_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if str(c).startswith("seed-")]


def _metric_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of one metric: keys, `mean ± sd`, then each seed's value."""
    part = df[df["metric"] == metric]
    keys = list(df.columns[: list(df.columns).index("metric")])
    shown = part[keys].copy()
    shown["mean ± sd"] = [with_spread(m, s) for m, s in zip(part["mean"], part["sd"],
                                                              strict=True)]
    shown["seeds"] = part["n_seeds"].astype(int)
    for c in _seed_columns(part):
        shown[c] = part[c]
    return shown


def _stage_rows(seeds: Sequence[int], results: Sequence[StageResult]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        mine = [r for r in results if r.name.startswith(f"seed-{seed}/")]
        row: dict[str, Any] = {"seed": seed, "report": f"seed-{seed}/report.html"}
        for status in ("done", "cached", *FAILED):
            row[status] = sum(r.status == status for r in mine)
        rows.append(row)
    return pd.DataFrame(rows)


def _overview(rep: HtmlReport, cfg: Mapping[str, Any], tables: Mapping[str, pd.DataFrame],
              results: Sequence[StageResult]) -> None:
    seeds = [int(s) for s in cfg["seeds"]]
    sec = rep.section("overview", "Overview: one study per seed")
    sec.p(f"The same study run {len(seeds)} times, once per seed ({', '.join(map(str, seeds))}):"
          " each seed draws its own patch split, GAN initialisations, fakes, detector training "
          "and test resamples. Each table gives the mean ± sample standard deviation (ddof = 1) "
          "across the seeds beside each seed's value; a seed's own report has its intervals.")
    bad = [r for r in results if r.status in FAILED]
    if bad:
        sec.box(f"{len(bad)} stage(s) did not complete (first: {bad[0].name}: {bad[0].error}); "
                "their seeds are left out of those rows (see the `seeds` count).", "fail")
    sec.links([(f"seed-{s}/report.html", f"Report of seed {s}") for s in seeds])
    sec.table(_stage_rows(seeds, results), "Stages per seed in this invocation (cached = "
              "finished earlier, resumed).", "seed-*/stages/*.done")
    if CLAIMS_FILE in tables:
        sec.table(tables[CLAIMS_FILE], "How each detector fares on each setup in each seed, "
                  f"worded from that seed's AP interval ({rule_text()}); the count columns "
                  "say in how many seeds.", CLAIMS_FILE)


def _table_sections(rep: HtmlReport, tables: Mapping[str, pd.DataFrame]) -> None:
    for name, title in TITLES.items():
        df = tables.get(name)
        if df is None or not len(df):
            continue
        sec: Section = rep.section(Path(name).stem, title)
        for metric in dict.fromkeys(df["metric"]):
            sec.table(_metric_table(df, str(metric)), f"{metric}: mean ± sd across seeds and "
                      "each seed's value.", name)


def _variants_section(rep: HtmlReport, tables: Mapping[str, pd.DataFrame],
                      seeds: Sequence[int]) -> None:
    df = tables.get(VARIANTS_TABLE)
    if df is None or not len(df):
        return
    sec = rep.section("variants", "Training objectives and learning rates against the plain "
                      "GAN")
    sec.p("Each setup trained differently (an auxiliary objective, or equal learning rates "
          "instead of the two time-scale rule) set against the plain setup with the same last "
          f"block, across seeds. A difference counts as larger than the seed spread when {RULE} "
          "(the two mean ± sd ranges do not overlap). A seed trains both on the same split, so "
          "the differences are also paired by seed; with no true difference, all n seeds still "
          f"agree in sign with probability 1/2^(n-1) ({1 / 2 ** (len(seeds) - 1):.2g} here), "
          "so 'the same way in all seeds' is a hint, not a finding.")
    sec.items(summary_lines(df))
    own = sorted({str(d).split("(trained on ")[-1].rstrip(")") for d, base in
                  zip(df["detector"], df["base"], strict=True) if f"(trained on {base})" in d})
    if own:
        sec.p(f"The detectors trained on {', '.join(own)} score that setup's fakes from the very "
              "GANs they learnt from, so their AP on any other GAN may drop, whatever its "
              "objective. A variant that changes only the learning rates (no objective) shows "
              "how large that drop is without an objective; an objective changed what a "
              "detector catches only where its difference goes beyond that.")
    sec.table(df, "FID (lower = closer to the training photos) and each detector's AP on the "
              "variant's fakes against the plain setup's; same_sign and paired_sd pair each "
              "variant with its base seed by seed.", VARIANTS_TABLE)


def lskd_seed_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The students' accuracy rows of the aggregate `tables/lskd.csv` as
    `claims.lskd_verdict` cells: mean, its mean ∓ sd range, `mean ± sd`."""
    acc = df[(df["metric"] == "accuracy") & (df["model"].astype(str) != "teacher")]
    return pd.DataFrame({"alpha": acc["alpha"], "model": acc["model"].astype(str),
                         "value": acc["mean"], "lo": acc["mean"] - acc["sd"],
                         "hi": acc["mean"] + acc["sd"],
                         "text": [with_spread(m, sd) for m, sd in
                                  zip(acc["mean"], acc["sd"], strict=True)]})


def _lskd_section(rep: HtmlReport, cfg: Mapping[str, Any],
                  tables: Mapping[str, pd.DataFrame]) -> None:
    df = tables.get(LSKD_TABLE)
    if df is None or not len(df):
        return
    n = len(cfg["seeds"])
    sec = rep.section("lskd", "LS-KD: label-smoothed teachers and distillation temperature "
                      "(attribution), across seeds")
    sec.p(lskd_verdict(lskd_seed_cells(df), "mean ± sd range") + f" Ranges: mean ± sd across "
          f"{n} seeds (the spread of training and data draws); each seed's report has its "
          "test-sampling intervals.")
    for metric, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"),
                         ("cluster_ratio", "Cluster ratio")):
        part = df[df["metric"] == metric]
        text = [with_spread(m, sd) + ("" if k == n else f" ({int(k)} seeds)")
                for m, sd, k in zip(part["mean"], part["sd"], part["n_seeds"], strict=True)]
        what = f"Mean ± sd across {n} seeds." + (f" {LSKD_RATIO}" if metric == "cluster_ratio"
                                                 else "")
        sec.table(lskd_grid_table(part.assign(_v=text), "_v"),
                  f"{name}. " + lskd_caption(cfg, what), LSKD_TABLE)
    sec.table(_metric_table(df, "accuracy"), "Accuracy: each seed's value.", LSKD_TABLE)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict(orient="records")]


def write_seeds_report(run: RunFolder, cfg: Mapping[str, Any],
                       tables: Mapping[str, pd.DataFrame],
                       results: Sequence[StageResult]) -> Path:
    """Write `results.json` and `report.html` of a multi-seed run; return the report's path."""
    env = json.loads((run.path / "env.json").read_text()) if (run.path / "env.json").is_file() \
        else {}
    run.write_json("results.json", {
        "config": cfg, "env": env, "seeds": list(cfg["seeds"]),
        "stages": [{"stage": r.name, "status": r.status, "seconds": round(r.seconds, 2),
                    "error": r.error} for r in results],
        "tables": {name: _records(df) for name, df in tables.items()}})
    rep = HtmlReport("ganforensics multi-seed study report",
                     f"Run folder: {run.path}. Created {env.get('created', '?')}. Every number "
                     "below comes from a file in the run folder, named under its table.")
    _overview(rep, cfg, tables, results)
    _variants_section(rep, tables, cfg["seeds"])
    _lskd_section(rep, cfg, tables)
    _table_sections(rep, tables)
    sec = rep.section("caveats", "Caveats")
    sec.items([
        f"{len(cfg['seeds'])} seeds give a rough standard deviation; read it as the size of "
        "the seed-to-seed variation, not as a precise figure.",
        "Each seed's report lists the caveats of a single run (small scale, small samples, "
        "the feature extractor) and its bootstrap intervals over the test images.",
    ])
    rep.section("settings", "Settings: resolved configuration").pre(dump_yaml(cfg))
    return run.write_text("report.html", rep.to_html())
