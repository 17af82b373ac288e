"""Simulator quality: standard FID of reconstructions against the real-vs-real floor, per block.

Cuts the embedded photos' 32-px patches (`data photos` defaults), draws two disjoint samples of
453 training patches, `a` (random_state 0) and `b` (random_state 1, from the rest); the floor is
FID(a, b). Each simulator trains on all training patches (so `b` is in its training set, as
issue 25 specifies), reconstructs `b`, and FID(a, reconstructions of b) is compared with the
floor. Prints one JSON line per block (train wall and CPU seconds, PSNR on b, FID, ratio).
A simulator already finished in `--work` (same options) is measured again, not retrained.

With `--ship DIR` each measured simulator is also packaged as a shipped one (`gan.shipped`):
the package's own are made with

    python bench/simulator_quality.py --steps 4000 --threads 1 --work WORK \
        --ship src/ganforensics/gan/shipped

    python bench/simulator_quality.py [--blocks BASELINE N.1.5 ...] [--steps 1000]
                                      [--threads 1] [--work DIR] [--ship DIR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import ganforensics
from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.gan.data import load_training_images
from ganforensics.gan.reconstruct import load_simulator, reconstruct_images
from ganforensics.gan.shipped import pixel_sha256, write_shipped
from ganforensics.gan.simulate import psnr, train_simulator
from ganforensics.gan.simulator import SimulatorConfig
from ganforensics.io.loading import load_images
from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.metrics.fid import frechet_distance
from ganforensics.threads import apply_threads

N_SAMPLE = 453


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", nargs="+", default=["BASELINE", "N.1.5", "B.1.5", "Z.1.5",
                                                    "N.3.5"])
    ap.add_argument("--steps", type=int, default=SimulatorConfig().steps)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--ship", type=Path, default=None,
                    help="package each simulator here as a shipped one (gan.shipped)")
    args = ap.parse_args()
    apply_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="simq-"))
    patches = make_patches(work / "photos", force=True)
    train = split_of(patches, "train").reset_index(drop=True)
    a = train.sample(N_SAMPLE, random_state=0)
    b = train.drop(a.index).sample(N_SAMPLE, random_state=1)
    ext = get_extractor("inception")
    real_a, real_b = load_images(a).stack(), load_images(b).stack()
    mu_a, s_a = _stats(compute_features(real_a, ext))
    floor = frechet_distance(mu_a, s_a, *_stats(compute_features(real_b, ext)))
    print(json.dumps({"floor": round(floor, 2), "n": N_SAMPLE, "threads": args.threads}),
          flush=True)
    for block in args.blocks:
        cfg = SimulatorConfig(last_block=block, steps=args.steps).validate()
        t, c = time.perf_counter(), time.process_time()
        run = train_simulator(cfg, train, work / f"sim-{block}", progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        net, meta = load_simulator(run)
        rec = np.stack(reconstruct_images(net, list(real_b)))
        fid = frechet_distance(mu_a, s_a, *_stats(compute_features(rec, ext)))
        row = {
            "block": block, "steps": args.steps, "train_wall_s": round(wall, 1),
            "train_cpu_s": round(cpu, 1), "recorded_train_s": meta["train_seconds"],
            "psnr_b_db": round(float(np.mean(np.minimum(psnr(real_b, rec), 99))), 2),
            "fid": round(fid, 2), "ratio": round(fid / floor, 3)}
        print(json.dumps(row), flush=True)
        if args.ship is not None:
            _ship(run, args, row, floor, train)


def _ship(run: Path, args: argparse.Namespace, row: dict, floor: float,
          train: pd.DataFrame) -> None:
    """Package one measured simulator with its provenance (`gan.shipped.write_shipped`)."""
    meta = json.loads((run / "simulator.json").read_text())
    provenance = {
        "command": shlex.join(["python", "bench/simulator_quality.py", "--blocks", row["block"],
                               "--steps", str(args.steps), "--threads", str(args.threads),
                               "--work", "WORK", "--ship", "DIR"]),
        "data": {"photos": "the embedded photos, `ganforensics data photos` defaults",
                 "split": "train", "n": int(len(train)),
                 "groups": sorted(train["group"].astype(str).unique()),
                 "sha256": meta["config"]["data"]["sha256"]},
        "steps": meta["steps"], "seed": meta["seed"], "threads": args.threads,
        "train_seconds": meta["train_seconds"],
        "fid_n": N_SAMPLE, "fid": row["fid"], "floor": round(floor, 2),
        "ratio": row["ratio"], "psnr_db": row["psnr_b_db"],
        "versions": {"torch": torch.__version__, "ganforensics": ganforensics.__version__},
    }
    stack, _ = load_training_images(train, meta["size"])
    dest = write_shipped(run, args.ship, provenance, [pixel_sha256(im) for im in stack])
    print(json.dumps({"shipped": str(dest)}), flush=True)


if __name__ == "__main__":
    main()
