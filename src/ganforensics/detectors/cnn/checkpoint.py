"""Published CNNDetection (Wang et al. 2020) checkpoints, loaded without executing code.

The released files are a dict whose `model` key holds torchvision ResNet-50 state-dict names
(`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`, ..., `fc.weight` [1, 2048], `fc.bias` [1]).
They are read with `torch.load(weights_only=True)`: a file whose unpickling would run code is
refused. Inputs: ImageNet normalisation, no resize, optional centre crop 224.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ganforensics.errors import InputError, UnsupportedModelError


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """`torch.load(path, weights_only=True)` with one-line errors; never runs pickled code."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).splitlines()
        hint = next((ln.strip() for ln in detail if "GLOBAL" in ln or "global" in ln), "")
        raise UnsupportedModelError(
            f"{p}: refused to load: unpickling this file would execute code or build objects "
            f"that are not plain tensors (loaded with weights_only=True for safety)"
            + (f"; {hint}" if hint else "")
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{p}: not a readable PyTorch checkpoint ({msg})") from None


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
    path: str | os.PathLike[str], *, crop: bool = False, threshold: float = 0.5
):  # -> CNNDetector (import kept lazy to avoid a cycle)
    """A `CNNDetector` (arch resnet50) from a CNNDetection `.pth` file.

    `crop=True` centre-crops 224 (when the image is larger), as CNNDetection's `--crop` option;
    the default uses the whole image, as their evaluation does.
    """
    from ganforensics.detectors.cnn.archs import build_model
    from ganforensics.detectors.cnn.model import CNNDetector
    from ganforensics.io.images import file_sha256

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
