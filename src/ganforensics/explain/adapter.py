"""What the explain methods need from a detector, and batched forward passes.

Every explain function takes either a `CNNDetector` (anything with a `model: nn.Module` and a
`preprocess(images) -> tensor` method) or an `Explainable` built directly from a network, so the
methods work and are tested on tiny networks without a saved detector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforensics.detectors.base import sigmoid  # noqa: F401  (re-exported)
from ganforensics.detectors.cnn.archs import IMAGENET_MEAN, IMAGENET_STD, normalised_tensor
from ganforensics.errors import InputError, UnsupportedModelError
from ganforensics.io.images import shape_batches
from ganforensics.metrics.threshold import DEFAULT_THRESHOLD

DEFAULT_BATCH_SIZE = 32

Preprocess = Callable[[Sequence[np.ndarray]], torch.Tensor]


def imagenet_preprocess(
    images: Sequence[np.ndarray],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """RGB uint8 (H, W, 3) images -> contiguous (N, 3, H, W) float32 tensor,
    (x / 255 - mean) / std (`normalised_tensor`)."""
    return normalised_tensor(np.stack([np.asarray(im) for im in images]), mean, std).contiguous()


@dataclass
class Explainable:
    """A one-logit CNN with its preprocessing: what FF-RS, masking, colour and Grad-CAM use."""

    model: nn.Module
    preprocess: Preprocess = imagenet_preprocess
    norm_mean: tuple[float, float, float] = IMAGENET_MEAN
    norm_std: tuple[float, float, float] = IMAGENET_STD
    threshold: float = DEFAULT_THRESHOLD
    feature_layer: str | None = None
    name: str = "model"
    meta: dict[str, Any] = field(default_factory=dict)


def as_explainable(obj: Any) -> Explainable:
    """An `Explainable` from a CNN detector (or the object itself when it already is one).

    Raises `UnsupportedModelError` for detectors without a torch network (e.g. spectral ones)
    or networks without convolutions.
    """
    if isinstance(obj, Explainable):
        ex = obj
    else:
        model = getattr(obj, "model", None)
        preprocess = getattr(obj, "preprocess", None)
        if not isinstance(model, nn.Module) or not callable(preprocess):
            kind = getattr(obj, "kind", type(obj).__name__)
            raise UnsupportedModelError(
                f"detector kind {kind!r} cannot be explained: the explain methods need a CNN "
                "detector (a torch network with convolution layers), e.g. kind 'cnn'"
            )
        ex = Explainable(
            model=model,
            preprocess=preprocess,
            norm_mean=tuple(getattr(obj, "norm_mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
            norm_std=tuple(getattr(obj, "norm_std", IMAGENET_STD)),  # type: ignore[arg-type]
            threshold=float(getattr(obj, "threshold", 0.5)),
            feature_layer=getattr(obj, "feature_layer", None),
            name=str(getattr(obj, "arch", getattr(obj, "kind", "model"))),
            meta=dict(getattr(obj, "meta", {}) or {}),
        )
    if not conv_layers(ex.model):
        raise UnsupportedModelError(
            f"model {ex.name!r} has no Conv2d layers: feature-map explanations do not apply"
        )
    return ex


def conv_layers(model: nn.Module) -> list[str]:
    """Names of all Conv2d modules in forward-registration order (shortcut convs included)."""
    return [name for name, mod in model.named_modules() if isinstance(mod, nn.Conv2d)]


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name`, or a ConfigError-like InputError naming the layer."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise InputError(f"layer {name!r} not found in the model") from None


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for parameter-free models)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def batched_logits(
    ex: Explainable, images: Sequence[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Logits (float64, shape (N,)) of the explained network; images of mixed sizes allowed."""
    ex.model.eval()
    out = np.zeros(len(images), dtype=np.float64)
    for idx in shape_batches(images, batch_size):
        x = ex.preprocess([images[i] for i in idx]).to(model_device(ex.model))
        y = ex.model(x).reshape(len(idx), -1)
        if y.shape[1] != 1:
            raise UnsupportedModelError(
                f"model {ex.name!r} gives {y.shape[1]} outputs per image; one logit is expected"
            )
        out[idx] = y[:, 0].double().cpu().numpy()
    return out
