"""Loading a saved detector by its kind (`model.json["kind"]`), or a CNNDetection `.pth` file,
with the torch backend or ONNX Runtime (`BACKENDS`).

This module sits above both detector families, so it imports their loaders directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ganforensics.detectors.base import Detector, read_model_json
from ganforensics.detectors.cnn.checkpoint import load_cnndetection_checkpoint
from ganforensics.detectors.cnn.model import load_cnn_detector
from ganforensics.detectors.one_class import KIND as ONE_CLASS
from ganforensics.detectors.one_class import load_one_class_detector
from ganforensics.detectors.onnx import ONNX_FILE, load_onnx_detector, to_onnx
from ganforensics.detectors.spectral import load_spectral_detector
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError

LOADERS: dict[str, Callable[[Path], Detector]] = {
    "spectral-profile": load_spectral_detector,
    "spectral-decay": load_spectral_detector,
    "cnn": load_cnn_detector,
    ONE_CLASS: load_one_class_detector,
}
"""kind -> loader of a saved detector folder."""
BACKENDS = ("torch", "onnxruntime")
"""How a CNN detector's network runs. Default (None): what the folder holds (torch weights,
else an exported model.onnx)."""


def load_detector(path: str | os.PathLike[str], backend: str | None = None) -> Detector:
    """Load a saved detector folder (or its model.json), an exported ONNX folder, or a
    CNNDetection `.pth` checkpoint; `backend="onnxruntime"` runs a torch CNN in ONNX Runtime
    (exported in memory), `"torch"` refuses an ONNX-only folder."""
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    p = Path(path)
    if p.suffix.lower() in (".pth", ".pt") and p.is_file():
        det: Detector = load_cnndetection_checkpoint(p)
        return to_onnx(det) if backend == "onnxruntime" else det
    meta_path = p / "model.json" if p.is_dir() else p
    if not meta_path.is_file() or meta_path.name != "model.json":
        raise InputError(f"{p}: not a detector (expected a folder with model.json, or a .pth file)")
    meta = read_model_json(meta_path)
    kind = meta.get("kind")
    if kind not in LOADERS:
        raise UnsupportedModelError(
            f"{meta_path}: unknown detector kind {kind!r} (known: {', '.join(sorted(LOADERS))})"
        )
    folder = meta_path.parent
    exported = kind == "cnn" and not (folder / "model.safetensors").is_file() \
        and (folder / ONNX_FILE).is_file()
    if exported:
        if backend == "torch":
            raise UnsupportedModelError(
                f"{folder}: an exported ONNX model (no torch weights); use --backend onnxruntime"
            )
        return load_onnx_detector(folder, meta)
    det = LOADERS[kind](folder)
    return to_onnx(det) if backend == "onnxruntime" else det
