"""Benchmark: GAN training steps/s at 32x32, batch 64, for BASELINE and N.1.5 (dcgan preset).

Times the real training loop (`train_gan`, checkpoints and sample grids off except at the end)
on patches cut from skimage.data photos. Run: python bench/gan.py [--steps 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from ganforensics.gan.config import preset
from ganforensics.gan.train import train_gan


def photo_patches(n: int = 2048, size: int = 32, seed: int = 0) -> np.ndarray:
    """Random size x size crops of four skimage.data colour photos."""
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out.append(img[y:y + size, x:x + size])
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", nargs="+", default=["BASELINE", "N.1.5"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = photo_patches()
    print(f"32x32, batch 64, dcgan preset, {args.steps} steps, torch threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: one-off kernel/alloc set-up costs
        train_gan(preset("dcgan", steps=5, checkpoint_every=5, sample_every=5), data,
                  f"{tmp}/warm", progress=False)
    for block in args.blocks:
        cfg = preset("dcgan", last_block=block, steps=args.steps, checkpoint_every=args.steps,
                     sample_every=args.steps)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            train_gan(cfg, data, f"{tmp}/run", progress=False)
            dt = time.perf_counter() - t
        print(f"{block:9s} {args.steps / dt:7.2f} steps/s  ({dt:.1f} s incl. setup)")


if __name__ == "__main__":
    main()
