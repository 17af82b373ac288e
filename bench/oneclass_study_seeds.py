"""The `one-class` study stage's comparison (no oversampling vs DOPING vs whole prior vs SMOTE)
rerun over several oversampling seeds on an existing study run folder (read only): how much of
a DOPING effect on false positives is the AAE / sampler seed.

Example: python bench/oneclass_study_seeds.py /tmp/oc-quick --seeds 5
         python bench/oneclass_study_seeds.py /tmp/oc-quick --seeds 1 --features decay \
             --model isolation-forest --per-setup
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
    ap.add_argument("--features", help="override detectors.one_class.features")
    ap.add_argument("--model", help="override detectors.one_class.model")
    ap.add_argument("--per-setup", action="store_true",
                    help="also print the AUC per setup (first seed, no intervals)")
    args = ap.parse_args()
    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    for key in ("features", "model"):
        if getattr(args, key):
            cfg["detectors"]["one_class"][key] = getattr(args, key)
    ctx = StudyContext(SimpleNamespace(path=args.run), cfg)  # type: ignore[arg-type]
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    feats = one_class_features(ctx)
    fps, aucs = [], []
    for i in range(args.seeds):
        seed = derive_seed(cfg["seed"], "one-class-stage", i) % 2**31
        table, fp, _ = compare_oversampling(feats, cfg["detectors"]["one_class"], seed, 0)
        fps.append(fp.assign(seed=i))
        aucs.append(table[table.generator == "all"].assign(seed=i))
        if args.per_setup and i == 0:
            print(table.pivot(index="generator", columns="method", values="auc").round(3)
                  .to_string())
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
