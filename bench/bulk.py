"""Benchmark: `predict --engine ray` (Ray Data on a local cluster) against plain local `predict`
on the same images, in the same run; the overhead of Ray as a ratio of wall times.

    python bench/bulk.py                 # 2,000 PNGs of 64x64, the small CNN, 1 thread
    python bench/bulk.py --n 200         # a quick check

Both sides score with one thread: local `predict` with `--threads 1`, Ray with one actor of
one CPU on a 2-CPU local cluster (the other CPU stays free for Ray Data's read tasks). Ray's
start-up (`ray.init`) is timed apart and not in the Ray time; the Ray time covers listing,
scoring, gathering and writing the Parquet partitions. CPU seconds: the local run's process
time; for Ray, the driver plus every process it started (raylet, workers), read from /proc.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, size: int, seed: int) -> None:
    """Smooth random colour PNGs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (max(1, size // 8),) * 2 + (3,), dtype=np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        img.save(folder / f"img_{i:05d}.png")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and all its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [c for c, p in parent.items() if p == pid]
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    ap.add_argument("--size", type=int, default=64, help="image side (default 64)")
    ap.add_argument("--arch", default="small", help="CNN architecture (default small)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--partition-rows", type=int, default=500)
    ap.add_argument("--backend", default="torch", help="torch or onnxruntime (both sides)")
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args(argv)
    os.environ.setdefault("GANFORENSICS_PROGRESS", "0")

    import ray
    import torch

    from ganforensics.detectors import load_detector
    from ganforensics.detectors.cnn.archs import build_model
    from ganforensics.detectors.cnn.model import CNNDetector
    from ganforensics.evaluate.bulk import predict_ray, read_bulk
    from ganforensics.evaluate.predict import predict_inputs
    from ganforensics.threads import apply_threads

    apply_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "imgs", args.n, args.size, args.seed)
        torch.manual_seed(args.seed)
        CNNDetector(build_model(args.arch), args.arch, input_size=args.size).save(root / "model")

        det = load_detector(root / "model", args.backend)
        predict_inputs(det, [root / "imgs"], batch_size=args.batch_size, progress=False)  # warm
        w, c = time.perf_counter(), time.process_time()
        det = load_detector(root / "model", args.backend)
        local = predict_inputs(det, [root / "imgs"], batch_size=args.batch_size, progress=False)
        t_local, c_local = time.perf_counter() - w, time.process_time() - c

        w = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2,
                 log_to_driver=False, configure_logging=False)
        t_init = time.perf_counter() - w
        try:
            c0 = tree_cpu_seconds(os.getpid())
            w = time.perf_counter()
            predict_ray(root / "model", [root / "imgs"], root / "out", backend=args.backend,
                        batch_size=args.batch_size, partition_rows=args.partition_rows,
                        actors=1, cpus_per_actor=1.0)
            t_ray = time.perf_counter() - w
            c_ray = tree_cpu_seconds(os.getpid()) - c0
        finally:
            ray.shutdown()
        got = read_bulk(root / "out")
    diff = float(np.nanmax(np.abs(got["prob_fake"].to_numpy() - local["prob_fake"].to_numpy())))
    print(f"ray {ray.__version__}, torch {torch.__version__}, {args.n} images "
          f"{args.size}x{args.size}, {args.arch}, backend {args.backend}, 1 thread each side")
    print(f"local predict            : {t_local:7.2f} s ({args.n / t_local:7.1f} img/s) "
          f"{c_local:7.1f} CPU s")
    print(f"ray (1 actor x 1 CPU)    : {t_ray:7.2f} s ({args.n / t_ray:7.1f} img/s) "
          f"{c_ray:7.1f} CPU s (driver + raylet + workers); ray.init {t_init:.1f} s apart")
    print(f"ray / local wall time {t_ray / t_local:.2f}x "
          f"(with ray.init {(t_ray + t_init) / t_local:.2f}x); max |prob difference| {diff:.1e}")
    return 0 if diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
