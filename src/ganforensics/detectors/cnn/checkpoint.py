"""Published CNNDetection (Wang et al. 2020) checkpoints, loaded without executing code.

The released files are a dict whose `model` key holds torchvision ResNet-50 state-dict names
(`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`, ..., `fc.weight` [1, 2048], `fc.bias` [1]).
They are read with `torch.load(weights_only=True)`: a file whose unpickling would run code is
refused. Inputs: ImageNet normalisation, no resize, optional centre crop 224.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganforensics.detectors.cnn.archs import build_model
from ganforensics.detectors.cnn.model import CNNDetector
from ganforensics.detectors.cnn.weights import safe_torch_load
from ganforensics.errors import UnsupportedModelError
from ganforensics.io.images import file_sha256
from ganforensics.metrics.threshold import DEFAULT_THRESHOLD


def cnndetection_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ResNet-50 state dict inside a CNNDetection checkpoint (checked for the one-logit fc)."""
    p = Path(path)
    obj = safe_torch_load(p)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UnsupportedModelError(f"{p}: not a CNNDetection checkpoint (no state dict found)")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    fc = state.get("fc.weight")
    if fc is None or "conv1.weight" not in state:
        raise UnsupportedModelError(
            f"{p}: not a CNNDetection ResNet-50 checkpoint (missing conv1.weight / fc.weight)"
        )
    if tuple(fc.shape) != (1, 2048):
        raise UnsupportedModelError(
            f"{p}: fc.weight has shape {tuple(fc.shape)}, expected (1, 2048) (one-logit ResNet-50)"
        )
    return state


def load_cnndetection_checkpoint(
    path: str | os.PathLike[str], *, crop: bool = False, threshold: float = DEFAULT_THRESHOLD
) -> CNNDetector:
    """A `CNNDetector` (arch resnet50) from a CNNDetection `.pth` file.

    `crop=True` centre-crops 224 (when the image is larger), as CNNDetection's `--crop` option;
    the default uses the whole image, as their evaluation does.
    """
    p = Path(path)
    state = cnndetection_state_dict(p)
    model = build_model("resnet50")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UnsupportedModelError(
            f"{p}: state dict does not fit torchvision resnet50(num_classes=1): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    meta = {
        "recipe": "wang2020 (imported CNNDetection checkpoint)",
        "imported_from": str(p),
        "source_sha256": file_sha256(p),
    }
    return CNNDetector(
        model, "resnet50", input_size=224, crop="center" if crop else "none",
        threshold=threshold, meta=meta,
    )
