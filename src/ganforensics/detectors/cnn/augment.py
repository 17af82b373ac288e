"""The training and validation views of an image (DESIGN B5 augmentation).

Training: blur sigma ~ U(blur_sigma) and JPEG quality ~ U{jpeg_quality} (PIL), each with
prob `aug_prob`; random crop (or centre crop), horizontal flip with prob 0.5, and for
`color_robust` (Chandrasegaran 2022) RandomGrayscale(p = 0.5). Validation: the fixed sigma /
quality with prob `aug_prob`, drawn once per image from the seed, then a centre crop.
"""

from __future__ import annotations

import numpy as np

from ganforensics.data import perturb
from ganforensics.detectors.cnn.model import center_crop_box, resize_shorter
from ganforensics.detectors.cnn.recipes import Recipe
from ganforensics.seeding import rng_for


def crop(img: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """A `size` crop (each side at most the image's): random with `rng`, else centred."""
    h, w = img.shape[:2]
    if rng is None:
        t, left, ch, cw = center_crop_box(h, w, size)
    else:
        ch, cw = min(size, h), min(size, w)
        t = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
    return img[t : t + ch, left : left + cw]


def augment_train(
    img: np.ndarray, rng: np.random.Generator, recipe: Recipe, size: int, color_robust: bool
) -> np.ndarray:
    """One training view: [resize], blur / JPEG (prob p each), crop, flip, optional
    grayscale."""
    if recipe.resize:
        img = resize_shorter(img, recipe.resize)
    if recipe.aug_prob > 0:
        if rng.random() < recipe.aug_prob:
            img = perturb.blur(img, float(rng.uniform(*recipe.blur_sigma)))
        if rng.random() < recipe.aug_prob:
            lo, hi = recipe.jpeg_quality
            img = perturb.jpeg(img, int(rng.integers(lo, hi + 1)))
    img = crop(img, size, rng if recipe.random_crop else None)
    if recipe.flip and rng.random() < 0.5:
        img = img[:, ::-1]
    if color_robust and rng.random() < 0.5:
        img = perturb.grayscale(np.ascontiguousarray(img))
    return np.ascontiguousarray(img)


def augment_val(img: np.ndarray, index: int, recipe: Recipe, size: int, seed: int) -> np.ndarray:
    """The deterministic validation view of image `index` (same every epoch)."""
    if recipe.resize:
        img = resize_shorter(img, recipe.resize)
    if recipe.aug_prob > 0:
        rng = rng_for(seed, "val-augment", index)
        if rng.random() < recipe.aug_prob:
            img = perturb.blur(img, recipe.val_blur_sigma)
        if rng.random() < recipe.aug_prob:
            img = perturb.jpeg(img, recipe.val_jpeg_quality)
    return np.ascontiguousarray(crop(img, size, None))
