"""Up-sampling-aware detectors trained from scratch: NPR and two kin on one truncated trunk.

All three feed a fixed, parameter-free residual of the *normalised* input to the same
truncated ResNet-50: a 3x3 stride-2 stem (Conv-BN-ReLU), a 3x3 stride-2 max-pool, the Bottleneck
stages `layer1` (3 blocks, 64 -> 256 channels) and `layer2` (4 blocks, 128 -> 512, stride 2),
global average pooling and `Linear(512, 1)`: 1,437,761 parameters (the published NPR count,
1.44 M).

- `npr` (Tan et al., CVPR 2024, "Rethinking the up-sampling operations in CNN-based generative
  network for generalizable deepfake detection"): `x - up(down(x))`, nearest-neighbour, factor
  0.5 down and 2 up, times 2/3 before the stem. Nearest down-sampling by 0.5 keeps the top-left
  pixel of every 2x2 block, so the residual is 0 there for any image and 0 everywhere for an
  image nearest-up-sampled on the same 2x2 grid. Odd heights / widths lose their last row /
  column first, so the residual has the input's size rounded down to even.
- `ferretnet` (Liang et al., NeurIPS 2025, "FerretNet: efficient synthetic image detection via
  local pixel dependencies"): `x - median3x3(x)` with the centre of each 3x3 window set to 0
  before the median (the paper's zero-masked local-pixel-dependency reconstruction); borders
  reflect-padded. The published FerretNet trunk (depthwise-separable, dilated, 1.1 M
  parameters) is *not* reproduced: the residual feeds the NPR trunk here.
- `safe` (Li et al., KDD 2025, "Improving synthetic image detection towards generalization: an
  image transformation perspective"): the HH (diagonal) band of a one-level orthonormal Haar
  DWT, `(a - b - c + d) / 2` over each 2x2 block [[a, b], [c, d]] (half resolution), computed
  in torch (no wavelet package). SAFE's crop / colour-jitter / rotation / masking training
  augmentations are not part of the arch.

Small-image variants (`*_small`, for the toolkit's 32 / 64 px patches): the same layers and
parameter count without the stem's max-pool, so a 32 px input keeps an 8x8 map after `layer2`
(4x4 with the max-pool; 28x28 for the published 224 px input).

The residuals use only slicing, padding, nearest `interpolate`, `sort` and arithmetic, all of
which the TorchScript ONNX exporter maps (Slice, Pad, Resize, TopK).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn

NPR_SCALE = 2.0 / 3.0
"""NPR's factor on the residual before the first conv."""
TRUNK_BLOCKS = (3, 4)
"""Bottleneck blocks of layer1 and layer2 (ResNet-50's first two stages)."""
TRUNK_PARAMETERS = 1_437_761
"""Parameters of the trunk with its one-logit head (the tests check this count)."""


def even_crop(x: torch.Tensor) -> torch.Tensor:
    """Drop the last row / column of odd-sized (N, C, H, W) tensors."""
    h, w = x.shape[-2], x.shape[-1]
    return x[..., : h - h % 2, : w - w % 2]


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """`x - up(down(x))` with nearest-neighbour factor 0.5 / 2 (unscaled), on even sizes."""
    x = even_crop(x)
    down = F.interpolate(x, scale_factor=0.5, mode="nearest")
    return x - F.interpolate(down, scale_factor=2.0, mode="nearest")


def median_residual(x: torch.Tensor) -> torch.Tensor:
    """`x - median` of each pixel's 3x3 neighbourhood with the centre set to 0 (reflect
    padding); the median of the 9 values is the 5th smallest."""
    h, w = x.shape[-2], x.shape[-1]
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    taps = [p[..., i : i + h, j : j + w] if (i, j) != (1, 1) else torch.zeros_like(x)
            for i in range(3) for j in range(3)]
    med = torch.sort(torch.stack(taps, dim=-1), dim=-1).values[..., 4]
    return x - med


def haar_hh(x: torch.Tensor) -> torch.Tensor:
    """The HH band of a one-level orthonormal Haar DWT: (a - b - c + d) / 2 per 2x2 block."""
    x = even_crop(x)
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a - b - c + d) * 0.5


class Residual(nn.Module):
    """A fixed input transform (no parameters): `scale * fn(x)`."""

    FUNCTIONS = {"npr": npr_residual, "median": median_residual, "haar_hh": haar_hh}

    def __init__(self, kind: str, scale: float = 1.0) -> None:
        super().__init__()
        if kind not in self.FUNCTIONS:
            raise ValueError(f"unknown residual {kind!r} (known: {', '.join(self.FUNCTIONS)})")
        self.kind = kind
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.FUNCTIONS[self.kind](x)
        return r * self.scale if self.scale != 1.0 else r

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, scale={self.scale:.6g}"


class ResidualTrunk(nn.Module):
    """Residual -> 3x3 stride-2 stem -> [max-pool] -> layer1 -> layer2 -> pool -> one logit."""

    def __init__(self, residual: Residual, *, maxpool: bool = True) -> None:
        super().__init__()
        from torchvision.models.resnet import Bottleneck  # torchvision is imported on build

        self.residual = residual
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if maxpool
                                   else nn.Identity())
        self._in = 64
        self.layer1 = self._stage(Bottleneck, 64, TRUNK_BLOCKS[0], stride=1)
        self.layer2 = self._stage(Bottleneck, 128, TRUNK_BLOCKS[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128 * Bottleneck.expansion, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block: type[nn.Module], planes: int, blocks: int, stride: int
               ) -> nn.Sequential:
        expansion = int(getattr(block, "expansion", 4))
        down = None
        if stride != 1 or self._in != planes * expansion:
            down = nn.Sequential(
                nn.Conv2d(self._in, planes * expansion, kernel_size=1, stride=stride,
                          bias=False),
                nn.BatchNorm2d(planes * expansion),
            )
        layers = [block(self._in, planes, stride, down)]
        self._in = planes * expansion
        layers += [block(self._in, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.residual(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def npr_net(small: bool = False) -> ResidualTrunk:
    """NPR (residual x 2/3); `small`: without the max-pool."""
    return ResidualTrunk(Residual("npr", NPR_SCALE), maxpool=not small)


def ferretnet_net(small: bool = False) -> ResidualTrunk:
    """Zero-masked 3x3 median residual on the NPR trunk; `small`: without the max-pool."""
    return ResidualTrunk(Residual("median"), maxpool=not small)


def safe_net(small: bool = False) -> ResidualTrunk:
    """Haar-DWT HH band on the NPR trunk; `small`: without the max-pool."""
    return ResidualTrunk(Residual("haar_hh"), maxpool=not small)


class ResidualSmallCNN(nn.Module):
    """`SmallCNN` behind a fixed residual: the same layer names (`features.*`, `fc`) with
    `residual` in front, so Grad-CAM and the wang2020 head init find the same modules.

    The residual is not scaled (NPR's 2/3 is immaterial before a conv and BatchNorm). Not a
    `SmallCNN` subclass: the residual must be registered first, as the first leaf module that
    LRP (`explain.lrp.leading_residual`) looks for.
    """

    def __init__(self, residual: Residual) -> None:
        super().__init__()
        from ganforensics.detectors.cnn.archs import SmallCNN  # archs imports this module lazily

        small = SmallCNN()
        self.residual = residual
        self.features = small.features
        self.avgpool = small.avgpool
        self.fc = small.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(self.residual(x)))
        return self.fc(torch.flatten(x, 1))


def small_npr_net() -> ResidualSmallCNN:
    """The toolkit's `small` CNN on NPR's residual `x - up(down(x))`."""
    return ResidualSmallCNN(Residual("npr"))
