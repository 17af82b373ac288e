"""The LS-KD experiment on a finished study/demo run folder, several seeds into one folder.

The experiment itself lives in the library (`ganforensics.evaluate.lskd`) and runs inside a
study as the `lskd` stage: `ganforensics demo --preset lskd [--preset seeds3]` (docs/study.md).
This script is the same experiment on a study folder that already has its fakes (with
train / val fakes of every setup, e.g. one run with `--preset lskd`), for other settings:

    python bench/ls_kd.py --study /tmp/demo --out /tmp/lskd --seeds 2021 2022 2023

Writes `<out>/seed-<n>/` (one model folder per teacher / student, as the stage does),
`results.csv` (one row per model and seed) and `table.md` (mean ± sd over seeds per alpha x T).
Reruns skip finished models.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from ganforensics.data.manifest import read_manifest
from ganforensics.evaluate.lskd import lskd_grid, lskd_markdown, lskd_sets, student_label


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, required=True, help="finished study/demo run folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0, 4.0, 16.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2021])
    ap.add_argument("--teacher-arch", default="small")
    ap.add_argument("--student-arch", default="small")
    ap.add_argument("--recipe", default="wang2020")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--student-epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--aug-prob", type=float, default=0.1)
    ap.add_argument("--n-train", type=int, default=300, help="per class")
    ap.add_argument("--n-val", type=int, default=100, help="per class")
    ap.add_argument("--n-test", type=int, default=200, help="per class")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--table-only", action="store_true",
                    help="rebuild table.md from <out>/results.csv (e.g. of an interrupted run)")
    args = ap.parse_args(argv)
    if args.table_only:
        res = pd.read_csv(args.out / "results.csv")
        if "role" in res:  # results.csv of the script before the study stage
            res = res.assign(model=[("teacher" if r == "teacher" else student_label(t))
                                    for r, t in zip(res["role"], res["T"], strict=True)],
                             cluster_ratio=res["tightness"])
        text = lskd_markdown(res)
        (args.out / "table.md").write_text(text)
        print(text)
        return 0
    os.environ.setdefault("GANFORENSICS_PROGRESS", "0")
    t0, c0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    frames = [read_manifest(args.study / "data" / "real.csv")]
    frames += [read_manifest(f) for f in sorted((args.study / "fakes").glob("*/manifest.csv"))]
    # one draw of the data for every seed (the seeds vary the training only)
    sets = lskd_sets(frames, {"train": args.n_train, "val": args.n_val, "test": args.n_test},
                     seed=2021)
    tables = []
    for seed in args.seeds:
        res = lskd_grid(sets["train"], sets["val"], sets["test"], args.out / f"seed-{seed}",
                        alphas=args.alphas, temperatures=args.temperatures, seed=seed,
                        arch=args.teacher_arch, student_arch=args.student_arch,
                        recipe=args.recipe, epochs=args.epochs,
                        student_epochs=args.student_epochs, batch_size=args.batch_size,
                        aug_prob=args.aug_prob, resamples=args.resamples,
                        log=lambda m: print(m, file=sys.stderr))
        tables.append(res.assign(seed=seed))
        pd.concat(tables).to_csv(args.out / "results.csv", index=False)
    res = pd.concat(tables, ignore_index=True)
    (args.out / "table.md").write_text(lskd_markdown(res))
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    print(lskd_markdown(res))
    cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    print(f"wall {time.time() - t0:.0f} s, CPU {cpu:.0f} s, threads {torch.get_num_threads()}, "
          f"n_test {len(sets['test'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
