"""The study's `lskd` stage (off by default; `--preset lskd`): the LS-KD experiment
(`evaluate.lskd`) on attribution over real + every setup of the study.

Teachers are trained at each `detectors.lskd.alphas`, students distilled from each at every
`temperatures`, on balanced draws of at most `n_per_class` images per class and split from the
study's own data (with lskd on, every setup gets train / val fakes: `data_stages.fake_counts`).
Every seed derives from the study seed; models live in `detectors/lskd/` and a rerun skips the
finished ones. Writes `tables/lskd.csv` (`LSKD_COLUMNS`).
"""

from __future__ import annotations

from typing import Any

from ganforensics.console import info
from ganforensics.data.manifest import write_manifest
from ganforensics.evaluate.lskd import LSKD_COLUMNS, lskd_grid, lskd_sets
from ganforensics.seeding import derive_seed
from ganforensics.study.context import StudyContext, checked

LSKD_TABLE = "tables/lskd.csv"
LSKD_DIR = "detectors/lskd"


def stage_lskd(ctx: StudyContext) -> dict[str, Any]:
    """Train the teachers, distil the students, score all on the attribution test draw."""
    c = ctx.cfg["detectors"]["lskd"]
    seed = derive_seed(ctx.seed, "lskd-stage") % 2**31
    frames = [ctx.real_manifest()] + [ctx.fake_manifest(s["name"]) for s in ctx.setups()]
    sets = lskd_sets(frames, c["n_per_class"], seed)
    out = ctx.path / LSKD_DIR
    for split, df in sets.items():
        write_manifest(df, out / "manifests" / f"{split}.csv")
    table = lskd_grid(
        sets["train"], sets["val"], sets["test"], out, alphas=c["alphas"],
        temperatures=c["temperatures"], seed=seed, arch=c["arch"], recipe=c["recipe"],
        epochs=c["epochs"], batch_size=c["batch_size"], aug_prob=c["aug_prob"],
        resamples=int(ctx.cfg["evaluate"]["resamples"]), log=info)
    ctx.run.write_csv(LSKD_TABLE, checked(table, LSKD_COLUMNS, LSKD_TABLE))
    counts = {split: df["generator"].astype(str).value_counts().sort_index().to_dict()
              for split, df in sets.items()}
    return {"files": [LSKD_TABLE], "models": len(table), "n_per_class": counts,
            "classes": sorted(counts["train"])}
