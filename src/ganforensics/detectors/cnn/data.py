"""Training/evaluation inputs for CNN detectors: manifests or in-memory images, decoded once."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import warn
from ganforensics.errors import InputError


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
    from ganforensics.data.manifest import usable
    from ganforensics.io.images import iter_images

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
    images: list[np.ndarray] = []
    keep: list[int] = []
    errors: list[tuple[str, str]] = []
    for i, arr, err in iter_images(paths, workers=workers):
        if arr is None:
            errors.append((paths[i], err or "unreadable"))
            continue
        images.append(arr)
        keep.append(i)
    if errors:
        warn(f"{what}: {len(errors)} unreadable image(s) skipped, e.g. {errors[0][0]}: "
             f"{errors[0][1]}")
    src_l = srcs.tolist()
    return ImageSet(
        images,
        labels.to_numpy().astype(int)[keep],
        [gens_l[i] for i in keep],
        [str(src_l[i]) if isinstance(src_l[i], str) else paths[i] for i in keep],
        manifest_rows_sha256(df),
        errors,
    )


def as_image_set(obj: Any, what: str = "data", *, workers: int = 2) -> ImageSet:
    """An `ImageSet` from a manifest path, a manifest DataFrame, an `ImageSet`, or an
    `(images, labels)` / `(images, labels, generators)` tuple of in-memory RGB uint8 arrays."""
    if isinstance(obj, ImageSet):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from ganforensics.data.manifest import read_manifest
        from ganforensics.io.images import file_sha256

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
