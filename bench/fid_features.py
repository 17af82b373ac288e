"""Benchmark: the standard Inception's features through torch vs ONNX Runtime, same run.

Images per second (wall) and CPU seconds per image, per backend and batch size, on random
32-px uint8 images (the network always runs at 299x299, so the input size hardly matters).
The ONNX export (once per process) is timed apart. Ends with the largest feature difference
between the backends.

With --resize-gap N: FID between N real 32-px photo patches (top halves of scikit-image's
photos) and N others (bottom halves) when the 32 -> 299 resize is TF1 bilinear (ours, the TF
graph's), torch's half-pixel bilinear (pytorch-fid's) or PIL bicubic (clean-fid's "clean").

Run: python bench/fid_features.py [--n 100] [--batches 25,50,100] [--threads 2]
     python bench/fid_features.py --resize-gap 200 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.metrics.fid import feature_stats, frechet_distance
from ganforensics.metrics.inception import tf1_resize
from ganforensics.threads import apply_threads, resolve_threads


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _patches(top: bool, n: int, seed: int, size: int = 32) -> np.ndarray:
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        half = p[: p.shape[0] // 2] if top else p[p.shape[0] // 2:]
        y, x = rng.integers(0, half.shape[0] - size), rng.integers(0, half.shape[1] - size)
        out.append(half[y:y + size, x:x + size])
    return np.stack(out)


def _pil_bicubic(t: torch.Tensor) -> torch.Tensor:
    from cleanfid.resize import make_resizer  # dev extra; clean-fid's "clean" resize

    fn = make_resizer("PIL", False, "bicubic", (299, 299))
    ims = [fn(im.permute(1, 2, 0).numpy()) for im in t]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2)


def resize_gap(n: int) -> None:
    ext = get_extractor("inception")
    resizes = {
        "TF1 bilinear (ours)": tf1_resize,
        "torch half-pixel bilinear": lambda t: F.interpolate(t, size=(299, 299),
                                                             mode="bilinear",
                                                             align_corners=False),
        "PIL bicubic (clean-fid)": _pil_bicubic,
    }
    sets = [torch.from_numpy(_patches(top, n, i)).permute(0, 3, 1, 2).float()
            for i, top in enumerate((True, False))]
    feats = {}
    for name, fn in resizes.items():
        fs = [np.concatenate([ext.runner(((fn(s[i:i + 50]) - 128) / 128).contiguous())
                              for i in range(0, n, 50)]) for s in sets]
        feats[name] = fs
        fid = frechet_distance(*feature_stats(fs[0]), *feature_stats(fs[1]))
        print(f"{name:28s} FID(top, bottom) {fid:8.2f}")
    ours = feats["TF1 bilinear (ours)"][0]
    for name, fs in feats.items():
        cross = frechet_distance(*feature_stats(ours), *feature_stats(fs[0]))
        print(f"FID(top via TF1, top via {name}) {cross:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="images per measurement")
    ap.add_argument("--batches", default="25,50,100")
    ap.add_argument("--threads", type=int, default=None, help="default: the toolkit's")
    ap.add_argument("--resize-gap", type=int, default=0, metavar="N")
    args = ap.parse_args()
    threads = apply_threads(resolve_threads(args.threads))
    if args.resize_gap:
        resize_gap(args.resize_gap)
        return
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
