"""What FID do mildly degraded reals get? A yardstick for the fakes' FID on the same protocol.

The protocol of `bench/gan_quality.py`: the embedded photos' 32-px train patches, `a` (453,
random_state 0) and `b` (453 others, random_state 1); the floor is FID(a, b). Here `b` is
blurred (Gaussian, PIL radius r) or reduced and enlarged again (bicubic), and compared with `a`.
Prints one JSON line per set: FID, FID / floor, and the feature spread (trace of the set's
Inception-feature covariance over `a`'s), the two numbers `gan_quality.py` gives for fakes.

    python bench/fid_degraded_reals.py --work W --threads 1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.io.loading import load_images
from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.metrics.fid import frechet_distance
from ganforensics.threads import apply_threads

N_SAMPLE = 453


def _each(images: np.ndarray, fn: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(im))) for im in images])


def _blur(radius: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.filter(ImageFilter.GaussianBlur(radius))


def _reduce(factor: int) -> Callable[[Image.Image], Image.Image]:
    def fn(im: Image.Image) -> Image.Image:
        small = im.resize((im.width // factor, im.height // factor), Image.Resampling.BICUBIC)
        return small.resize(im.size, Image.Resampling.BICUBIC)
    return fn


DEGRADATIONS: dict[str, Callable[[Image.Image], Image.Image] | None] = {
    "b (the floor)": None,
    "b, blur r=0.5": _blur(0.5), "b, blur r=1": _blur(1.0), "b, blur r=2": _blur(2.0),
    "b, reduced x2 and enlarged": _reduce(2), "b, reduced x4 and enlarged": _reduce(4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the patches")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    apply_threads(args.threads)
    train = split_of(make_patches(args.work / "photos", force=True), "train")
    a = train.sample(N_SAMPLE, random_state=0)
    b = load_images(train.drop(a.index).sample(N_SAMPLE, random_state=1)).stack()
    ext = get_extractor("inception")
    fa = compute_features(load_images(a).stack(), ext)
    mu_a, s_a = fa.mean(axis=0), np.cov(fa, rowvar=False)
    floor = None
    for name, fn in DEGRADATIONS.items():
        f = compute_features(b if fn is None else _each(b, fn), ext)
        s = np.cov(f, rowvar=False)
        fid = frechet_distance(mu_a, s_a, f.mean(axis=0), s)
        floor = fid if floor is None else floor
        print(json.dumps({"set": name, "fid": round(fid, 1), "ratio": round(fid / floor, 2),
                          "spread": round(float(np.trace(s) / np.trace(s_a)), 3)}), flush=True)


if __name__ == "__main__":
    main()
