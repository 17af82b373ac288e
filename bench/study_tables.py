"""Markdown tables of a finished study run, the ones docs/study.md and docs/gan.md quote: quality
against the floor, the detection transfer grid (AP with its 95 % interval), the spectra's signed
top-band difference, robustness and masking AP of the first CNN, and the seconds of each stage.

    python bench/study_tables.py RUN                # every table
    python bench/study_tables.py RUN --only transfer quality

Everything is read from RUN's `tables/*.csv` and `stages/*.done`; nothing is recomputed, so the
numbers are the report's. A table whose file is missing (a stage that did not run) is skipped
with a line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

POOLED = ("mean", "all")  # the rows that pool generators, left out of per-generator grids


def _generators(frame: pd.DataFrame) -> list[str]:
    """The generators of `frame` in order of first appearance, without the pooled rows."""
    return [g for g in dict.fromkeys(frame["generator"].astype(str)) if g not in POOLED]


def _markdown(frame: pd.DataFrame) -> str:
    """`frame` as a GitHub markdown table (index dropped, cells as given)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def quality_table(run: Path) -> pd.DataFrame:
    """FID ± its spread, the floor's ratio, KID and the reconstructions' PSNR per setup."""
    q = pd.read_csv(run / "tables" / "quality.csv")
    psnr = q["psnr_db"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return pd.DataFrame({
        "setup": q["setup"], "arm": q["arm"],
        "FID ± sd": [f"{f:.1f} ± {s:.1f}" for f, s in zip(q["fid"], q["fid_sd"], strict=True)],
        "floor": q["floor"].round(1), "/ floor": q["ratio"].round(2),
        "KID": q["kid_mean"].map(lambda v: f"{v:.4f}"), "PSNR dB": psnr,
        "n": q["n_fake"]})


def transfer_table(run: Path) -> pd.DataFrame:
    """One row per (training setup, detector), one column per test generator: AP [lo, hi]."""
    d = pd.read_csv(run / "tables" / "detection.csv")
    gens = _generators(d)
    rows = []
    for (train, det), part in d.groupby(["train_setup", "detector"], sort=False):
        by = part.set_index("generator")
        cells = [f"{by.at[g, 'ap']:.3f} [{by.at[g, 'ap_lo']:.3f}, {by.at[g, 'ap_hi']:.3f}]"
                 if g in by.index else "" for g in gens]
        rows.append([train, det, *cells])
    return pd.DataFrame(rows, columns=["trained on", "detector", *gens])


def spectra_table(run: Path) -> pd.DataFrame:
    """Signed mean difference of each setup's top-band profile from the test reals'."""
    s = pd.read_csv(run / "tables" / "spectra.csv")
    return pd.DataFrame({"setup": s["setup"], "signed difference": s["signed_difference"].round(1),
                         "top fraction": s["top_fraction"]})


def _condition_grid(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Conditions as rows, generators as columns, `value` to three decimals."""
    gens = _generators(frame)
    grid = frame.pivot_table(index="condition", columns="generator", values=value, sort=False)
    grid = grid.reindex(columns=gens).map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return grid.reset_index()


def robustness_table(run: Path) -> pd.DataFrame:
    """AP of the first CNN under each perturbation of the standard grid."""
    return _condition_grid(pd.read_csv(run / "tables" / "robustness.csv"), "ap")


def masking_table(run: Path) -> pd.DataFrame:
    """AP of the first CNN with its most / least relevant / random feature maps masked."""
    return _condition_grid(pd.read_csv(run / "tables" / "masking.csv"), "ap")


def stages_table(run: Path) -> pd.DataFrame:
    """Wall seconds of each finished stage, in the order they finished, and their sum."""
    done = sorted((run / "stages").glob("*.done"), key=lambda p: p.stat().st_mtime)
    rows = [(p.stem, json.loads(p.read_text()).get("seconds")) for p in done]
    total = sum(s for _, s in rows if s is not None)
    rows.append(("sum of the stages", round(total, 1)))
    return pd.DataFrame(rows, columns=["stage", "seconds"])


TABLES: dict[str, Callable[[Path], pd.DataFrame]] = {
    "quality": quality_table, "transfer": transfer_table, "spectra": spectra_table,
    "robustness": robustness_table, "masking": masking_table, "stages": stages_table,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a study run folder (the demo's --out)")
    ap.add_argument("--only", nargs="+", choices=list(TABLES), default=list(TABLES),
                    help="these tables only, in this order")
    args = ap.parse_args(argv)
    if not (args.run / "results.json").is_file():
        print(f"error: {args.run} is not a study run folder (no results.json)", file=sys.stderr)
        return 2
    for name in args.only:
        try:
            table = TABLES[name](args.run)
        except FileNotFoundError as err:
            print(f"{name}: skipped, {Path(err.filename).relative_to(args.run)} is missing",
                  file=sys.stderr)
            continue
        print(f"### {name}\n\n{_markdown(table)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
