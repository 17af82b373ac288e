"""Benchmark: NPR (`--arch npr`, 1.44 M parameters) against ResNet-50 (`resnet50`, the
CNNDetection backbone, 23.5 M) on CPU, in the same run, on the same images, through the same
`CNNDetector.probs` path that `predict` uses (BatchNorm folded, channels-last, chunked batches).

    python bench/npr_vs_resnet50.py                 # 256 images of 256x256, centre crop 224
    python bench/npr_vs_resnet50.py --n 64 --threads 1

Both detectors get the same input: each image's 224 px centre crop (NPR's own test policy,
resize 256 without a crop, would give it 1.3x more pixels). Threads are pinned with
`torch.set_num_threads`; each model is warmed up on 8 images, then timed `--repeats` times
(the best run is reported). Prints images/s, process CPU seconds and the ratio.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch


def images(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Smooth random colour images with a little noise (uint8, size x size x 3)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        big = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
        out.append(np.clip(big.astype(int) + rng.integers(-8, 9, big.shape), 0, 255)
                   .astype(np.uint8))
    return out


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_arch(arch: str, imgs: list[np.ndarray], batch: int, repeats: int) -> dict[str, float]:
    from ganforensics.detectors.cnn import CNNDetector, build_model

    torch.manual_seed(0)
    det = CNNDetector(build_model(arch), arch, input_size=224, crop="center",
                      batch_size=batch).fused()
    det.probs(imgs[:8])  # warm-up
    best = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), cpu_seconds()
        det.probs(imgs)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    params = sum(p.numel() for p in build_model(arch).parameters())
    return {"wall": best[0], "cpu": best[1], "ips": len(imgs) / best[0], "params": params}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="images (default 256)")
    ap.add_argument("--size", type=int, default=256, help="image side (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    imgs = images(args.n, args.size, args.seed)
    print(f"{args.n} images {args.size}x{args.size}, centre crop 224, batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}")
    res = {}
    for arch in ("npr", "resnet50"):
        r = res[arch] = time_arch(arch, imgs, args.batch_size, args.repeats)
        print(f"{arch:9s}: {r['params'] / 1e6:5.2f} M params  {r['wall']:7.2f} s wall  "
              f"{r['cpu']:7.2f} s CPU  {r['ips']:7.1f} img/s")
    print(f"npr / resnet50 throughput: {res['npr']['ips'] / res['resnet50']['ips']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
