"""The interface every detector implements, and the logistic helpers.

A detector maps RGB uint8 images to logits: P(fake) = sigmoid(logit) (real = 0, fake = 1).
A saved detector is a folder with `model.json` (its `kind`, preprocessing, provenance, the
calibrated `threshold`) plus arrays (`model.safetensors` or `.npz`); never a pickle.
`ganforensics.detectors.loading.load_detector` loads one by its kind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ganforensics.errors import InputError


def read_model_json(meta_path: Path) -> dict[str, Any]:
    """The parsed `model.json` of a saved detector, or an InputError naming the file."""
    try:
        return json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{meta_path}: unreadable model.json ({exc})") from None


@runtime_checkable
class Detector(Protocol):
    """What predict / evaluate / bypass / explain need from a detector."""

    kind: str
    """Registry key, e.g. "spectral-profile", "spectral-decay", "cnn"."""
    threshold: float
    """Decision threshold on P(fake), calibrated on validation data (0.5 if none)."""
    meta: dict[str, Any]
    """The content of model.json (architecture, preprocessing, provenance, metrics)."""

    def logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Logits (float64, shape (N,)) for RGB uint8 images (H, W, 3)."""
        ...

    def probs(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """P(fake) = sigmoid(logit) (float64, shape (N,)) for RGB uint8 images (H, W, 3)."""
        ...

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write model.json and arrays into `out_dir` (atomically per file)."""
        ...


def open_array_folder(path: str | os.PathLike[str], what: str) -> tuple[Path, dict[str, Any]]:
    """The folder and parsed model.json of a detector saved as model.json + model.npz (`path`:
    the folder or its model.json); InputError naming the missing file (`what`: its kind, for
    the message)."""
    p = Path(path)
    folder = p.parent if p.name == "model.json" else p
    meta_path, arr_path = folder / "model.json", folder / "model.npz"
    if not meta_path.is_file():
        raise InputError(f"{folder}: no model.json (not a saved {what})")
    if not arr_path.is_file():
        raise InputError(f"{folder}: model.json present but model.npz missing")
    return folder, read_model_json(meta_path)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(
        x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x)))
    )


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Inverse of `sigmoid`, with probabilities clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)
