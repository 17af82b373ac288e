"""Benchmark: data-parallel training under torchrun (2 gloo processes) against one process.

Times, in one invocation, the real training entry points on the same global batch:

- `gan`: `train_gan`, ttur preset, 32x32, batch 64, `--steps` steps;
- `cnn`: `train_cnn_detector`, small CNN, wang2020 recipe (blur/JPEG augmentation), crop 32,
  batch 64, 1,024 training and 128 validation images, `--epochs` epochs;

each as 1 process x 1 thread, 1 process x 2 threads, and 2 processes x 1 thread started by
`torchrun --standalone --nproc-per-node 2`. Each child first runs a short warm-up (which also
joins the process group), then times the run; wall time is rank 0's, CPU time the sum over the
processes. Prints steps/s and the ratio of each row to 1 process x 1 thread.

    python bench/ddp.py [--steps 120] [--epochs 2] [--what gan cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, os, sys, tempfile, time
import numpy as np
import torch
from skimage import data
from ganforensics.gan.config import preset
from ganforensics.gan.train import train_gan
from ganforensics.detectors.cnn import train_cnn_detector

what, n, threads, report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
rank = int(os.environ.get("RANK", "0"))
rng = np.random.default_rng(0)
photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]

def patches(k):
    out = []
    for i in range(k):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - 32), rng.integers(0, img.shape[1] - 32)
        out.append(img[y:y + 32, x:x + 32])
    return np.stack(out)

with tempfile.TemporaryDirectory() as tmp:
    if what == "gan":
        x = patches(2048)
        train_gan(preset("ttur", steps=3, checkpoint_every=3, sample_every=3), x,
                  f"{tmp}/warm", progress=False)
        cfg = preset("ttur", steps=n, checkpoint_every=n, sample_every=n)
        t, c = time.perf_counter(), time.process_time()
        train_gan(cfg, x, f"{tmp}/run", progress=False)
    else:
        x, vx = patches(1024), patches(128)
        y, vy = np.arange(1024) % 2, np.arange(128) % 2
        x[y == 1] = x[y == 1] // 2 * 2
        vx[vy == 1] = vx[vy == 1] // 2 * 2
        kw = dict(batch_size=64, crop_size=32, progress=False)
        train_cnn_detector("small", "wang2020", (list(x[:128]), y[:128]), (list(vx), vy),
                           f"{tmp}/warm", epochs=1, **kw)
        t, c = time.perf_counter(), time.process_time()
        train_cnn_detector("small", "wang2020", (list(x), y), (list(vx), vy), f"{tmp}/run",
                           epochs=n, **kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
with open(f"{report}/{rank}.json", "w") as f:
    json.dump({"wall": wall, "cpu": cpu}, f)
"""

SETUPS = (("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2),
          ("2 processes x 1 thread (gloo)", 2, 1))


def run(script: Path, what: str, n: int, procs: int, threads: int) -> dict[str, float]:
    """Rank 0's wall seconds and the CPU seconds of all processes for one timed run."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "GANFORENSICS_PROGRESS": "0",
           "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as report:
        args = [str(script), what, str(n), str(threads), report]
        cmd = ([sys.executable, *args] if procs == 1 else
               [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={procs}", *args])
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=3600)
        rows = [json.loads((Path(report) / f"{r}.json").read_text()) for r in range(procs)]
    return {"wall": rows[0]["wall"], "cpu": sum(r["cpu"] for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=120, help="GAN steps")
    ap.add_argument("--epochs", type=int, default=2, help="CNN epochs (16 steps each)")
    ap.add_argument("--what", nargs="+", default=["gan", "cnn"], choices=["gan", "cnn"])
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs seen; load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        for what in args.what:
            n = args.steps if what == "gan" else args.epochs
            steps = n if what == "gan" else n * (1024 // 64)
            print(f"{what}: {steps} steps of a global batch of 64", flush=True)
            base = None
            for name, procs, threads in SETUPS:
                r = run(script, what, n, procs, threads)
                base = base or r["wall"]
                print(f"  {name:30s} {steps / r['wall']:6.2f} steps/s  wall {r['wall']:6.1f} s"
                      f"  CPU {r['cpu']:6.1f} s  speed-up {base / r['wall']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
