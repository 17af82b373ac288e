"""D's margin over a GAN run: the mean of D(real) − D(fake) per window of steps.

A margin near 0 (with the hinge loss near 2) is a discriminator that no longer tells the reals
from the fakes, and so no longer teaches G (docs/gan-quality-log.md, "The next zoo, in
training"). Reads the `losses.csv` of one or more run folders (`d_real`, `d_fake`: D's mean
logits of the last D step of each G step) and prints one markdown row per run, one column per
window:

    python bench/d_margin.py W-BASELINE/run W-N.3.5/run --window 2500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ("step", "d_real", "d_fake")


def margins(losses_csv: Path, window: int) -> pd.Series:
    """The mean of d_real − d_fake per `window` steps, indexed by each window's last step
    (steps 1..window, window+1..2*window, ...; a last, partial window is kept)."""
    df = pd.read_csv(losses_csv)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{losses_csv}: no column {', '.join(missing)} (not a GAN run's "
                         "losses.csv)")
    if df.empty:
        raise ValueError(f"{losses_csv}: no steps yet")
    end = ((df["step"] - 1) // window + 1) * window
    end = end.clip(upper=int(df["step"].max()))
    return (df["d_real"] - df["d_fake"]).groupby(end.to_numpy()).mean()


def table(runs: list[Path], window: int) -> str:
    """A markdown table: a row per run folder (or losses.csv), a column per window."""
    rows = {str(r): margins(r / "losses.csv" if r.is_dir() else r, window) for r in runs}
    ends = sorted({int(e) for m in rows.values() for e in m.index})
    head = "| run | " + " | ".join(f"to {e:,}" for e in ends) + " |"
    lines = [head, "|---" * (len(ends) + 1) + "|"]
    for name, m in rows.items():
        cells = [f"{m[e]:.2f}" if e in m.index else "" for e in ends]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="GAN run folders (or their losses.csv)")
    ap.add_argument("--window", type=int, default=2500, help="steps per column")
    args = ap.parse_args(argv)
    if args.window < 1:
        ap.error("--window must be at least 1")
    try:
        print(table(args.runs, args.window))
    except (OSError, ValueError) as err:
        print(f"d_margin.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
