"""Real training images for a GAN: a manifest, a folder, image files or an in-memory stack.

Only real rows are used (label 0; with splits present, split `train` only). Images whose size
differs from the training size are centre-cropped to a square and resized (antialiased); a
warning says how many.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ganforensics import console
from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import usable
from ganforensics.errors import InputError
from ganforensics.io.loading import load_images

DataLike = (
    np.ndarray | str | os.PathLike[str] | pd.DataFrame | Sequence[str | os.PathLike[str]]
)


def real_train_rows(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Label-0 rows (unlabelled rows count as real), split `train` when splits exist."""
    df = usable(df)
    labels = pd.to_numeric(df["label"], errors="coerce") if "label" in df.columns else None
    if labels is not None and labels.notna().any():
        df = df[labels == 0]
    if "split" in df.columns and df["split"].notna().any():
        df = df[df["split"].astype(str) == "train"]
    if df.empty:
        raise InputError(
            f"{source}: no usable real training images (need label 0 rows, split 'train' "
            "when the manifest has splits)"
        )
    return df


def fit_size(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to size x size (Lanczos, antialiased)."""
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = img[top:top + s, left:left + s]
    return np.asarray(Image.fromarray(sq).resize((size, size), Image.Resampling.LANCZOS))


def load_training_images(data: Any, size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """(N, size, size, 3) uint8 stack and a description (`source`, `count`, `sha256`, ...)."""
    info: dict[str, Any] = {}
    if isinstance(data, np.ndarray):
        if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
            raise InputError(
                f"data: in-memory images must be a uint8 array (N, H, W, 3), got "
                f"{data.dtype} {data.shape}"
            )
        imgs = list(data)
        info["source"] = "array"
        n_bad = 0
    else:
        if isinstance(data, pd.DataFrame):
            df, name = data, "data"
        else:
            items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
            df, name = collect_inputs(items), ", ".join(str(i) for i in items)
        rows = real_train_rows(df, name)
        info["source"] = name
        loaded = load_images(rows, what="real training images")
        imgs, n_bad = loaded.images, loaded.n_bad
        if not imgs:
            raise InputError(f"{name}: none of the {len(rows)} real training images decoded")
    if not imgs:
        raise InputError("data: no training images")
    resized = sum(1 for im in imgs if im.shape[:2] != (size, size))
    if resized:
        console.warn(
            f"{resized} of {len(imgs)} training images are not {size}x{size}: centre-cropped "
            "to square and resized"
        )
    stack = np.stack([fit_size(im, size) for im in imgs]).astype(np.uint8)
    info.update(
        count=int(len(stack)), skipped=n_bad, resized=int(resized),
        sha256=hashlib.sha256(np.ascontiguousarray(stack).tobytes()).hexdigest(),
    )
    return stack, info
