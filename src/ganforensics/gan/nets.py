"""DCGAN-style generator and discriminator with a swappable last up-sampling block (DESIGN B3).

The 13 published last-block setups (Chandrasegaran et al. 2021) are named as published:
`BASELINE` (a strided transposed conv) and `X.n.k`: up-sample x2 by X (N nearest, B bilinear,
Z zero insertion), then n plain convs of kernel k (nothing between them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforensics.errors import ConfigError

LAST_BLOCKS: tuple[str, ...] = (
    "BASELINE",
    "N.1.3", "N.1.5", "N.1.7",
    "Z.1.3", "Z.1.5", "Z.1.7",
    "B.1.3", "B.1.5", "B.1.7",
    "N.3.5", "Z.3.5", "B.3.5",
)
SIZES: tuple[int, ...] = (32, 64, 128)
_BLOCK_RE = re.compile(r"^([NZB])\.([13])\.([357])$")


def parse_last_block(name: str) -> tuple[str, int, int] | None:
    """`"N.1.5"` -> `("N", 1, 5)`; `"BASELINE"` -> None. Raises ConfigError on other names."""
    key = name.strip().upper()
    if key == "BASELINE":
        return None
    m = _BLOCK_RE.match(key)
    if not m:
        raise ConfigError(
            f"last_block: unknown setup {name!r}; choose one of {', '.join(LAST_BLOCKS)}"
        )
    return m.group(1), int(m.group(2)), int(m.group(3))


def _n_up(size: int) -> int:
    if size not in SIZES:
        raise ConfigError(f"size: {size} is not supported; choose one of 32, 64, 128")
    return int(math.log2(size)) - 2


class ZeroInsert(nn.Module):
    """x2 up-sampling by zero insertion: input (i, j) goes to (2i, 2j), the rest is 0.

    A fixed depthwise transposed conv with kernel [[1, 0], [0, 0]], stride 2 (not trained).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        k = torch.zeros(channels, 1, 2, 2)
        k[:, 0, 0, 0] = 1.0
        self.register_buffer("kernel", k, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.kernel, stride=2, groups=self.channels)


def make_last_block(name: str, d: int) -> nn.Module:
    """The last block mapping d channels at HxW to 3 channels at 2Hx2W (before Tanh)."""
    spec = parse_last_block(name)
    if spec is None:
        return nn.ConvTranspose2d(d, 3, 4, 2, 1)
    mode, n, k = spec
    layers: list[nn.Module] = []
    if mode == "N":
        layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    elif mode == "B":
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
    else:
        layers.append(ZeroInsert(d))
    widths = [d] * n + [3]
    for i in range(n):
        layers.append(nn.Conv2d(widths[i], widths[i + 1], k, 1, k // 2, bias=True))
    return nn.Sequential(*layers)


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02); norm scales N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (z_dim) -> RGB image in [-1, 1] of `size` x `size` with the chosen last block."""

    def __init__(self, size: int = 32, last_block: str = "BASELINE", z_dim: int = 128,
                 dim: int = 32):
        super().__init__()
        n_up = _n_up(size)
        self.size, self.z_dim, self.dim = size, z_dim, dim
        self.last_block_name = "BASELINE" if parse_last_block(last_block) is None \
            else last_block.strip().upper()
        widths = [min(dim * 2 ** (n_up - 1 - j), dim * 8) for j in range(n_up)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for j in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(widths[j], widths[j + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(widths[j + 1]),
                nn.ReLU(True),
            ]
        self.body = nn.Sequential(*layers)
        self.last = make_last_block(self.last_block_name, widths[-1])
        self.out = nn.Tanh()
        _init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.body(z.view(z.shape[0], self.z_dim, 1, 1))
        return self.out(self.last(x))


D_NORMS = ("batch", "group", "spectral")


def _d_norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(1, channels)
    return nn.Identity()  # spectral: the convs are normalised instead


def _same_width_convs(width: int, n: int, norm: str) -> list[nn.Module]:
    """n blocks of 3x3 conv (width -> width) + norm + LeakyReLU(0.2): D's extra depth."""
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(width, width, 3, 1, 1, bias=norm == "spectral"),
                   _d_norm_layer(norm, width), nn.LeakyReLU(0.2, True)]
    return layers


class Discriminator(nn.Module):
    """Image -> one logit per image. `norm` = "batch" (no gradient penalty), "group" (GP) or
    "spectral" (spectral normalisation of every conv, no feature normalisation; SN-GAN).

    `depth` = convs per resolution: 1 is the published net (one 4x4 stride-2 conv each); each
    more adds a 3x3 conv of the same width after the strided one (as SN-GAN's "standard CNN"
    discriminator), with the same normalisation and activation, at every resolution."""

    def __init__(self, size: int = 32, norm: str = "batch", dim: int = 32, depth: int = 1):
        super().__init__()
        _n_up(size)
        if norm not in D_NORMS:
            raise ConfigError(f"norm: {norm!r} must be one of {', '.join(D_NORMS)}")
        if depth < 1:
            raise ConfigError(f"d_depth: must be a positive integer, got {depth}")
        self.size, self.norm, self.depth = size, norm, depth
        layers: list[nn.Module] = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        layers += _same_width_convs(dim, depth - 1, norm)
        ends = [len(layers)]  # where each resolution's group of layers ends
        width, res = dim, size // 2
        while res > 4:
            nxt = min(width * 2, dim * 16)
            layers += [
                nn.Conv2d(width, nxt, 4, 2, 1, bias=norm == "spectral"),
                _d_norm_layer(norm, nxt),
                nn.LeakyReLU(0.2, True),
            ]
            layers += _same_width_convs(nxt, depth - 1, norm)
            ends.append(len(layers))
            width, res = nxt, res // 2
        self.global_channels = width
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        # the local map: the output of the resolution before the last one (8x8 at every size)
        self._local_end = ends[-2]
        convs = [m for m in layers[:self._local_end] if isinstance(m, nn.Conv2d)]
        self.local_channels = convs[-1].out_channels
        _init_weights(self)
        if norm == "spectral":  # after the initialisation: SN divides the initialised weights
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    spectral_norm(m)

    @property
    def final(self) -> nn.Conv2d:
        """The last conv (final feature map -> one logit)."""
        last = self.net[-1]
        assert isinstance(last, nn.Conv2d)
        return last

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor | Features:
        """Logits (N,); with `features=True` a `Features` with the local and final maps too
        (what the auxiliary objectives use, `gan.objectives`)."""
        if not features:
            return self.net(x).view(-1)
        local = self.net[:self._local_end](x)
        final = self.net[self._local_end:-1](local)
        return Features(self.net[-1](final).view(-1), local, final)


@dataclass
class Features:
    """D's outputs on a batch: logits (N,), the local map (N, C, 8, 8) and the final map
    (N, C', 4, 4) that D's last conv turns into the logit."""

    logits: torch.Tensor
    local: torch.Tensor
    final: torch.Tensor

    @property
    def global_(self) -> torch.Tensor:
        """The global vector (N, C'): the final map sum-pooled over positions."""
        return self.final.sum(dim=(2, 3))
