"""Train one CNN detector variant on a finished study's data and score it on the test sets.

Reads the study's real patches (`data/real.csv`) and fakes (`fakes/<setup>/manifest.csv`),
trains `--arch` with the wang2020 recipe (learning rate `--lr`, at most `--epochs`, early
stopping on validation loss, blur/JPEG p 0.1: the study's defaults) on real vs the fakes of
`--train` (train / val splits), and prints one JSON line: AUC and AP on the test reals against
each `--test` setup's test fakes, epochs run, best validation accuracy, wall and CPU seconds.
Each line is appended to `--log`. One torch thread, so that it can share a machine.

    python bench/cnn_on_study.py STUDY --arch small_npr --train BASELINE --seed 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from ganforensics.detectors.cnn.recipes import get_recipe
from ganforensics.detectors.cnn.train import train_cnn_detector
from ganforensics.errors import GanForensicsError, InputError

TESTS = ("BASELINE", "N.1.5", "B.1.5", "Z.1.5", "N.3.5", "sim-BASELINE")


def _images(df: pd.DataFrame, root: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(root / p).convert("RGB")) for p in df["path"]]


def split_set(study: Path, setups: list[str], split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The study's reals of `split` then the fakes of each setup in `setups`, with labels."""
    real = pd.read_csv(study / "data" / "real.csv")
    real = real[real["split"] == split]
    images, labels = _images(real, study / "data"), [0] * len(real)
    for setup in setups:
        manifest = study / "fakes" / setup / "manifest.csv"
        if not manifest.is_file():
            raise InputError(f"{manifest}: no fakes of setup {setup!r} in this study")
        fake = pd.read_csv(manifest)
        fake = fake[fake["split"] == split]
        images += _images(fake, manifest.parent)
        labels += [1] * len(fake)
    return images, np.asarray(labels)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    train_setups = args.train.split(",")
    recipe = get_recipe("wang2020", monitor="val_loss", lr=args.lr)
    train, val = (split_set(args.study, train_setups, s) for s in ("train", "val"))
    t0, c0 = time.perf_counter(), time.process_time()
    det = train_cnn_detector(args.arch, recipe, train, val, args.out, seed=args.seed,
                             epochs=args.epochs, aug_prob=0.1, progress=False, force=True)
    result: dict[str, Any] = {
        "arch": args.arch, "lr": recipe.lr, "train": train_setups, "seed": args.seed,
        "wall_s": round(time.perf_counter() - t0), "cpu_s": round(time.process_time() - c0)}
    history = pd.read_csv(Path(args.out) / "history.csv")
    result["epochs_run"] = len(history)
    result["best_val_acc"] = round(float(history["val_acc"].max()), 3)
    for setup in args.test.split(","):
        x, y = split_set(args.study, [setup], "test")
        logits = np.asarray(det.logits(x), dtype=np.float64)
        result[setup] = {"auc": round(float(roc_auc_score(y, logits)), 3),
                         "ap": round(float(average_precision_score(y, logits)), 3)}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", type=Path, help="a finished study folder (ganforensics demo --out)")
    p.add_argument("--arch", default="small_npr")
    p.add_argument("--lr", type=float, default=None, help="Adam lr (default: the recipe's 1e-4)")
    p.add_argument("--train", default="BASELINE", help="comma-separated training setups")
    p.add_argument("--test", default=",".join(TESTS), help="comma-separated test setups")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="cnn-variant", help="the detector's folder (overwritten)")
    p.add_argument("--log", type=Path, default=None, help="append the JSON line here too")
    args = p.parse_args()
    try:
        result = run(args)
    except GanForensicsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = json.dumps(result)
    print(line)
    if args.log is not None:
        with args.log.open("a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
