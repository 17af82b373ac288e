"""Backbone registry for CNN detectors: every entry has a one-logit head.

Each `ArchSpec` declares how inputs are prepared (input size, crop policy, normalisation), the
module whose output serves for features and Grad-CAM (`feature_layer`), and the name of the
final linear layer (`head`, used by the khan2019 per-layer learning rates and the wang2020 init).
Nothing is downloaded: models start from random weights or from a local file (`weights=`),
which is read with `torch.load(..., weights_only=True)` or safetensors.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganforensics.errors import ConfigError, InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallCNN(nn.Module):
    """A small CNN for 32-64 px inputs: four Conv-BN-ReLU blocks, global average pool, one logit.

    Only plain modules (Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear) so that
    LRP rules and BatchNorm folding apply as they do to a ResNet; `forward` only adds a flatten.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (32, 64, 128, 128)) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 3
        for i, c_out in enumerate(widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{i}"] = nn.ReLU(inplace=False)
            if i < len(widths):
                layers[f"pool{i}"] = nn.MaxPool2d(2)
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))


@dataclass(frozen=True)
class ArchSpec:
    """What a backbone needs besides its weights."""

    name: str
    build: Callable[[], nn.Module]
    input_size: int
    """Crop side: training crops at random, evaluation in the centre (only when the image is
    larger; smaller images are used whole)."""
    feature_layer: str
    head: str
    source: str
    description: str


def _tv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, name)(weights=None, num_classes=1)

    return build


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=1)

    return build


ARCHS: dict[str, ArchSpec] = {
    s.name: s
    for s in (
        ArchSpec("resnet18", _tv("resnet18"), 224, "layer4", "fc", "torchvision resnet18",
                 "ResNet-18"),
        ArchSpec("resnet50", _tv("resnet50"), 224, "layer4", "fc", "torchvision resnet50",
                 "ResNet-50 (Wang et al. 2020; CNNDetection checkpoints load into it)"),
        ArchSpec("densenet121", _tv("densenet121"), 224, "features", "classifier",
                 "torchvision densenet121", "DenseNet-121 (Khan 2019)"),
        ArchSpec("xception", _timm("legacy_xception"), 299, "act4", "fc",
                 "timm legacy_xception", "Xception, original Chollet layout (Khan 2019)"),
        ArchSpec("inception_resnet_v2", _timm("inception_resnet_v2"), 299, "conv2d_7b",
                 "classif", "timm inception_resnet_v2", "Inception-ResNet-v2 (Khan 2019)"),
        ArchSpec("nasnet", _timm("nasnetalarge"), 331, "act", "last_linear",
                 "timm nasnetalarge", "NASNet-A Large (Khan 2019)"),
        ArchSpec("efficientnet_b0", _timm("efficientnet_b0"), 224, "bn2", "classifier",
                 "timm efficientnet_b0", "EfficientNet-B0"),
        ArchSpec("small", SmallCNN, 64, "features.relu4", "fc", "ganforensics SmallCNN",
                 "4 Conv-BN-ReLU blocks + global pool, for 32-64 px; trains in minutes on CPU"),
    )
}


def get_spec(arch: str) -> ArchSpec:
    """The registry entry of `arch` or a ConfigError listing the known names."""
    try:
        return ARCHS[arch]
    except KeyError:
        raise ConfigError(
            f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})"
        ) from None


def head_module(model: nn.Module, arch: str) -> nn.Linear:
    """The final one-logit linear layer."""
    mod = model.get_submodule(get_spec(arch).head)
    if isinstance(mod, nn.Sequential):  # e.g. Dropout + Linear
        mod = [m for m in mod if isinstance(m, nn.Linear)][-1]
    assert isinstance(mod, nn.Linear)
    return mod


def init_head_wang2020(model: nn.Module, arch: str, std: float = 0.02) -> None:
    """Wang et al. 2020 head init: weights N(0, std), bias 0."""
    fc = head_module(model, arch)
    nn.init.normal_(fc.weight, 0.0, std)
    if fc.bias is not None:
        nn.init.zeros_(fc.bias)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a `.pth` (weights_only) file; unwraps `model` /
    `state_dict` keys and a `module.` prefix."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: weights file not found")
    if p.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except SafetensorError as exc:
            raise InputError(f"{p}: not a readable safetensors file ({exc})") from None
    from ganforensics.detectors.cnn.checkpoint import safe_torch_load

    obj = safe_torch_load(p)
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{p}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def build_model(
    arch: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    pretrained_path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """Build `arch` with a one-logit head, random init (no download), optionally loading
    `weights` (alias `pretrained_path`: a state dict whose names match the model; strict)."""
    spec = get_spec(arch)
    weights = weights if weights is not None else pretrained_path
    model = spec.build()
    if weights is not None:
        state = read_state_dict(weights)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0:3]
            raise InputError(
                f"{weights}: weights do not fit architecture {arch!r}: {' '.join(first)}"
            ) from None
    return model
