"""Do a generator's samples come from the training photos in the photos' proportions?

The protocol of `bench/gan_quality.py` (the embedded photos' 32-px train patches; `a` = 453 of
them, random_state 0). A logistic regression on the standard Inception features of all train
patches learns which photo a patch was cut from (its 5-fold accuracy is printed); it then names
the photo of each of N samples of the generator. Prints the train patches' and the samples'
share per photo, and FID to `a` of 453 samples drawn (five times) at random against 453 drawn to
`a`'s share per photo (by predicted photo). Equal FIDs mean the distance to the photos is not
in which photos G draws from but in how its samples look.

    python bench/gan_coverage.py shipped:BASELINE --work W --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.gan.generate import load_generator, sample_images
from ganforensics.io.loading import load_images
from ganforensics.metrics.features import compute_features, get_extractor
from ganforensics.metrics.fid import frechet_distance
from ganforensics.threads import apply_threads

N_SAMPLE = 453
DRAWS = 5


def _fid(ref: tuple[np.ndarray, np.ndarray], feats: np.ndarray) -> float:
    return round(frechet_distance(*ref, feats.mean(0), np.cov(feats, rowvar=False)), 1)


def _draw_to_shares(pred: np.ndarray, want: dict[str, int], rng: np.random.Generator
                    ) -> np.ndarray:
    """Indices of samples with `want[photo]` of each predicted photo (with replacement only
    where a photo has too few samples)."""
    idx: list[int] = []
    for photo, k in want.items():
        pool = np.flatnonzero(pred == photo)
        if k and len(pool):
            idx.extend(rng.choice(pool, k, replace=len(pool) < k).tolist())
    return np.asarray(idx)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generator", help="a finished run folder or shipped:<BLOCK>")
    ap.add_argument("--n", type=int, default=4 * N_SAMPLE, help="samples of the generator")
    ap.add_argument("--seed", type=int, default=7, help="sampling seed")
    ap.add_argument("--work", type=Path, required=True, help="folder for the patches")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    apply_threads(args.threads)
    train = split_of(make_patches(args.work / "photos", force=True), "train").reset_index(drop=True)
    ext = get_extractor("inception")
    feats = compute_features(load_images(train).stack(), ext)
    photo = train["source"].astype(str).to_numpy()
    clf = LogisticRegression(max_iter=2000, C=0.1)
    accuracy = float(cross_val_score(clf, feats, photo, cv=5).mean())
    clf.fit(feats, photo)
    a = train.sample(N_SAMPLE, random_state=0).index.to_numpy()
    ref = (feats[a].mean(0), np.cov(feats[a], rowvar=False))
    gen, _ = load_generator(args.generator)
    fake = compute_features(sample_images(gen, args.n, seed=args.seed), ext)
    pred = clf.predict(fake)
    photos = sorted(set(photo))
    want = {p: int((photo[a] == p).sum()) for p in photos}
    rng = np.random.default_rng(0)
    at_random = [_fid(ref, fake[rng.choice(len(fake), N_SAMPLE, replace=False)])
                 for _ in range(DRAWS)]
    to_shares = [_fid(ref, fake[_draw_to_shares(pred, want, rng)]) for _ in range(DRAWS)]
    print(json.dumps({
        "generator": args.generator, "n": args.n, "photo_accuracy_5fold": round(accuracy, 3),
        "share_train_vs_samples": {p: [round(float((photo == p).mean()), 3),
                                       round(float((pred == p).mean()), 3)] for p in photos},
        "fid_at_random": at_random, "fid_to_a_shares": to_shares,
    }))


if __name__ == "__main__":
    main()
