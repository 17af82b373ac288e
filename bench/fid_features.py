"""Benchmark: the standard Inception's features through torch vs ONNX Runtime, same run.

Images per second (wall) and CPU seconds per image, per backend and batch size, on random
32-px uint8 images (the network always runs at 299x299, so the input size hardly matters).
The ONNX export (once per process) is timed apart. Ends with the largest feature difference
between the backends.

Run: python bench/fid_features.py [--n 100] [--batches 25,50,100] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.threads import apply_threads, resolve_threads


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="images per measurement")
    ap.add_argument("--batches", default="25,50,100")
    ap.add_argument("--threads", type=int, default=None, help="default: the toolkit's")
    args = ap.parse_args()
    threads = apply_threads(resolve_threads(args.threads))
    imgs = np.random.default_rng(0).integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    print(f"{args.n} images of 32 px, {threads} thread(s)")
    feats = {}
    for backend in ("torch", "onnxruntime"):
        ext = get_extractor("inception", backend=backend)
        _, wall, cpu = _timed(lambda ext=ext: ext(imgs[:2]))  # warm-up (+ ONNX export)
        print(f"{backend:12s} first call (2 images, incl. export/JIT warm-up): {wall:6.1f} s "
              f"wall {cpu:6.1f} s CPU")
        for batch in (int(b) for b in args.batches.split(",")):
            f, wall, cpu = _timed(lambda ext=ext, b=batch: compute_features(imgs, ext, b))
            feats[backend] = f
            print(f"{backend:12s} batch {batch:4d}: {args.n / wall:6.1f} img/s  "
                  f"{cpu:6.1f} CPU s ({cpu / args.n * 1000:5.0f} ms/img)  {wall:6.1f} s wall")
    diff = np.abs(feats["torch"] - feats["onnxruntime"]).max()
    print(f"max |torch - onnxruntime| feature difference {diff:.2e} "
          f"(max |feature| {np.abs(feats['torch']).max():.2f})")


if __name__ == "__main__":
    main()
