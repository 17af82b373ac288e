"""Training/evaluation inputs for CNN detectors: manifests or in-memory images, decoded once,
and the train / validation hold-out."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import warn
from ganforensics.data.manifest import read_manifest, usable
from ganforensics.errors import InputError
from ganforensics.io.images import file_sha256
from ganforensics.io.loading import load_images
from ganforensics.seeding import rng_for


@dataclass
class ImageSet:
    """Decoded RGB uint8 images with labels (0 real, 1 fake), generators and provenance."""

    images: list[np.ndarray]
    labels: np.ndarray
    generators: list[str]
    sources: list[str]
    manifest_sha256: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray | list[int]) -> ImageSet:
        idx = list(map(int, idx))
        return ImageSet(
            [self.images[i] for i in idx], self.labels[idx], [self.generators[i] for i in idx],
            [self.sources[i] for i in idx], self.manifest_sha256,
        )

    def data_sha256(self) -> str:
        """Hash of the pixels, shapes and labels in order (identifies in-memory data)."""
        h = hashlib.sha256()
        for img, lab in zip(self.images, self.labels, strict=True):
            h.update(f"{int(lab)}:{img.shape}".encode())
            h.update(np.ascontiguousarray(img).tobytes())
        return h.hexdigest()


def manifest_rows_sha256(df: pd.DataFrame) -> str:
    """Hash of a manifest's identifying columns (path, label, generator, sha256)."""
    cols = [c for c in ("path", "label", "generator", "sha256") if c in df.columns]
    text = df[cols].astype(str).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _decode_frame(df: pd.DataFrame, what: str, *, workers: int = 2) -> ImageSet:
    if "label" not in df.columns:
        raise InputError(f"{what}: manifest has no 'label' column")
    df = usable(df)
    labels = pd.to_numeric(df["label"], errors="coerce")
    if labels.isna().any():
        n = int(labels.isna().sum())
        warn(f"{what}: {n} row(s) without a label skipped")
        df = df[labels.notna()]
        labels = labels[labels.notna()]
    col = "abspath" if "abspath" in df.columns else "path"
    paths = df[col].astype(str).tolist()
    gens = (df["generator"] if "generator" in df.columns else pd.Series([None] * len(df)))
    srcs = df["source"] if "source" in df.columns else pd.Series([None] * len(df))
    gens_l = [
        str(g) if isinstance(g, str) and g else ("real" if int(lab) == 0 else "fake")
        for g, lab in zip(gens.tolist(), labels.tolist(), strict=True)
    ]
    loaded = load_images(paths, what=what, workers=workers)
    keep = loaded.keep
    src_l = srcs.tolist()
    return ImageSet(
        loaded.images,
        labels.to_numpy().astype(int)[keep],
        [gens_l[i] for i in keep],
        [str(src_l[i]) if isinstance(src_l[i], str) else paths[i] for i in keep],
        manifest_rows_sha256(df),
        loaded.errors,
    )


def as_image_set(obj: Any, what: str = "data", *, workers: int = 2) -> ImageSet:
    """An `ImageSet` from a manifest path, a manifest DataFrame, an `ImageSet`, or an
    `(images, labels)` / `(images, labels, generators)` tuple of in-memory RGB uint8 arrays."""
    if isinstance(obj, ImageSet):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        df = read_manifest(obj)
        s = _decode_frame(df, str(obj), workers=workers)
        s.manifest_sha256 = file_sha256(Path(obj))
        return s
    if isinstance(obj, pd.DataFrame):
        return _decode_frame(obj, what, workers=workers)
    if isinstance(obj, tuple) and len(obj) in (2, 3):
        images = [np.asarray(im) for im in obj[0]]
        labels = np.asarray(obj[1]).astype(int)
        if len(images) != len(labels):
            raise InputError(f"{what}: {len(images)} images but {len(labels)} labels")
        for im in images:
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise InputError(f"{what}: images must be RGB uint8 (H, W, 3), got "
                                 f"{im.dtype} {im.shape}")
        if not set(np.unique(labels)) <= {0, 1}:
            raise InputError(f"{what}: labels must be 0 (real) or 1 (fake)")
        gens = (
            [str(g) for g in obj[2]] if len(obj) == 3
            else ["real" if lab == 0 else "fake" for lab in labels]
        )
        return ImageSet(images, labels, gens, [str(i) for i in range(len(images))])
    raise InputError(
        f"{what}: expected a manifest path, a DataFrame or (images, labels), got "
        f"{type(obj).__name__}"
    )


def split_train_val(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Hold out `fraction` of the sources (so one photo's patches stay on one side).

    When that leaves a class on one side only (e.g. every fake comes from one GAN run, which
    is one source), the hold-out is drawn per class instead: `fraction` of each class's sources,
    or of its images when the class has a single source (GAN samples are independent draws).
    """
    sources = np.array(data.sources, dtype=object)
    labels = np.asarray(data.labels)
    rng = rng_for(seed, "train-val-split")
    is_val = _held_out(sources, fraction, rng)
    classes = set(labels.tolist())
    if set(labels[is_val].tolist()) != classes or set(labels[~is_val].tolist()) != classes:
        is_val = np.zeros(len(labels), bool)
        for lab in sorted(classes):
            idx = np.flatnonzero(labels == lab)
            if len(set(sources[idx].tolist())) > 1:
                is_val[idx] = _held_out(sources[idx], fraction, rng)
            elif len(idx) > 1:
                n_val = max(1, int(round(fraction * len(idx))))
                is_val[rng.permutation(idx)[:n_val]] = True
    if is_val.all() or (~is_val).all():
        raise InputError("cannot split the training data into train/val; pass a validation set "
                         "with --val")
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))


def _held_out(sources: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A mask holding out `fraction` (at least one) of the distinct sources."""
    uniq = sorted(set(sources.tolist()))
    order = rng.permutation(len(uniq))
    val_src = {uniq[i] for i in order[: max(1, int(round(fraction * len(uniq))))]}
    return np.array([s in val_src for s in sources.tolist()], dtype=bool)
