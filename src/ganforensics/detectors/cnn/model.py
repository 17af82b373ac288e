"""`CNNDetector`: a torch backbone with one logit plus its preprocessing and provenance."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.fx.experimental.optimization import fuse

from ganforensics.detectors.base import read_model_json, sigmoid
from ganforensics.detectors.cnn.archs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_model,
    get_spec,
    normalised_tensor,
)
from ganforensics.errors import InputError, UnsupportedModelError
from ganforensics.io.atomic import atomic_path, write_json_atomic
from ganforensics.io.images import shape_batches
from ganforensics.metrics.threshold import DEFAULT_THRESHOLD

FORMAT_VERSION = 1
CROP_POLICIES = ("center", "none")
CPU_CHUNK_PIXELS = 4 * 256 * 256  # images x pixels per forward pass on CPU


def center_crop_box(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a centre crop of side `size` (torchvision's rounding);
    an image smaller than `size` along a side keeps that side whole."""
    th, tw = min(size, h), min(size, w)
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return top, left, th, tw


def resized_shape(h: int, w: int, shorter: int) -> tuple[int, int]:
    """(height, width) with the shorter side `shorter` and the aspect kept (torchvision's
    `Resize(int)` rounding: the longer side is truncated)."""
    if h <= w:
        return shorter, int(shorter * w / h)
    return int(shorter * h / w), shorter


def resize_shorter(img: np.ndarray, shorter: int) -> np.ndarray:
    """An RGB uint8 image resized (PIL bilinear) so its shorter side is `shorter`."""
    from PIL import Image

    h, w = img.shape[:2]
    nh, nw = resized_shape(h, w, shorter)
    if (nh, nw) == (h, w):
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((nw, nh),
                                                                       Image.BILINEAR))


class CNNDetector:
    """A CNN detector (kind "cnn") implementing the `Detector` protocol.

    Attributes used by `explain`: `model` (returns (N, 1) logits for `preprocess` output),
    `arch`, `preprocess`, `norm_mean`, `norm_std`, `feature_layer`, `threshold`, `meta`.
    """

    kind = "cnn"

    def __init__(
        self,
        model: nn.Module,
        arch: str,
        *,
        input_size: int | None = None,
        crop: str = "center",
        norm_mean: Sequence[float] = IMAGENET_MEAN,
        norm_std: Sequence[float] = IMAGENET_STD,
        feature_layer: str | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        meta: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        resize: int | None = None,
    ) -> None:
        spec = get_spec(arch)
        if crop not in CROP_POLICIES:
            raise InputError(f"crop policy must be one of {CROP_POLICIES}, not {crop!r}")
        self.arch = arch
        self.input_size = int(input_size or spec.input_size)
        self.crop = crop
        self.resize = int(resize) if resize else None
        self.norm_mean = tuple(float(v) for v in norm_mean)
        self.norm_std = tuple(float(v) for v in norm_std)
        self.feature_layer = feature_layer or spec.feature_layer
        self.threshold = float(threshold)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.model = model.to(self.device).eval()
        self.meta: dict[str, Any] = {}
        self.meta.update(meta or {})
        self._refresh_meta()

    # ---- metadata -------------------------------------------------------------------------
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing as recorded in model.json."""
        return {
            "input_size": self.input_size,
            "resize": self.resize,
            "resize_note": None if self.resize is None else "shorter side to resize "
            "(PIL bilinear) before the crop",
            "crop": self.crop,
            "crop_note": "centre crop of input_size when the image is larger (torchvision "
            "rounding), else whole image" if self.crop == "center" else "whole image",
            "scale": "uint8 / 255",
            "norm_mean": list(self.norm_mean),
            "norm_std": list(self.norm_std),
        }

    def _refresh_meta(self) -> None:
        self.meta.update(
            kind=self.kind,
            format_version=FORMAT_VERSION,
            arch=self.arch,
            source=get_spec(self.arch).source,
            preprocessing=self.preprocessing(),
            feature_layer=self.feature_layer,
            threshold=self.threshold,
        )

    # ---- inference ------------------------------------------------------------------------
    def _crop(self, img: np.ndarray) -> np.ndarray:
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(
                f"expected an RGB uint8 image (H, W, 3), got {img.dtype} {tuple(img.shape)}"
            )
        if self.resize is not None:
            img = resize_shorter(img, self.resize)
        if self.crop == "center":
            t, left, h, w = center_crop_box(img.shape[0], img.shape[1], self.input_size)
            img = img[t : t + h, left : left + w]
        return img

    def preprocess(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """RGB uint8 images -> float tensor (N, 3, H, W), cropped per policy and normalised.

        All images must have the same size after cropping (`logits` groups by size for you).
        """
        crops = [self._crop(np.asarray(im)) for im in images]
        if not crops:
            return torch.empty((0, 3, self.input_size, self.input_size))
        shapes = {c.shape for c in crops}
        if len(shapes) > 1:
            raise InputError(
                f"images differ in size after cropping ({sorted(shapes)[:3]}...); "
                "preprocess same-size images together (CNNDetector.logits groups them)"
            )
        return self._normalise(np.stack(crops), torch.device("cpu")).contiguous()

    def _normalise(self, stack: np.ndarray, device: torch.device) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> normalised float (N, 3, H, W) on `device`, channels-last."""
        return normalised_tensor(stack, self.norm_mean, self.norm_std, device)

    def _size_after_crop(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.resize is not None:
            shape = resized_shape(shape[0], shape[1], self.resize)
        if self.crop == "center":
            return center_crop_box(shape[0], shape[1], self.input_size)[2:]
        return shape

    @torch.inference_mode()
    def forward_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,) for a preprocessed batch (channels-last on the model's device).

        On CPU the batch runs in chunks of at most `CPU_CHUNK_PIXELS` pixels, so activations
        stay in cache (ResNet-50 at 256 px: 4 images a chunk, about 1.4x the throughput of 32).
        """
        return self.network_outputs(x).reshape(-1)

    @torch.inference_mode()
    def network_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw outputs (N, n_outputs) for a preprocessed batch, in CPU chunks
        (see `forward_tensor`)."""
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        step = len(x)
        if self.device.type == "cpu" and len(x):
            step = max(1, CPU_CHUNK_PIXELS // (x.shape[2] * x.shape[3]))
        outs = [self.model(x[s : s + step]).reshape(len(x[s : s + step]), -1)
                for s in range(0, len(x), step)]
        return (torch.cat(outs) if outs else x.new_zeros((0, 1))).float()

    def fused(self) -> CNNDetector:
        """A copy for inference only, with each BatchNorm folded into the conv before it.

        Same logits up to float rounding, fewer passes over memory. Feature maps differ
        (conv outputs now include the BatchNorm), so `explain` keeps using the original.
        Models that torch.fx cannot trace are copied unfused.
        """
        model = self.model.eval()
        try:
            folded = fuse(model)
        except Exception:  # noqa: BLE001 - untraceable models (dynamic control flow) stay as is
            folded = copy.deepcopy(model)
        twin = copy.copy(self)
        twin.model = folded.to(self.device).eval()
        twin.meta = dict(self.meta)
        return twin

    def logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Logits (float64, (N,)) for RGB uint8 images; batches same-size images together."""
        return self.map_batches(images, self.forward_tensor, ())

    def map_batches(
        self, images: Sequence[np.ndarray], fn: Any, width: tuple[int, ...]
    ) -> np.ndarray:
        """`fn` (preprocessed batch -> tensor of shape (n, *width)) over same-size batches of
        RGB uint8 images; float64 (N, *width) in input order."""
        images = list(images)
        out = np.zeros((len(images), *width), dtype=np.float64)
        was_training = self.model.training
        self.model.eval()
        self.model.to(memory_format=torch.channels_last)
        try:
            for idx in shape_batches(images, self.batch_size, key=self._size_after_crop):
                crops = [self._crop(np.asarray(images[i])) for i in idx]
                x = self._normalise(np.stack(crops), self.device)
                out[idx] = fn(x).cpu().double().numpy()
        finally:
            self.model.train(was_training)
        return out

    def probs(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """P(fake) (float64, (N,)) for RGB uint8 images."""
        return sigmoid(self.logits(images))

    def to(self, device: str | torch.device) -> CNNDetector:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    # ---- persistence ----------------------------------------------------------------------
    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write `model.safetensors` and `model.json` into `out_dir` (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._refresh_meta()
        state = {
            k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()
        }
        with atomic_path(out / "model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"arch": self.arch, "format": "ganforensics"})
        write_json_atomic(out / "model.json", self.meta)
        return out

    def __repr__(self) -> str:
        return (
            f"CNNDetector(arch={self.arch!r}, input_size={self.input_size}, crop={self.crop!r}, "
            f"threshold={self.threshold:.4f})"
        )


def load_cnn_detector(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> CNNDetector:
    """Load a saved CNN detector folder (model.json + model.safetensors)."""
    p = Path(path)
    folder = p.parent if p.name == "model.json" else p
    meta_path = folder / "model.json"
    weights = folder / "model.safetensors"
    if not meta_path.is_file():
        raise InputError(f"{folder}: no model.json (not a saved detector)")
    meta = read_model_json(meta_path)
    if meta.get("kind") != "cnn":
        raise UnsupportedModelError(f"{meta_path}: kind is {meta.get('kind')!r}, not 'cnn'")
    if not weights.is_file():
        raise InputError(f"{folder}: model.safetensors missing")
    arch = meta.get("arch")
    classes = meta.get("classes")
    model = build_model(str(arch), weights, n_outputs=len(classes) if classes else 1)
    pre = meta.get("preprocessing", {})
    cls: type[CNNDetector] = CNNDetector
    if classes:  # an attribution head (real + generators)
        from ganforensics.detectors.cnn.attribution import AttributionDetector

        cls = AttributionDetector
    return cls(
        model,
        str(arch),
        input_size=pre.get("input_size"),
        crop=pre.get("crop", "center"),
        resize=pre.get("resize"),
        norm_mean=pre.get("norm_mean", IMAGENET_MEAN),
        norm_std=pre.get("norm_std", IMAGENET_STD),
        feature_layer=meta.get("feature_layer"),
        threshold=float(meta.get("threshold", 0.5)),
        meta=meta,
        device=device,
    )
