"""Backbone registry for CNN detectors: every entry has a one-logit head.

Each `ArchSpec` declares how inputs are prepared (input size, crop policy, normalisation), the
module whose output serves for features and Grad-CAM (`feature_layer`), and the name of the
final linear layer (`head`, used by the khan2019 per-layer learning rates and the wang2020 init).
Nothing is downloaded: models start from random weights or from a local file (`weights=`),
which is read with `torch.load(..., weights_only=True)` or safetensors (`weights.py`).
`IMAGENET_MEAN` / `IMAGENET_STD` and `normalised_tensor` are the one input normalisation.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganforensics.detectors.cnn.weights import read_state_dict
from ganforensics.errors import ConfigError, InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalised_tensor(
    stack: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    device: torch.device | None = None,
) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> float32 (N, 3, H, W) = (x / 255 - mean) / std, on `device`.

    The result is a channels-last view of the NHWC pixels (call `.contiguous()` for NCHW).
    The uint8 pixels travel to the device (4x fewer bytes than float) and are scaled there.
    """
    u8 = torch.from_numpy(stack)
    device = device or torch.device("cpu")
    if device.type == "cuda":
        u8 = u8.pin_memory().to(device, non_blocking=True)
    x = u8.permute(0, 3, 1, 2).float().div_(255.0)  # NHWC storage = channels-last
    mean_t = torch.tensor(tuple(mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(tuple(std), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return x.sub_(mean_t).div_(std_t)


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


# torchvision.models (~2.8 s) and timm (~4 s) are imported when a model is built, not with the
# package: measured with `python -X importtime`; most commands never build those backbones.
def _tv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, name)(weights=None, num_classes=1)

    return build


def _residual(name: str, small: bool) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from ganforensics.detectors.cnn import residual_nets

        return getattr(residual_nets, f"{name}_net")(small=small)

    return build


def _small_npr() -> nn.Module:
    from ganforensics.detectors.cnn.residual_nets import small_npr_net

    return small_npr_net()


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=1)

    return build


DEFAULT_ARCH = "resnet50"
"""The CNNDetection backbone (Wang et al. 2020): the default of `detector train --arch`."""

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
        ArchSpec("small_npr", _small_npr, 64, "features.relu4", "fc",
                 "ganforensics SmallCNN on the NPR residual",
                 "`small` behind NPR's residual x - up(down(x)): content suppressed, trains as "
                 "fast as `small`"),
        # up-sampling-aware residual nets on a truncated ResNet-50 (residual_nets.py)
        ArchSpec("npr", _residual("npr", False), 224, "layer2", "fc", "ganforensics NPR",
                 "NPR (Tan et al. 2024): nearest down-up residual x 2/3, ResNet-50 layer1-2"),
        ArchSpec("npr_small", _residual("npr", True), 64, "layer2", "fc",
                 "ganforensics NPR (small)", "NPR without the stem max-pool, for 32-64 px"),
        ArchSpec("ferretnet", _residual("ferretnet", False), 224, "layer2", "fc",
                 "ganforensics median residual", "FerretNet-style zero-masked 3x3 median "
                 "residual (Liang et al. 2025) on the NPR trunk"),
        ArchSpec("ferretnet_small", _residual("ferretnet", True), 64, "layer2", "fc",
                 "ganforensics median residual (small)",
                 "ferretnet without the stem max-pool, for 32-64 px"),
        ArchSpec("safe", _residual("safe", False), 224, "layer2", "fc",
                 "ganforensics Haar HH", "SAFE-style Haar-DWT HH band (Li et al. 2025) on the "
                 "NPR trunk"),
        ArchSpec("safe_small", _residual("safe", True), 64, "layer2", "fc",
                 "ganforensics Haar HH (small)", "safe without the stem max-pool, for 32-64 px"),
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
    """The final linear layer (one logit, or one per class)."""
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


def set_head_outputs(model: nn.Module, arch: str, n_outputs: int) -> None:
    """Replace the final linear layer by a fresh one with `n_outputs` outputs (same inputs)."""
    name = get_spec(arch).head
    mod = model.get_submodule(name)
    if isinstance(mod, nn.Sequential):  # e.g. Dropout + Linear
        parent, key = mod, str([i for i, m in enumerate(mod) if isinstance(m, nn.Linear)][-1])
    else:
        owner, _, key = name.rpartition(".")
        parent = model.get_submodule(owner) if owner else model
    old = head_module(model, arch)
    setattr(parent, key, nn.Linear(old.in_features, n_outputs, bias=old.bias is not None))


def build_model(
    arch: str, weights: str | os.PathLike[str] | None = None, n_outputs: int = 1
) -> nn.Module:
    """Build `arch` with a one-logit head (or `n_outputs` logits), random init (no download),
    optionally loading `weights` (a state dict whose names match the model; strict)."""
    spec = get_spec(arch)
    model = spec.build()
    if n_outputs != 1:
        set_head_outputs(model, arch, n_outputs)
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
