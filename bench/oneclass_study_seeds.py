"""The `one-class` study stage's comparison (no oversampling vs DOPING vs whole prior vs SMOTE)
rerun over several oversampling seeds on an existing study run folder (read only): how much of
a DOPING effect on false positives is the AAE / sampler seed.

Example: python bench/oneclass_study_seeds.py /tmp/oc-quick --seeds 5
Prints, per method and condition, the FPR on the test reals (mean, min, max over seeds) and the
difference to no oversampling; the pooled AUC the same way. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import yaml

from ganforensics.seeding import derive_seed
from ganforensics.study.context import StudyContext
from ganforensics.study.one_class_stages import compare_oversampling, one_class_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a study run folder made with --preset oneclass")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    ctx = StudyContext(SimpleNamespace(path=args.run), cfg)  # type: ignore[arg-type]
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    feats = one_class_features(ctx)
    fps, aucs = [], []
    for i in range(args.seeds):
        seed = derive_seed(cfg["seed"], "one-class-stage", i) % 2**31
        table, fp, _ = compare_oversampling(feats, cfg["detectors"]["one_class"], seed, 0)
        fps.append(fp.assign(seed=i))
        aucs.append(table[table.generator == "all"].assign(seed=i))
    fp = pd.concat(fps)
    auc = pd.concat(aucs)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    agg = {"fpr": ["mean", "min", "max"], "diff_vs_none": ["mean", "min", "max"]}
    print(fp.groupby(["condition", "method"], sort=False).agg(agg).round(3).to_string())
    print(auc.groupby("method", sort=False)[["auc", "tpr_at_threshold", "test_fpr"]]
          .agg(["mean", "min", "max"]).round(3).to_string())
    print(json.dumps({"seeds": args.seeds, "wall_s": round(time.perf_counter() - t0, 1),
                      "cpu_s": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 1)}))


if __name__ == "__main__":
    main()
