"""Grad-CAM (Selvaraju et al. 2017) of the fake logit at the detector's feature layer.

Heatmap = ReLU(sum_c w_c A_c) with w_c the spatial mean of d logit / d A_c, A the output of
`feature_layer`; bilinearly resized to the network input and scaled to [0, 1] per image
(all zeros when nothing is positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image
from torch import nn

from ganforensics.errors import InputError, UnsupportedModelError
from ganforensics.explain.adapter import as_explainable, conv_layers, get_module, model_device

MIN_OVERLAY_SIDE = 256
"""Overlays of small images are enlarged (nearest neighbour) to at least this side."""


def resolve_layer(model: nn.Module, layer: str | None) -> str:
    """The Grad-CAM layer: `layer` if given, else the last conv layer."""
    if layer:
        get_module(model, layer)
        return layer
    convs = conv_layers(model)
    if not convs:
        raise UnsupportedModelError("no conv layer for Grad-CAM")
    return convs[-1]


def gradcam(
    detector: Any, images: Sequence[np.ndarray], layer: str | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Grad-CAM heatmaps ((h, w) float32 in [0, 1], network-input size) and logits (N,).

    `layer` defaults to the detector's `feature_layer` (else the last conv). Images are
    processed one at a time, so sizes may differ.
    """
    ex = as_explainable(detector)
    name = resolve_layer(ex.model, layer or ex.feature_layer)
    module = get_module(ex.model, name)
    model = ex.model.eval()
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    heatmaps: list[np.ndarray] = []
    logits = np.zeros(len(images), dtype=np.float64)
    handle = module.register_forward_hook(hook)
    try:
        for i, im in enumerate(images):
            x = ex.preprocess([im]).to(model_device(model)).requires_grad_(True)
            with torch.enable_grad():
                y = model(x).reshape(-1)
                if y.numel() != 1:
                    raise UnsupportedModelError(f"{ex.name}: one logit per image expected")
                model.zero_grad(set_to_none=True)
                y.sum().backward()
            act, grad = store["act"].detach(), store["grad"].detach()
            if act.ndim != 4:
                raise InputError(f"layer {name!r} output is not a (N, C, H, W) feature map")
            w = grad.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((w * act).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
            cam = cam[0, 0]
            top = cam.max()
            cam = cam / top if top > 0 else torch.zeros_like(cam)
            heatmaps.append(cam.float().cpu().numpy())
            logits[i] = float(y.item())
    finally:
        handle.remove()
    return heatmaps, logits


OVERLAY_ALPHA = 0.5
"""Heatmap opacity in a Grad-CAM overlay."""


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA
) -> np.ndarray:
    """The heatmap (jet colours) blended over the image; enlarged to >= 256 px per side."""
    img = np.asarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    hm = np.asarray(heatmap, dtype=np.float32)
    scale = max(1, int(np.ceil(MIN_OVERLAY_SIDE / max(1, min(h, w)))))
    size = (w * scale, h * scale)
    big = np.asarray(Image.fromarray(img).resize(size, Image.NEAREST), dtype=np.float32)
    hm_img = Image.fromarray(np.clip(hm * 255, 0, 255).astype(np.uint8)).resize(
        size, Image.BILINEAR
    )
    colour = colormaps["jet"](np.asarray(hm_img, dtype=np.float32) / 255.0)[..., :3] * 255.0
    return np.clip((1 - alpha) * big + alpha * colour, 0, 255).astype(np.uint8)
