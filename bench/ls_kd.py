"""The LS-KD experiment (Chandrasegaran et al., ICML 2022) at our scale, on generator attribution.

Teachers are trained with label smoothing alpha in {0, 0.1} (`detector train --task attribute
--label-smoothing A`), students are distilled from them at temperatures T in {1, 2, 4, 16}
(`detector distill`, KD loss only), for each seed; every model is evaluated on the same test
set: attribution accuracy and macro-F1 with 95 % bootstrap intervals, and the tightness of the
penultimate-layer class clusters (`metrics.attribution.cluster_tightness`: mean distance to the
class centroid over mean distance between centroids; lower = tighter).

Data: a finished study/demo run folder (`data/real.csv`, `fakes/<setup>/manifest.csv`), its
splits kept; `--n-*` rows per class and split are drawn (seeded) so the runs stay small.

    python bench/ls_kd.py --study /tmp/demo --out /tmp/lskd --seeds 2021 2022 2023

Writes `<out>/manifests/*.csv`, one model folder per teacher / student, `results.csv` (one row
per model) and `table.md` (mean +- sd over seeds per alpha x T). Reruns skip finished models.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ganforensics.data.manifest import read_manifest
from ganforensics.detectors.cnn import load_cnn_detector, train_cnn_detector
from ganforensics.detectors.cnn.archs import head_module
from ganforensics.detectors.cnn.data import as_image_set
from ganforensics.detectors.cnn.distill import distill_cnn_detector
from ganforensics.evaluate.attribution import evaluate_attribution, true_classes
from ganforensics.metrics.attribution import cluster_tightness

SPLITS = ("train", "val", "test")


def make_manifests(study: Path, out: Path, counts: dict[str, int], seed: int) -> dict[str, Path]:
    """Per split: `counts[split]` reals and as many fakes of each generator (absolute paths)."""
    out.mkdir(parents=True, exist_ok=True)
    frames = [read_manifest(study / "data" / "real.csv")]
    for f in sorted((study / "fakes").glob("*/manifest.csv")):
        frames.append(read_manifest(f))
    files = {}
    for split in SPLITS:
        parts = []
        for df in frames:
            part = df[df["split"].astype(str) == split].copy()
            col = "abspath" if "abspath" in part.columns else "path"
            part["path"] = part[col].astype(str)
            n = min(counts[split], len(part))
            parts.append(part.sample(n=n, random_state=seed % 2**32))
        table = pd.concat(parts, ignore_index=True)
        keep = [c for c in ("path", "label", "generator", "source", "split") if c in table]
        files[split] = out / f"{split}.csv"
        table[keep].to_csv(files[split], index=False)
    return files


def penultimate(det, images: list[np.ndarray]) -> np.ndarray:
    """The inputs of the final linear layer (the penultimate features) for `images`."""
    feats: list[torch.Tensor] = []
    fc = head_module(det.model, det.arch)
    hook = fc.register_forward_pre_hook(lambda _m, args: feats.append(args[0].detach().cpu()))
    try:
        det.map_batches(images, det.network_outputs, (len(det.classes),))
    finally:
        hook.remove()
    return torch.cat(feats).reshape(len(images), -1).double().numpy()


def evaluate(folder: Path, test, resamples: int, seed: int) -> dict:
    det = load_cnn_detector(folder)
    res = evaluate_attribution(det, test, resamples=resamples, seed=seed)
    y = true_classes(test.labels, test.generators, det.classes)
    keep = np.flatnonzero(y >= 0)
    feats = penultimate(det, [test.images[i] for i in keep])
    tight = cluster_tightness(feats, y[keep])
    s = res.summary
    return {"accuracy": s["accuracy"], "accuracy_lo": s["accuracy_lo"],
            "accuracy_hi": s["accuracy_hi"], "macro_f1": s["macro_f1"],
            "macro_f1_lo": s["macro_f1_lo"], "macro_f1_hi": s["macro_f1_hi"],
            "within": tight["within"], "between": tight["between"],
            "tightness": tight["ratio"], "epochs": det.meta.get("epochs"),
            "train_seconds": det.meta.get("train_seconds")}


def table_md(res: pd.DataFrame) -> str:
    """Students: mean +- sd over seeds per alpha x T; teachers in the first column."""
    def cell(g: pd.DataFrame, col: str) -> str:
        v = g[col].to_numpy(float)
        if not len(v):
            return "-"
        sd = f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""
        n = f" (n={len(v)})" if len(v) != res["seed"].nunique() else ""
        return f"{v.mean():.3f}{sd}{n}"

    lines = []
    temps = sorted(res.loc[res.role == "student", "T"].unique())
    for metric, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                         ("tightness", "within/between distance (lower = tighter)")):
        lines.append(f"\n**{name}** (mean ± sd over {res['seed'].nunique()} seed(s))\n")
        lines.append("| teacher α | teacher | " + " | ".join(f"student T={t:g}" for t in temps)
                     + " |")
        lines.append("|---|---|" + "---|" * len(temps))
        for a, g in res.groupby("alpha"):
            t = g[g.role == "teacher"]
            row = [f"{a:g}", cell(t, metric)]
            for temp in temps:
                row.append(cell(g[(g.role == "student") & (g["T"] == temp)], metric))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


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
        (args.out / "table.md").write_text(table_md(res))
        print(table_md(res))
        return 0
    os.environ.setdefault("GANFORENSICS_PROGRESS", "0")
    t0, c0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    files = make_manifests(args.study, args.out / "manifests",
                           {"train": args.n_train, "val": args.n_val, "test": args.n_test},
                           seed=2021)
    test = as_image_set(files["test"], "test data")
    common = dict(recipe=args.recipe, batch_size=args.batch_size, aug_prob=args.aug_prob,
                  progress=False)
    rows = []
    for seed in args.seeds:
        for a in args.alphas:
            tdir = args.out / f"teacher-a{a:g}-s{seed}"
            train_cnn_detector(args.teacher_arch, args.recipe, files["train"], files["val"], tdir,
                               task="attribute", label_smoothing=a, seed=seed,
                               epochs=args.epochs, batch_size=args.batch_size,
                               aug_prob=args.aug_prob, progress=False)
            rows.append({"role": "teacher", "alpha": a, "T": np.nan, "seed": seed,
                         **evaluate(tdir, test, args.resamples, seed)})
            print(rows[-1], file=sys.stderr, flush=True)
            for temp in args.temperatures:
                sdir = args.out / f"student-a{a:g}-T{temp:g}-s{seed}"
                distill_cnn_detector(tdir, args.student_arch, files["train"], files["val"], sdir,
                                     temperature=temp, seed=seed,
                                     epochs=args.student_epochs or args.epochs, **common)
                rows.append({"role": "student", "alpha": a, "T": temp, "seed": seed,
                             **evaluate(sdir, test, args.resamples, seed)})
                print(rows[-1], file=sys.stderr, flush=True)
            pd.DataFrame(rows).to_csv(args.out / "results.csv", index=False)
    res = pd.DataFrame(rows)
    res.to_csv(args.out / "results.csv", index=False)
    (args.out / "table.md").write_text(table_md(res))
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    print(table_md(res))
    cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    print(f"wall {time.time() - t0:.0f} s, CPU {cpu:.0f} s, threads {torch.get_num_threads()}, "
          f"n_test {len(test)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
