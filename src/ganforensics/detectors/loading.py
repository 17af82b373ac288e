"""Loading a saved detector by its kind (`model.json["kind"]`), or a CNNDetection `.pth` file.

This module sits above both detector families, so it imports their loaders directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ganforensics.detectors.base import Detector, read_model_json
from ganforensics.detectors.cnn.checkpoint import load_cnndetection_checkpoint
from ganforensics.detectors.cnn.model import load_cnn_detector
from ganforensics.detectors.spectral import load_spectral_detector
from ganforensics.errors import InputError, UnsupportedModelError

LOADERS: dict[str, Callable[[Path], Detector]] = {
    "spectral-profile": load_spectral_detector,
    "spectral-decay": load_spectral_detector,
    "cnn": load_cnn_detector,
}
"""kind -> loader of a saved detector folder."""


def load_detector(path: str | os.PathLike[str]) -> Detector:
    """Load a saved detector folder (or its model.json), or a CNNDetection `.pth` checkpoint."""
    p = Path(path)
    if p.suffix.lower() in (".pth", ".pt") and p.is_file():
        return load_cnndetection_checkpoint(p)
    meta_path = p / "model.json" if p.is_dir() else p
    if not meta_path.is_file() or meta_path.name != "model.json":
        raise InputError(f"{p}: not a detector (expected a folder with model.json, or a .pth file)")
    meta = read_model_json(meta_path)
    kind = meta.get("kind")
    if kind not in LOADERS:
        raise UnsupportedModelError(
            f"{meta_path}: unknown detector kind {kind!r} (known: {', '.join(sorted(LOADERS))})"
        )
    return LOADERS[kind](meta_path.parent)
