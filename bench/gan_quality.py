"""GAN sample quality over training: standard FID against the real-vs-real floor at milestones.

The protocol of `../shared/methods/fake-quality-calibration.md` (and `bench/simulator_quality.py`):
the embedded photos' 32-px train patches (`data photos` defaults), two disjoint samples of 453
of them, `a` (random_state 0) and `b` (random_state 1, from the rest); the floor is FID(a, b).
One GAN trains on all train patches with `gan train`'s trainer; at each milestone (a resumed
run, so the weights are those of one uninterrupted run) 453 samples of the raw G and, with
`--ema`, of its moving average are compared with `a`. Prints one JSON line per milestone (train
wall and CPU seconds so far, FID and FID / floor, FID's mean term, and the fakes' feature spread:
the trace of their covariance over the reference's) and appends it to `WORK/quality.jsonl`.

`--extend` trains a finished run of WORK further (a larger `--total-steps`, or a later last
milestone): the trainer's `extend`, so the weights are still those of one uninterrupted run, and
the seconds printed count from the run's start (the earlier invocations' rows in quality.jsonl).

With `--ship DIR` the finished generator (the moving average when `--ema`) is packaged as a
shipped one (`gan.shipped`, float16, with its provenance: the exact command, data, steps, seed,
FID, floor); the package's own are made with `--ship src/ganforensics/gan/shipped`, one run per
default last block (see docs/gan.md, "Fake quality").

    python bench/gan_quality.py --preset ttur --last-block BASELINE --augment \\
        color,translation,cutout --ema 0.999 --milestones 2000 5000 10000 --threads 1 --work W
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

import ganforensics
from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.errors import ConfigError, GanForensicsError
from ganforensics.gan.checkpoint import latest_checkpoint
from ganforensics.gan.config import PRECISIONS, GanConfig, preset
from ganforensics.gan.data import load_training_images
from ganforensics.gan.generate import sample_images
from ganforensics.gan.nets import Generator
from ganforensics.gan.shipped import pixel_sha256, write_shipped
from ganforensics.gan.train import train_gan
from ganforensics.io.loading import load_images
from ganforensics.io.runs import RunFolder
from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.metrics.fid import frechet_distance
from ganforensics.seeding import DEFAULT_SEED
from ganforensics.threads import apply_threads

N_SAMPLE = 453


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _checkpoint_generator(run: Path, name: str, cfg) -> Generator:  # type: ignore[no-untyped-def]
    """G (`name` "G") or its moving average ("G_ema") from the run's latest checkpoint."""
    ckpt = latest_checkpoint(run / "checkpoints")
    assert ckpt is not None, run
    gen = Generator(cfg.size, cfg.last_block, cfg.z_dim, cfg.dim)
    gen.load_state_dict(load_file(str(ckpt / f"{name}.safetensors")))
    return gen.eval()


def _latest(run: Path) -> Path | None:
    """The run's latest checkpoint folder; None for a new run."""
    return latest_checkpoint(run / "checkpoints") if run.is_dir() else None


def _reached_step(run: Path) -> int:
    """The step of the run's latest checkpoint; 0 for a new run."""
    ckpt = _latest(run)
    return int(ckpt.name.split("-")[-1]) if ckpt is not None else 0


def _seconds_so_far(log: Path, run: Path) -> tuple[float, float]:
    """Train wall and CPU seconds that earlier invocations spent reaching the run's latest
    checkpoint: their row for that step in `log`, else the trainer's own count in the
    checkpoint; zeros for a new run."""
    ckpt = _latest(run)
    if ckpt is None:
        return 0.0, 0.0
    done = _logged_row(log, _reached_step(run))
    if done is not None:
        return float(done["train_wall_s"]), float(done["train_cpu_s"])
    state = json.loads((ckpt / "state.json").read_text())  # stopped between milestones
    return float(state.get("seconds", 0.0)), float(state.get("cpu_seconds", 0.0))


def _one_run_command(argv: list[str], steps: int) -> str:
    """This invocation as one uninterrupted run to `steps`: without --extend and --total-steps,
    with `--milestones steps` (an extended run ends with the weights of that run)."""
    out, skip = [], False
    for arg in argv:
        if skip and not arg.startswith("--"):
            continue
        skip = arg in ("--milestones", "--total-steps")
        if not skip and arg != "--extend":
            out.append(arg)
    return shlex.join(["python", "bench/gan_quality.py", *out, "--milestones", str(steps)])


def _logged_row(log: Path, step: int) -> dict | None:
    """The last row `log` holds for `step` (None when it holds none)."""
    lines = log.read_text().splitlines() if log.is_file() else []
    rows = [r for r in map(json.loads, filter(str.strip, lines)) if r.get("step") == step]
    return rows[-1] if rows else None


def _invocations(log: Path) -> list[str]:
    """The commands that trained WORK's run, in order: those logged in `log` (each invocation
    logs its own before training; logs from before 2026-12-03 have none)."""
    heads = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [h["command"] for h in heads if "command" in h]


def build_parser() -> argparse.ArgumentParser:
    """The options of this benchmark (the recipe ones default to the preset's values)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ttur")
    ap.add_argument("--last-block", default="BASELINE")
    ap.add_argument("--augment", default="")
    ap.add_argument("--ema", type=float, default=0.0)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--d-depth", type=int, default=1, help="convs per resolution in D")
    ap.add_argument("--n-d", type=int, default=None,
                    help="D steps per G step (default: the preset's)")
    ap.add_argument("--lr-d", type=float, default=None,
                    help="D's learning rate (default: the preset's)")
    ap.add_argument("--betas", type=float, nargs=2, default=None, metavar=("B1", "B2"),
                    help="Adam's betas of both networks (default: the preset's)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--precision", choices=PRECISIONS, default="float32",
                    help="arithmetic of the training step (bfloat16: autocast, about 2x "
                         "faster on CPUs with AMX or AVX512-BF16, about 20x slower on AVX2 "
                         "alone); a resumed run may switch, and records the step")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--milestones", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--total-steps", type=int, default=None,
                    help="the run's configured length (default: the last milestone); fix it "
                         "to extend a run later with more milestones")
    ap.add_argument("--extend", action="store_true",
                    help="train the finished run in WORK further (to --total-steps)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of the training (e.g. cuda); "
                    "sampling and FID run on the CPU")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reference", type=Path, default=None,
                    help="an .npz to cache the reference statistics and floor in (shared by "
                         "runs; the features of `a` and `b` cost minutes on a CPU)")
    ap.add_argument("--ship", type=Path, default=None,
                    help="package the finished generator here as a shipped one (float16)")
    ap.add_argument("--no-fid", action="store_true",
                    help="train to the milestones and measure nothing (where the standard "
                         "Inception network is not installed, e.g. a lent GPU machine); the "
                         "same command without it, on any --device, then measures the step "
                         "the run reached")
    return ap


def config_of(args: argparse.Namespace, steps: int) -> GanConfig:
    """The training config these options ask for, `steps` long."""
    return preset(args.preset, last_block=args.last_block, steps=steps, batch=args.batch,
                  dim=args.dim, d_depth=args.d_depth, n_d=args.n_d, lr_d=args.lr_d,
                  betas=None if args.betas is None else tuple(args.betas), seed=args.seed,
                  augment=args.augment, ema=args.ema, precision=args.precision,
                  checkpoint_every=500, sample_every=1000, device=args.device)


def _reference(args: argparse.Namespace, train: pd.DataFrame, ext: Any
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """The statistics of `a` and the floor FID(a, b), from `--reference` when it holds them."""
    if args.reference is not None and args.reference.is_file():
        ref = np.load(args.reference)
        return ref["mu_a"], ref["s_a"], float(ref["floor"])
    a = train.sample(N_SAMPLE, random_state=0)
    b = train.drop(a.index).sample(N_SAMPLE, random_state=1)
    mu_a, s_a = _stats(compute_features(load_images(a).stack(), ext))
    floor = frechet_distance(mu_a, s_a, *_stats(compute_features(load_images(b).stack(), ext)))
    if args.reference is not None:
        np.savez(args.reference, mu_a=mu_a, s_a=s_a, floor=floor)
    return mu_a, s_a, floor


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.no_fid and args.ship is not None:
        raise ConfigError("--ship needs the FID of the finished generator; drop --no-fid")
    apply_threads(args.threads)
    patches = make_patches(args.work / "photos", force=True)  # deterministic: same patches
    train = split_of(patches, "train").reset_index(drop=True)
    if args.no_fid:
        ext, mu_a, s_a, floor = None, None, None, None
    else:
        ext = get_extractor("inception")
        mu_a, s_a, floor = _reference(args, train, ext)
    cfg = config_of(args, args.total_steps or max(args.milestones))
    run_dir = args.work / "run"
    argv = sys.argv[1:] if argv is None else argv
    log = args.work / "quality.jsonl"
    reached = _reached_step(run_dir)
    finished = _logged_row(log, cfg.steps) if reached >= cfg.steps else None
    row: dict = finished or {}
    milestones = [] if finished else sorted(args.milestones)
    if finished:  # a rerun of a finished run: nothing to train, log or measure
        print(f"{run_dir} finished at step {cfg.steps} already; its logged row follows",
              file=sys.stderr, flush=True)
        print(json.dumps(finished), flush=True)
    else:
        head = {"floor": None if floor is None else round(floor, 2), "n": N_SAMPLE,
                "threads": args.threads, "config": cfg.to_dict(), "torch": torch.__version__,
                "command": shlex.join(["python", "bench/gan_quality.py", *argv])}
        print(json.dumps(head), flush=True)
        with log.open("a") as fh:
            fh.write(json.dumps(head) + "\n")
    wall, cpu = _seconds_so_far(log, run_dir)
    for m in milestones:
        if m < reached:  # its weights are gone: evaluating now would label step `reached` as m
            print(f"milestone {m}: skipped, the run is already at step {reached}",
                  file=sys.stderr, flush=True)
            continue
        t, c = time.perf_counter(), time.process_time()
        run = train_gan(cfg, train, run_dir, progress=False, stop_at_step=m, extend=args.extend)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        row = {"step": m, "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1)}
        for name in () if ext is None else ("G", "G_ema") if cfg.ema else ("G",):
            fakes = sample_images(_checkpoint_generator(run, name, cfg), N_SAMPLE, seed=7)
            mu, s = _stats(compute_features(fakes, ext))
            fid = frechet_distance(mu_a, s_a, mu, s)
            key = "ema" if name == "G_ema" else "raw"
            row[f"fid_{key}"], row[f"ratio_{key}"] = round(fid, 2), round(fid / floor, 3)
            # where the distance lies: the means' part of FID, and the fakes' feature spread
            # (trace of their covariance) relative to the reference's (< 1: too little variety)
            row[f"mean_term_{key}"] = round(float(((mu - mu_a) ** 2).sum()), 2)
            row[f"spread_{key}"] = round(float(np.trace(s) / np.trace(s_a)), 3)
        print(json.dumps(row), flush=True)
        with log.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
    if args.ship is not None and row.get("step") == cfg.steps:
        key = "ema" if cfg.ema else "raw"
        provenance = {
            "command": _one_run_command(argv, cfg.steps),
            "invocations": _invocations(log),
            "data": {"photos": "the embedded photos, `ganforensics data photos` defaults",
                     "split": "train", "n": int(len(train)),
                     "groups": sorted(train["group"].astype(str).unique())},
            "steps": cfg.steps, "seed": cfg.seed, "threads": args.threads,
            "train_wall_s": row["train_wall_s"], "train_cpu_s": row["train_cpu_s"],
            "fid_n": N_SAMPLE, "fid": row[f"fid_{key}"], "floor": round(floor, 2),
            "ratio": row[f"ratio_{key}"], "weights": "float16",
            "versions": {"torch": torch.__version__, "ganforensics": ganforensics.__version__},
        }
        moves = RunFolder(run_dir).moves()
        if moves:  # resumed on another device or in other arithmetic: from which step
            provenance["moves"] = moves
        stack, _ = load_training_images(train, cfg.size)
        dest = write_shipped(run_dir, args.ship, provenance, [pixel_sha256(im) for im in stack],
                             half=True)
        print(json.dumps({"shipped": str(dest)}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except GanForensicsError as err:  # a bad option or input: its message, no traceback
        sys.exit(f"gan_quality.py: {err}")
