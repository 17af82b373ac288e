"""Benchmark: GAN training steps/s at 32x32, batch 64 (ttur preset), ours against a baseline tree.

Times the real training loop (`train_gan`, one checkpoint and one sample grid at the end) on
patches cut from skimage.data photos, each run in a fresh child process with its threads pinned.
With `--baseline-src DIR` (e.g. the `src` of `git archive <rev> src`) the same runs of that
code alternate with ours in the same invocation and the ratio is printed. With `--objectives`
each auxiliary objective (`gan.objectives`) runs alternating with plain training of the same
block, and its cost relative to plain is printed; `--variants` does the same for any training
option (`KEY=VALUE`, several joined with `+`: `augment=color,translation,cutout`, `ema=0.999`,
`preset=sngan`, `spectral_norm=1`, `loss=hinge`, `objectives=ss,dag`, `dim=64`,
`precision=bfloat16`); `--base` sets options of every run (the recipe the variants, or the
baseline tree, are compared in).

    python bench/gan.py [--steps 200] [--threads 1] [--blocks BASELINE N.3.5]
                        [--baseline-src /tmp/base/src] [--repeats 2]
    python bench/gan.py --blocks N.3.5 --baseline-src /tmp/base/src --base preset=sngan+dim=64
    python bench/gan.py --objectives infomax ss ms dag gn [--blocks BASELINE]
    python bench/gan.py --variants augment=color,translation,cutout ema=0.999 preset=sngan
    python bench/gan.py --blocks BASELINE --steps 100 --variants precision=bfloat16 \
        --base preset=sngan+dim=64+d_depth=2+n_d=2+augment=color,translation,cutout+ema=0.9999
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, tempfile, time
import numpy as np
import torch
from skimage import data
from ganforensics.gan.config import preset
from ganforensics.gan.train import train_gan

block, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kw = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
name = kw.pop("preset", "ttur")
torch.set_num_threads(threads)
rng = np.random.default_rng(0)
photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
patches = []
for i in range(2048):
    img = photos[i % len(photos)]
    y, x = rng.integers(0, img.shape[0] - 32), rng.integers(0, img.shape[1] - 32)
    patches.append(img[y:y + 32, x:x + 32])
patches = np.stack(patches)
with tempfile.TemporaryDirectory() as tmp:  # warm-up: one-off kernel and allocator set-up
    train_gan(preset(name, last_block=block, steps=3, checkpoint_every=3, sample_every=3,
                     **kw), patches, f"{tmp}/warm", progress=False)
    cfg = preset(name, last_block=block, steps=steps, checkpoint_every=steps,
                 sample_every=steps, **kw)
    t, c = time.perf_counter(), time.process_time()
    train_gan(cfg, patches, f"{tmp}/run", progress=False)
    print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c}))
"""


def variant_options(text: str) -> dict[str, object]:
    """`"augment=color,cutout+ema=0.999"` -> preset overrides; "" = plain training."""
    out: dict[str, object] = {}
    for part in filter(None, text.split("+")):
        key, _, value = part.partition("=")
        if key == "objectives":
            out[key] = [v for v in value.split(",") if v]
        elif key in ("ema", "lr_g", "lr_d"):
            out[key] = float(value)
        elif key in ("dim", "d_depth", "n_d", "batch", "z_dim"):
            out[key] = int(value)
        elif key == "spectral_norm":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def run_child(src: Path, block: str, steps: int, threads: int,
              variant: str = "") -> dict[str, float]:
    """Wall and CPU seconds of `steps` training steps with the package found in `src`
    (`variant`: training options as `variant_options` reads them, "" = plain)."""
    env = {**os.environ, "PYTHONPATH": str(src), "GANFORENSICS_PROGRESS": "0",
           "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD, block, str(steps), str(threads),
                          json.dumps(variant_options(variant))],
                         env=env, check=True, capture_output=True, text=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blocks", nargs="+", default=["BASELINE", "N.1.5", "N.3.5"])
    ap.add_argument("--baseline-src", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--objectives", nargs="+", default=None,
                    help="time these objectives (comma-join to combine) against plain training")
    ap.add_argument("--variants", nargs="+", default=None,
                    help="time these training options (KEY=VALUE, joined with +) against plain")
    ap.add_argument("--base", default="",
                    help="training options of every run: both trees' with --baseline-src, "
                         "every --variants run (plain included)")
    args = ap.parse_args()
    if args.objectives or args.variants:
        bench_objectives(args)
        return
    ours = Path(__file__).resolve().parents[1] / "src"
    trees = {"ours": ours}
    if args.baseline_src is not None:
        trees["baseline"] = args.baseline_src.resolve()
    load = os.getloadavg()[0]
    print(f"32x32, batch 64, {args.base or 'ttur preset'}, {args.steps} steps, "
          f"{args.threads} torch thread(s), best of {args.repeats}; load average at start "
          f"{load:.1f}")
    for block in args.blocks:
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):  # alternate the trees so load drifts hit both alike
            for name, src in trees.items():
                r = run_child(src, block, args.steps, args.threads, args.base)
                if name not in best or r["wall"] < best[name]["wall"]:
                    best[name] = r
        line = "  ".join(f"{n} {args.steps / r['wall']:6.2f} steps/s (wall {r['wall']:.1f} s, "
                         f"CPU {r['cpu']:.1f} s)" for n, r in best.items())
        if "baseline" in best:
            line += f"  speed-up {best['baseline']['wall'] / best['ours']['wall']:.2f}x"
        print(f"{block:9s} {line}", flush=True)


def bench_objectives(args: argparse.Namespace) -> None:
    """Steps/s of each objective or variant against plain training of the same block,
    alternating."""
    variants = [f"objectives={o}" for o in args.objectives or []] + list(args.variants or [])
    src = Path(__file__).resolve().parents[1] / "src"
    print(f"32x32, batch 64, {args.base or 'ttur preset'}, {args.steps} steps, "
          f"{args.threads} torch thread(s), best of {args.repeats}; load average at start "
          f"{os.getloadavg()[0]:.1f}")
    for block in args.blocks:
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for obj in ["", *variants]:
                r = run_child(src, block, args.steps, args.threads,
                              "+".join(filter(None, (args.base, obj))))
                if obj not in best or r["wall"] < best[obj]["wall"]:
                    best[obj] = r
        for obj, r in best.items():
            ratio = r["wall"] / best[""]["wall"]
            print(f"{block:9s} {obj or 'plain':34s} {args.steps / r['wall']:6.2f} steps/s "
                  f"(wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s)  {ratio:.2f}x plain's time",
                  flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
