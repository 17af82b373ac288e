"""ONNX export of CNN detectors and `OnnxCNNDetector`, the same detector run by ONNX Runtime.

An exported folder holds `model.onnx` (input `x`: the normalised batch (N, 3, H, W), float32;
output `logit`: (N, 1); batch, height and width are dynamic) and the same `model.json` as the
torch folder (kind "cnn", threshold, preprocessing) plus an `onnx` entry. `load_detector` reads
such a folder directly; `load_detector(folder, backend="onnxruntime")` also runs a torch folder
or CNNDetection `.pth` through ONNX Runtime (exported in memory).

Spectral detectors are not exportable: their features are NumPy FFTs, azimuthal averages and,
for the decay kind, a Nelder-Mead fit per image, and their classifiers are scikit-learn objects
(kNN, SVM, MLP); none of that is one ONNX graph, and the torch backend is not involved anyway.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforensics.detectors.cnn.model import CNNDetector
from ganforensics.errors import InputError, RunExistsError, UnsupportedModelError
from ganforensics.io.atomic import write_bytes_atomic, write_json_atomic
from ganforensics.io.onnx_runtime import ONNX_OPSET, export_onnx_bytes, ort_session, runtime_threads

ONNX_FILE = "model.onnx"
INPUT_NAME = "x"
OUTPUT_NAME = "logit"
FORMATS = ("onnx",)


class OrtModule(nn.Module):
    """A stand-in for the torch network: (N, 3, H, W) float -> (N, 1) logits from an ONNX
    Runtime session, re-created when the toolkit's thread setting changes."""

    def __init__(self, model: bytes) -> None:
        super().__init__()
        self.onnx_bytes = model
        self._session: Any = None
        self._threads = 0

    def session(self) -> Any:
        threads = runtime_threads()
        if self._session is None or threads != self._threads:
            self._session = ort_session(self.onnx_bytes, threads)
            self._threads = threads
        return self._session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        out = self.session().run([OUTPUT_NAME], {INPUT_NAME: arr})[0]
        return torch.from_numpy(np.asarray(out))


class OnnxCNNDetector(CNNDetector):
    """A CNN detector (kind "cnn") whose network runs in ONNX Runtime on CPU.

    Preprocessing, batching by size and thresholds are `CNNDetector`'s; only the forward pass
    differs. No autograd: `explain` needs the torch folder.
    """

    backend = "onnxruntime"

    def __init__(self, model: bytes, arch: str, **kwargs: Any) -> None:
        super().__init__(OrtModule(model), arch, **kwargs)

    def fused(self) -> OnnxCNNDetector:
        """Itself: ONNX Runtime folds BatchNorm into the convs when it optimises the graph."""
        return self

    def to(self, device: str | torch.device) -> OnnxCNNDetector:
        if torch.device(device).type != "cpu":
            raise UnsupportedModelError(
                f"the onnxruntime backend runs on CPU here, not {device}; use --backend torch"
            )
        return self

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write `model.onnx` and `model.json` into `out_dir` (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._refresh_meta()
        self.meta["onnx"] = {"file": ONNX_FILE, "opset": ONNX_OPSET, "input": INPUT_NAME,
                             "output": OUTPUT_NAME, "dynamic_axes": ["batch", "height", "width"]}
        write_bytes_atomic(out / ONNX_FILE, self.model.onnx_bytes)
        write_json_atomic(out / "model.json", self.meta)
        return out

    def __repr__(self) -> str:
        return "Onnx" + super().__repr__()


def to_onnx(det: Any) -> OnnxCNNDetector:
    """The ONNX Runtime twin of a CNN detector (exported in memory); spectral kinds refused."""
    if isinstance(det, OnnxCNNDetector):
        return det
    if not isinstance(det, CNNDetector):
        raise UnsupportedModelError(
            f"{det.kind} detectors have no ONNX export (NumPy FFT features and a scikit-learn "
            "classifier, not a network); use --backend torch"
        )
    if getattr(det, "classes", None):
        raise UnsupportedModelError(
            "attribution models (several logits) have no ONNX export yet; use --backend torch")
    net = det.model.eval().to("cpu")
    size = det.input_size
    example = torch.zeros(1, 3, size, size)
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}}
    try:
        model = export_onnx_bytes(net, example, input_name=INPUT_NAME, output_name=OUTPUT_NAME,
                                  dynamic=axes)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise UnsupportedModelError(f"ONNX export of {det.arch} failed: {reason}") from None
    finally:
        det.model.to(det.device)
    meta = dict(det.meta)
    meta.pop("onnx", None)
    return OnnxCNNDetector(model, det.arch, input_size=det.input_size, crop=det.crop,
                           resize=det.resize,
                           norm_mean=det.norm_mean, norm_std=det.norm_std,
                           feature_layer=det.feature_layer, threshold=det.threshold, meta=meta,
                           batch_size=det.batch_size)


def export_detector(det: Any, out_dir: str | os.PathLike[str], *, fmt: str = "onnx",
                    force: bool = False) -> Path:
    """Write `det` as an ONNX model folder (`model.onnx` + `model.json`) into `out_dir`."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise RunExistsError(f"{out}: already exists and is not empty; pass --force")
        for name in (ONNX_FILE, "model.safetensors"):  # a stale torch file would win on load
            (out / name).unlink(missing_ok=True)
    return to_onnx(det).save(out)


def load_onnx_detector(path: str | os.PathLike[str], meta: dict[str, Any]) -> OnnxCNNDetector:
    """Load an exported folder (its `model.json` already parsed as `meta`)."""
    folder = Path(path)
    folder = folder.parent if folder.name == "model.json" else folder
    file = folder / ONNX_FILE
    if not file.is_file():
        raise InputError(f"{folder}: {ONNX_FILE} missing")
    pre = meta.get("preprocessing", {})
    kwargs: dict[str, Any] = {"input_size": pre.get("input_size"),
                              "crop": pre.get("crop", "center"),
                              "resize": pre.get("resize"),
                              "feature_layer": meta.get("feature_layer"),
                              "threshold": float(meta.get("threshold", 0.5)), "meta": meta}
    if "norm_mean" in pre:
        kwargs["norm_mean"] = pre["norm_mean"]
    if "norm_std" in pre:
        kwargs["norm_std"] = pre["norm_std"]
    return OnnxCNNDetector(file.read_bytes(), str(meta.get("arch")), **kwargs)

