"""Benchmark: batched durall profiles vs per-image reference-style code vs the bare FFT.

Times, on the same batch of images (default 2,000 crops of 256 x 256 from the photographs
that ship with scikit-image):

1. reference-style per-image code: NumPy `fft2` + `fftshift` + ``20 ln|F + 1e-8|``, then the
   sort-based radial binning of the reference (indices, hypot, argsort, cumsum), one image at
   a time;
2. ours, float64 (parity mode) and float32: `ganforensics.spectral.spectra.durall_profiles`;
3. the floor: the bare batched FFT of the same (grayscale) batch, complex `fft2` and the real
   `rfft2` our code uses, float32 and float64, same chunks and workers.

Prints images/s for each, the speed-ups over the per-image code and the maximum relative
error of each mode against the per-image float64 result.

Example: python bench/spectrum.py            (the full run: --n 2000 --size 256)
         python bench/spectrum.py --n 200    (a quick check)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.fft as sfft

from ganforensics.spectral.spectra import (
    DEFAULT_CHUNK_PIXELS,
    _chunks,
    durall_profiles,
    to_gray,
)


def make_batch(n: int, size: int, seed: int) -> np.ndarray:
    """`n` random crops of `size` px from scikit-image's colour photographs."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(),
              data.immunohistochemistry(), data.hubble_deep_field()]
    photos = [p[..., :3] for p in photos if min(p.shape[:2]) > size]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        p = photos[int(rng.integers(len(photos)))]
        y = int(rng.integers(0, p.shape[0] - size + 1))
        x = int(rng.integers(0, p.shape[1] - size + 1))
        out[i] = p[y : y + size, x : x + size]
    return out


def reference_profile(img: np.ndarray) -> np.ndarray:
    """One image, written the way the reference code does it (per image, sort-based)."""
    gray = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    spec = np.fft.fftshift(np.fft.fft2(gray))
    spec = spec + 1e-8
    mag = 20 * np.log(np.abs(spec))
    y, x = np.indices(mag.shape)
    center = np.array([(x.max() - x.min()) / 2.0, (y.max() - y.min()) / 2.0])
    r = np.hypot(x - center[0], y - center[1])
    order = np.argsort(r.flat)
    r_sorted = r.flat[order]
    v_sorted = mag.flat[order]
    r_int = r_sorted.astype(int)
    steps = np.where(r_int[1:] - r_int[:-1])[0]
    counts = steps[1:] - steps[:-1]
    csum = np.cumsum(v_sorted, dtype=np.float64)
    return (csum[steps[1:]] - csum[steps[:-1]]) / counts


def bare_fft(gray: np.ndarray, real: bool, workers: int) -> None:
    n, h, w = gray.shape
    fn = sfft.rfft2 if real else sfft.fft2
    for sl in _chunks(n, h, w, DEFAULT_CHUNK_PIXELS):
        fn(gray[sl], axes=(-2, -1), workers=workers)


def timed(fn, repeat: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    ap.add_argument("--size", type=int, default=256, help="image size in px (default 256)")
    ap.add_argument("--workers", type=int, default=2, help="FFT threads (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs (default 1)")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()

    batch = make_batch(args.n, args.size, args.seed)
    # warm caches (binning plans, FFT plans) on a few images; not timed
    durall_profiles(batch[:4])
    durall_profiles(batch[:4], dtype=np.float32)

    t_ref, ref = timed(lambda: np.stack([reference_profile(im) for im in batch]), args.repeat)
    t64, p64 = timed(lambda: durall_profiles(batch, workers=args.workers), args.repeat)
    t32, p32 = timed(
        lambda: durall_profiles(batch, dtype=np.float32, workers=args.workers), args.repeat
    )
    floors = {}
    for dt in (np.float32, np.float64):
        gray = to_gray(batch, dt)
        for real in (False, True):
            name = f"bare {'rfft2' if real else 'fft2'} {np.dtype(dt).name}"
            floors[name] = timed(lambda g=gray, r=real: bare_fft(g, r, args.workers),
                                 args.repeat)[0]
        del gray
    rel64 = np.abs(p64 - ref) / np.abs(ref)
    rel32 = np.abs(p32 - ref) / np.abs(ref)
    err64, err32 = float(rel64.max()), float(rel32.max())
    rows = [
        ("per-image reference-style (float64)", t_ref, None),
        ("ours float64 (parity)", t64, err64),
        ("ours float32", t32, err32),
    ] + [(k, v, None) for k, v in floors.items()]
    print(f"{args.n} images of {args.size}x{args.size}, workers={args.workers}, "
          f"best of {args.repeat}; profile length {ref.shape[1]}")
    print(f"{'method':<38} {'seconds':>8} {'images/s':>9} {'vs per-image':>13} {'max rel err':>12}")
    for name, t, err in rows:
        e = f"{err:.2e}" if err is not None else ""
        print(f"{name:<38} {t:>8.3f} {args.n / t:>9.0f} {t_ref / t:>12.1f}x {e:>12}")
    print(f"speed-up float64: {t_ref / t64:.1f}x (target >= 4x); "
          f"float32: {t_ref / t32:.1f}x (target >= 10x)")
    print(f"float32 vs per-image float64: max relative error {err32:.2e}, median "
          f"{np.median(rel32):.1e}, max absolute {np.abs(p32 - ref).max():.2e} (units of 20 ln|F|)")
    if args.json:
        print(json.dumps({
            "n": args.n, "size": args.size, "workers": args.workers,
            "seconds": {name: t for name, t, _ in rows},
            "max_rel_err": {"float64": err64, "float32": err32},
            "median_rel_err": {"float64": float(np.median(rel64)),
                               "float32": float(np.median(rel32))},
            "speedup": {"float64": t_ref / t64, "float32": t_ref / t32},
        }, indent=2))


if __name__ == "__main__":
    main()
